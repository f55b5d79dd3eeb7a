"""keras_robult: Robult (IJCAI 2025) for Keras 3.

Multimodal models robust to missing modalities and scarce labels, on the
TensorFlow, JAX and PyTorch backends.
"""

from keras_robult import (
    baselines,
    calibration,
    data,
    datasets,
    encoders,
    export,
    layers,
    losses,
    tasks,
)
from keras_robult.models.robult import Robult
from keras_robult.version import __version__

__all__ = [
    "Robult",
    "baselines",
    "calibration",
    "data",
    "datasets",
    "encoders",
    "export",
    "layers",
    "losses",
    "tasks",
    "__version__",
]
