"""UPMC Food-101 with 5 % labels: Robult against the baselines and
ablations, the paper's Table 2 protocol on images and titles.

    python recipes/food101.py --data-dir ~/data/food101 \
        --text-preset ~/presets/minilm --image-preset ~/presets/resnet18
    python recipes/food101.py --data-dir ~/data/food101 --smoke ...

Expected layout in --data-dir (the release; see
`keras_robult.datasets.food101`): `images/{train,test}/<class>/<file>.jpg`
and `texts/{train,test}_titles.csv`. A validation split (10 %) is carved
from train, stratified and seeded. The frozen keras-hub backbones
(`--text-preset`, `--image-preset`: local preset folders, or names that
keras-hub downloads) run once per split through the streaming pipeline;
their pooled features are cached in `--cache-dir` and every method and
seed trains on them (an MLP encoder per modality). Unreadable images are
skipped and counted (`skipped_images` in results.json). Metric: accuracy
over 101 classes. Writes results.json, results.md, missing_rate.png,
labeled_indices.json and the models to --out (default results/food101).

Paper (Robult, Table 2, 5 % labels): see docs/recipes.md.
"""

import sys

import keras_robult_cli


def load(args):
    from keras_robult.cli.recipe import image_text_splits
    from keras_robult.datasets import food101
    from keras_robult.tasks import Classification

    records = food101.load_records(args.data_dir)
    loaded = image_text_splits(args, records, "food101")
    classes = records["train"].classes
    loaded["task"] = Classification(len(classes), class_names=classes)
    loaded["extra"]["classes"] = list(classes)
    return loaded


def run(argv=None):
    """Runs the recipe on `argv` (default: the command line)."""
    keras_robult_cli.prepare(argv)  # the backend, before Keras loads
    from keras_robult.cli.options import add_backbone_arguments
    from keras_robult.cli.recipe import main

    return main(
        __doc__,
        load,
        None,
        "food101",
        ("accuracy", "f1_macro"),
        100,
        256,
        add_arguments=add_backbone_arguments,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(run())
