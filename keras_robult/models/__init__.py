from keras_robult.models.multimodal_model import MultimodalModel
from keras_robult.models.robult import Robult

__all__ = ["MultimodalModel", "Robult"]
