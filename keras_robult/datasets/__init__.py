"""Datasets shipped with the package (offline)."""

from keras_robult.datasets import mfeat

__all__ = ["mfeat"]
