from keras_robult.models.robult import Robult

__all__ = ["Robult"]
