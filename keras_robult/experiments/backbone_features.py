"""Frozen-backbone features of image+text records, computed once per split
and cached on disk, so that every method and seed trains on vectors."""

import hashlib
import json
import os

import numpy as np

from keras_robult.experiments.atomic import atomic_path


def records_digest(records):
    """sha256 of what defines a split: ids, image paths, texts, labels."""
    digest = hashlib.sha256()
    for values in (records.ids, records.image_paths, records.texts):
        for value in values:
            digest.update(str(value).encode("utf-8"))
            digest.update(b"\0")
    digest.update(np.ascontiguousarray(records.labels).tobytes())
    digest.update(np.ascontiguousarray(records.is_labeled).tobytes())
    return digest.hexdigest()


def compute_features(
    records,
    image_encoder,
    text_encoder,
    tokenizer,
    image_size,
    sequence_length,
    batch_size=64,
):
    """Pooled backbone features of every record whose image (if named)
    can be decoded.

    Args:
        records: `ImageTextRecords`.
        image_encoder, text_encoder: callables on a batch of images
            `(batch, h, w, 3)` in [0, 255] / token ids `(batch, length)`
            returning `(batch, width)` (e.g. `PooledBackbone`).
        tokenizer: keras-hub tokenizer of the text backbone.
        image_size: `(height, width)`.
        sequence_length: int.
        batch_size: int.

    Returns:
        dict: `image`, `text` float32 features (zeros where the modality is
        missing), `modality_mask`, `labels`, `is_labeled`, `kept` (indices
        into `records`) and `unreadable` (indices of skipped records).
    """
    import keras

    from keras_robult.data.image_text_pipeline import image_text_dataset

    # One decoding pass: an image that cannot be decoded drops its record
    # (the pipeline's `ignore_errors`); the indices that come through tell
    # which.
    dataset = image_text_dataset(
        records,
        image_size=image_size,
        batch_size=batch_size,
        tokenizer=tokenizer,
        sequence_length=sequence_length,
        with_index=True,
    )
    encoders = {
        "image": _inference(image_encoder),
        "text": _inference(text_encoder),
    }
    parts = {"image": [], "text": [], "modality_mask": []}
    seen = []
    for x, y in dataset:
        seen.append(y["index"].numpy())
        mask = x["modality_mask"].numpy()
        for name, encoder in encoders.items():
            values = keras.ops.convert_to_numpy(encoder(x[name].numpy()))
            column = 0 if name == "image" else 1
            parts[name].append(values * mask[:, column : column + 1])
        parts["modality_mask"].append(mask)
    kept = np.concatenate(seen).astype("int64")
    unreadable = np.setdiff1d(np.arange(len(records)), kept)
    features = {
        k: np.concatenate(v).astype("float32") for k, v in parts.items()
    }
    features.update(
        labels=records.labels[kept],
        is_labeled=records.is_labeled[kept],
        kept=kept,
        unreadable=np.asarray(unreadable, "int64"),
    )
    return features


def _inference(encoder):
    """A Keras layer runs through `predict_on_batch` (no gradient tape on
    PyTorch, compiled on JAX); any other callable is called."""
    import keras

    if not isinstance(encoder, keras.layers.Layer):
        return encoder
    model = keras.Sequential([encoder])
    return model.predict_on_batch


class FeatureCache:
    """Backbone features on disk, one `.npz` per (settings, split).

    The key is a sha256 of the settings (presets, image size, sequence
    length: anything that changes the features) and of the records, so a
    changed preset, size or record list computes anew and an unchanged one
    never runs the backbone again. Files are written atomically.

    Args:
        cache_dir: folder of the cache files (created when needed).

    Example:

    ```python
    cache = FeatureCache("~/.cache/robult")
    features = cache.get_or_compute(
        records, {"image_preset": "resnet_18", "image_size": [224, 224]},
        lambda: compute_features(records, ...),
    )
    ```
    """

    def __init__(self, cache_dir):
        self.cache_dir = os.path.expanduser(cache_dir)

    def path(self, records, settings):
        """The cache file of `records` under `settings` (a JSON-able
        dict)."""
        key = hashlib.sha256(
            json.dumps(settings, sort_keys=True).encode("utf-8")
            + records_digest(records).encode("ascii")
        ).hexdigest()[:32]
        return os.path.join(self.cache_dir, f"features-{key}.npz")

    def get_or_compute(self, records, settings, compute):
        """`(features, from_cache)`: the cached arrays, or `compute()`'s
        (a dict of arrays), stored for next time."""
        path = self.path(records, settings)
        if os.path.exists(path):
            try:
                with np.load(path, allow_pickle=False) as archive:
                    return {k: archive[k] for k in archive.files}, True
            except Exception:  # a damaged cache file is recomputed
                pass
        features = compute()
        os.makedirs(self.cache_dir, exist_ok=True)
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, **features)
        return features, False
