"""Datasets: mfeat ships with the package; the paper's feature datasets
load from their distributed files (offline)."""

from keras_robult.datasets import mfeat, mmimdb, mosei, mosi
from keras_robult.datasets.restricted_unpickler import (
    RestrictedUnpickler,
    load_pickle,
)

__all__ = [
    "mfeat",
    "mosi",
    "mosei",
    "mmimdb",
    "RestrictedUnpickler",
    "load_pickle",
]
