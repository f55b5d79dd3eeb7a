"""Datasets: mfeat ships with the package; the paper's datasets load from
their distributed files (offline): features (MOSI, MOSEI, MM-IMDb HDF5) or
file-level image+text records (UPMC Food-101, Hateful Memes, raw
MM-IMDb)."""

from keras_robult.datasets import (
    food101,
    hateful_memes,
    mfeat,
    mmimdb,
    mosei,
    mosi,
    suite,
)
from keras_robult.datasets.restricted_unpickler import (
    RestrictedUnpickler,
    load_pickle,
)

__all__ = [
    "mfeat",
    "mosi",
    "mosei",
    "mmimdb",
    "food101",
    "hateful_memes",
    "suite",
    "RestrictedUnpickler",
    "load_pickle",
]
