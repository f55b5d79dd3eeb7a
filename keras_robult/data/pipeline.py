"""`tf.data` pipelines yielding the `(x, y)` structure Robult trains on."""

import numpy as np

from keras_robult.data.masking import check_rate, drop_modalities
from keras_robult.data.standardization import apply_standardization
from keras_robult.validation import MASK_KEY, check_arrays


def make_dataset(
    x,
    labels=None,
    is_labeled=None,
    modality_mask=None,
    task=None,
    batch_size=32,
    shuffle=False,
    seed=None,
    drop_remainder=False,
    standardization=None,
    prefetch=True,
    modality_dropout=0.0,
):
    """A `tf.data.Dataset` of `({modality: ..., "modality_mask": ...},
    {"label": ..., "is_labeled": ...})` batches from NumPy arrays.

    Checks the arrays first (same sample count everywhere, no NaN / inf in a
    present modality, labels the task accepts) and raises a `ValueError`
    naming the problem. The dataset works as input to `fit` / `evaluate` /
    `predict` on every Keras backend.

    Args:
        x: dict, modality name -> array (first axis = samples); may hold
            `"modality_mask"`.
        labels: optional labels; without them the dataset yields `x` only.
        is_labeled: optional `(samples,)` 0/1 or bool; default all labeled.
        modality_mask: optional `(samples, M)` mask, overrides the one in
            `x`; default all present.
        task: optional `Task` whose label checks are applied.
        batch_size: int.
        shuffle: bool, reshuffled each epoch with `seed`.
        seed: int, shuffle seed.
        drop_remainder: bool, static batch size (one compiled step).
        standardization: optional stats from `fit_standardization`.
        prefetch: bool, prefetch with autotuning.
        modality_dropout: float in [0, 1), augmentation for training: each
            present modality of a sample is dropped (mask 0, values zeroed)
            with this probability, at least one present modality kept per
            sample; new draws every epoch, reproducible from `seed`.

    Returns:
        A `tf.data.Dataset`.
    """
    import tensorflow as tf

    check_rate(modality_dropout, "modality_dropout")
    x = {k: np.asarray(v) for k, v in x.items()}
    if modality_mask is not None:
        x[MASK_KEY] = np.asarray(modality_mask, "float32")
    modalities = [k for k in x if k != MASK_KEY]
    if not modalities:
        raise ValueError("`x` holds no modality.")
    num_samples = len(x[modalities[0]])
    if MASK_KEY not in x:
        x[MASK_KEY] = np.ones((num_samples, len(modalities)), "float32")
    y = None
    if labels is not None:
        if is_labeled is None:
            is_labeled = np.ones(num_samples, "float32")
        y = {
            "label": np.asarray(labels),
            "is_labeled": np.asarray(is_labeled, "float32").reshape(-1),
        }
    check_arrays(x, y, modalities, task)
    if standardization:
        x = apply_standardization(x, standardization)
    x = {
        k: v.astype("float32") if np.issubdtype(v.dtype, np.floating) else v
        for k, v in x.items()
    }
    # Zero-fill missing modalities (NaN placeholders included).
    for index, name in enumerate(modalities):
        if np.issubdtype(x[name].dtype, np.floating):
            absent = x[MASK_KEY][:, index] == 0
            if absent.any():
                x[name] = x[name].copy()
                x[name][absent] = 0.0
    if y is not None:
        label = y["label"]
        if np.issubdtype(label.dtype, np.floating):
            label = np.where(np.isfinite(label), label, 0.0).astype("float32")
        y = {"label": label, "is_labeled": y["is_labeled"]}
    elements = (x, y) if y is not None else (x,)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(
            num_samples, seed=seed, reshuffle_each_iteration=True
        )
    if modality_dropout > 0:
        dataset = _with_modality_dropout(
            dataset, modalities, modality_dropout, seed
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def _with_modality_dropout(dataset, modalities, rate, seed):
    """`dataset` with each element's modalities dropped at `rate` (new
    stateless draws each epoch, seeded), dropped values zero-filled."""
    import tensorflow as tf

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def drop(element, draw):
        x = dict(element[0])
        mask = drop_modalities(x[MASK_KEY], draw, rate)
        for index, name in enumerate(modalities):
            if x[name].dtype.is_floating:
                x[name] = tf.where(
                    mask[index] > 0, x[name], tf.zeros_like(x[name])
                )
        x[MASK_KEY] = mask
        return (x,) + tuple(element[1:])

    return tf.data.Dataset.zip((dataset, draws)).map(
        drop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
