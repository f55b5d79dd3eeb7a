"""Task objects: what is task-specific about training and prediction."""

from keras_robult.tasks.classification import Classification
from keras_robult.tasks.multi_label import MultiLabel
from keras_robult.tasks.regression import Regression
from keras_robult.tasks.task import Task

__all__ = ["Task", "Classification", "Regression", "MultiLabel"]
