"""Model surgery: a trained model with other encoders in front, its
weights kept (raw-input models, the feature model of a fine-tuned one)."""

import keras
import numpy as np

from keras_robult.data.image_text_pipeline import token_packer
from keras_robult.utils.validation import MASK_KEY


def raw_input_model(
    model, image_encoder, text_encoder, tokenizer, image_size, length
):
    """A trained image+text model (trained on cached backbone features, or
    fine-tuned) assembled with its backbones and tokenizer into one model
    that takes
    what a client has: `image` float `(batch, h, w, 3)` in [0, 255] at the
    training image size, `text` strings, and `modality_mask`.

    The trained encoders, fusion and heads keep their weights; each
    modality's encoder becomes `backbone -> trained encoder` (text:
    `tokenizer -> packer -> backbone -> trained encoder`), so a sample
    gives the predictions its cached features gave. The result saves to
    `.keras` and exports with `keras_robult.export.export_saved_model`
    (string inputs: the TensorFlow backend).

    Args:
        model: the trained keras_robult model (modalities `image`, `text`).
        image_encoder: the image `PooledBackbone` the features were
            computed with; `None` for a fine-tuned model (its encoders
            hold their backbones already).
        text_encoder: the text `PooledBackbone`, likewise.
        tokenizer: the text preset's keras-hub tokenizer.
        image_size: `(height, width)` the features were computed at.
        length: the sequence length the features were computed with.

    Returns:
        A built model of the same class.
    """
    if set(model.modalities) != {"image", "text"}:
        raise ValueError(
            "raw_input_model takes an image+text model (modalities 'image' "
            f"and 'text'); this one has {list(model.modalities)}."
        )
    before = {
        name: [] if encoder is None else [encoder]
        for name, encoder in (("image", image_encoder), ("text", text_encoder))
    }
    encoders = {
        "image": keras.Sequential(
            [
                keras.Input(tuple(image_size) + (3,)),
                *before["image"],
                model.encoders["image"],
            ],
            name="image_raw_encoder",
        ),
        "text": keras.Sequential(
            [
                keras.Input((), dtype="string"),
                tokenizer,
                token_packer(tokenizer, length),
                *before["text"],
                model.encoders["text"],
            ],
            name="text_raw_encoder",
        ),
    }
    sample = {
        "image": np.zeros((1,) + tuple(image_size) + (3,), "float32"),
        "text": np.asarray(["a"], dtype=object),
        MASK_KEY: np.ones((1, 2), "float32"),
    }
    return replace_encoders(model, encoders, sample, f"{model.name}_raw")


def replace_encoders(model, encoders, sample, name=None):
    """A model of `model`'s class and configuration with other
    `encoders` (dict modality -> layer) and `model`'s trained weights
    everywhere else (fusion, heads, label prior), built on `sample` (an
    input dict of one sample)."""
    new = type(model).from_config(
        dict(model.get_config(), encoders=encoders, name=name or model.name)
    )
    new.record_input_dtypes(sample)
    new.build({k: (None,) + v.shape[1:] for k, v in sample.items()})
    own = {id(layer) for layer in model.encoders.values()}
    old_layers = [layer for layer in model.layers if id(layer) not in own]
    new_own = {id(layer) for layer in encoders.values()}
    new_layers = [layer for layer in new.layers if id(layer) not in new_own]
    if len(old_layers) != len(new_layers):
        raise RuntimeError("The assembled model has other layers.")
    for old, layer in zip(old_layers, new_layers):
        layer.set_weights(old.get_weights())
    # A copy: on JAX, `predict` may donate (free) the new model's buffers.
    new.label_prior.assign(np.array(model.label_prior))
    return new
