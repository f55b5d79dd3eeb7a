"""Data tools for the semi-supervised, missing-modality protocol."""

from keras_robult.data.image_text_records import ImageTextRecords
from keras_robult.data.masking import (
    evaluation_subsets,
    random_mask,
    subset_mask,
    training_mask,
)
from keras_robult.data.missing_spec import MissingSpec, literature_grid
from keras_robult.data.npz import infer_task_name, load_npz
from keras_robult.data.pipeline import make_dataset
from keras_robult.data.splits import labeled_mask, strata, train_test_split
from keras_robult.data.standardization import (
    apply_standardization,
    fit_standardization,
)

__all__ = [
    "ImageTextRecords",
    "labeled_mask",
    "train_test_split",
    "strata",
    "subset_mask",
    "random_mask",
    "training_mask",
    "MissingSpec",
    "literature_grid",
    "evaluation_subsets",
    "make_dataset",
    "load_npz",
    "infer_task_name",
    "fit_standardization",
    "apply_standardization",
]
