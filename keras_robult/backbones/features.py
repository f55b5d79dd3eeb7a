"""Frozen-backbone features of image+text records, computed once per split
and cached on disk, so that every method and seed trains on vectors."""

import hashlib
import json
import os

import keras
import numpy as np

from keras_robult.data.image_text_pipeline import image_text_dataset
from keras_robult.utils.atomic import atomic_path
from keras_robult.utils.validation import MASK_KEY


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
    check=True,
):
    """Pooled backbone features of the records. A record whose image
    cannot be read keeps its text, its image marked missing; one that
    then has no modality left is left out (not in `kept`). More than half
    of the named images unreadable (or absent) is an error that names the
    first files.

    Args:
        records: `ImageTextRecords`.
        image_encoder: a callable on a batch of images `(batch, h, w, 3)`
            in [0, 255] returning `(batch, width)` (e.g. `PooledBackbone`).
        text_encoder: a callable on token ids `(batch, length)` returning
            `(batch, width)`.
        tokenizer: keras-hub tokenizer of the text backbone.
        image_size: `(height, width)`.
        sequence_length: int.
        batch_size: int.
        check: bool, the more-than-half check (off for a few records).

    Returns:
        dict: `image`, `text` float32 features (zeros where the modality is
        missing), `modality_mask`, `labels`, `is_labeled`, `kept` (indices
        into `records`) and `unreadable` (indices of skipped records).
    """
    if check:
        check_image_paths(records)
    encoders = {
        "image": _inference(image_encoder),
        "text": _inference(text_encoder),
    }
    parts = {"image": [], "text": [], "modality_mask": []}
    seen = []

    def encode(part, rows):
        # An image that cannot be decoded drops its record from the pass
        # (the pipeline's `ignore_errors`): the indices that come through
        # tell which.
        dataset = image_text_dataset(
            part,
            image_size=image_size,
            batch_size=batch_size,
            tokenizer=tokenizer,
            sequence_length=sequence_length,
            with_index=True,
        )
        for x, y in dataset:
            seen.append(rows[y["index"].numpy()])
            mask = x["modality_mask"].numpy()
            for name, encoder in encoders.items():
                values = keras.ops.convert_to_numpy(encoder(x[name].numpy()))
                column = 0 if name == "image" else 1
                parts[name].append(values * mask[:, column : column + 1])
            parts["modality_mask"].append(mask)

    everything = np.arange(len(records))
    encode(records, everything)
    unreadable = np.setdiff1d(everything, np.concatenate(seen or [[]]))
    unreadable = unreadable.astype("int64")
    if check:
        _check_readable(records, unreadable)
    # A record whose image cannot be read keeps its text, with the image
    # missing (what the model handles); one with no text is left out.
    with_text = unreadable[records.texts[unreadable] != ""]
    if with_text.size:
        encode(without_images(records.subset(with_text)), with_text)
    kept = np.concatenate(seen).astype("int64")
    order = np.argsort(kept, kind="stable")
    features = {
        k: np.concatenate(v).astype("float32")[order] for k, v in parts.items()
    }
    kept = kept[order]
    features.update(
        labels=records.labels[kept],
        is_labeled=records.is_labeled[kept],
        kept=kept,
        unreadable=unreadable,
    )
    return features


def without_images(records, rows=None):
    """`records` with the images of `rows` (default: all) marked missing:
    the records a run uses after `compute_features` found them
    unreadable."""
    paths = np.asarray(records.image_paths, object).copy()
    paths[slice(None) if rows is None else np.asarray(rows, "int64")] = ""
    return type(records)(
        records.ids,
        paths,
        records.texts,
        records.labels,
        records.classes,
        records.is_labeled,
    )


#: Above this fraction of unreadable named images, an error, not a run.
MAX_UNREADABLE = 0.5


def check_image_paths(records):
    """Raises when more than half of the named image files do not exist
    (a records file moved without its images), before any decoding."""
    named = np.flatnonzero(records.image_paths != "")
    absent = [i for i in named if not os.path.exists(records.image_paths[i])]
    if named.size and len(absent) > MAX_UNREADABLE * named.size:
        raise ValueError(
            f"{len(absent)} of {named.size} image files do not exist ("
            + _first_files(records, absent, "no such file")
            + "); image paths are relative to the records file's folder."
        )


def _check_readable(records, unreadable):
    named = int(np.sum(records.image_paths != ""))
    if named and unreadable.size > MAX_UNREADABLE * named:
        raise ValueError(
            f"{unreadable.size} of {named} images cannot be read ("
            + _first_files(records, unreadable)
            + "); more than half: check the image files."
        )


def unreadable_summary(records, unreadable, count=3):
    """`"N unreadable image(s) (first: path: reason, ...)"` for a log."""
    if not len(unreadable):
        return "0 unreadable images"
    return (
        f"{len(unreadable)} unreadable image(s), kept as missing images ("
        + _first_files(records, unreadable, count=count)
        + ")"
    )


def _first_files(records, rows, reason=None, count=3):
    rows = list(rows)
    names = []
    for row in rows[:count]:
        path = str(records.image_paths[row])
        why = reason or (
            "no such file"
            if not os.path.exists(path)
            else "not a decodable image"
        )
        names.append(f"{path}: {why}")
    more = f", and {len(rows) - count} more" if len(rows) > count else ""
    return "first: " + "; ".join(names) + more


def _inference(encoder):
    """A Keras layer runs through `predict_on_batch` (no gradient tape on
    PyTorch, compiled on JAX); any other callable is called."""
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


def records_features(config, records, backbones, label, verbose=True):
    """The cached (or computed, then cached) backbone features of
    `records` under a `BackboneConfig` and its loaded `Backbones`.

    Returns:
        `(x, features)`: `x` the model inputs (`image`, `text`,
        `modality_mask`), `features` the cache entry (also `labels`,
        `is_labeled`, `kept`, `unreadable`). `label` names the records in
        the log line (printed when `verbose`).
    """
    cache = FeatureCache(config.cache_dir)

    def compute():
        return compute_features(
            records,
            backbones.image_encoder,
            backbones.text_encoder,
            backbones.tokenizer,
            config.image_shape,
            config.sequence_length,
            config.feature_batch_size,
        )

    settings = backbones.settings
    features, cached = cache.get_or_compute(records, settings, compute)
    if verbose:
        print(
            f"{label}: {len(records)} records, "
            f"{unreadable_summary(records, features['unreadable'])}, "
            f"features {'read from' if cached else 'computed into'} "
            f"{cache.path(records, settings)}",
            flush=True,
        )
    x = {
        "image": features["image"],
        "text": features["text"],
        MASK_KEY: features["modality_mask"],
    }
    return x, features
