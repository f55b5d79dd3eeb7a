"""The encoder the protocol gives a modality: vectors and sequences."""

import keras

from keras_robult.encoders.mlp_encoder import MLPEncoder
from keras_robult.encoders.sequence_encoder import SequenceEncoder
from keras_robult.layers.feature_standardization import FeatureStandardization


def default_encoder(
    name,
    shape,
    units,
    statistics=None,
    hidden_units=(256,),
    dropout=0.0,
    normalize=True,
):
    """The encoder the protocol gives a modality of per-sample `shape`.

    Vectors `(features,)` get a `FeatureStandardization` layer (training-split
    statistics, when given) and an `MLPEncoder` (with layer normalisation
    when `normalize`; the protocol turns it off for regression, where it
    would divide away the scale of each sample's features that the target
    depends on: `benchmarks/RESULTS.md`); sequences
    `(time, features)` a `SequenceEncoder`. Other shapes need a user
    encoder through the Python API.
    """
    check_encoder_shape(name, shape)
    if len(shape) == 1:
        layers = []
        if statistics is not None:
            mean, std = statistics
            layers.append(
                FeatureStandardization(mean, std, name=f"{name}_standardize")
            )
        layers.append(
            MLPEncoder(
                units,
                hidden_units=hidden_units,
                dropout=dropout,
                normalize=normalize,
            )
        )
        return keras.Sequential(layers, name=f"{name}_encoder")
    # Sequences: width 64 (MulT used 30-40 on the MOSI / MOSEI features):
    # at 128 a MOSEI-sized epoch takes 137 s on a 2-core CPU, at 64 about
    # 45 s (benchmarks/recipes.py).
    return SequenceEncoder(
        units, hidden_dim=64, dropout=dropout, name=f"{name}_encoder"
    )


def check_encoder_shape(name, shape):
    """Raises unless a modality's per-sample `shape` is one the built-in
    encoders take: a vector `(features,)` or a sequence `(time,
    features)`, with at least one feature."""
    if len(shape) not in (1, 2):
        raise ValueError(
            f"Modality '{name}' has per-sample shape {tuple(shape)}; the "
            "built-in encoders take vectors (features,) or sequences (time, "
            "features). Use the Python API with an encoder of your own."
        )
    if 0 in shape:
        raise ValueError(
            f"Modality '{name}' has per-sample shape {tuple(shape)}: no "
            "features. Every modality needs at least one value per sample."
        )
