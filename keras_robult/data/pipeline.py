"""`tf.data` pipelines yielding the `(x, y)` structure Robult trains on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from keras_robult.data.masking import check_rate, drop_modalities
from keras_robult.data.standardization import apply_standardization
from keras_robult.utils.validation import MASK_KEY, check_arrays

if TYPE_CHECKING:
    import tensorflow as tf  # only where a TF pipeline or export runs

    from keras_robult.tasks import Task


def make_dataset(
    x: Mapping[str, ArrayLike],
    labels: ArrayLike | None = None,
    is_labeled: ArrayLike | None = None,
    modality_mask: ArrayLike | None = None,
    task: Task | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    standardization: Mapping | None = None,
    prefetch: bool = True,
    modality_dropout: float = 0.0,
    initial_epoch: int | None = None,
) -> tf.data.Dataset:
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
        initial_epoch: optional int. By default the dataset is one epoch
            and every iteration of it draws a new shuffle and modality
            dropout. With `initial_epoch = e` it is endless: epochs e,
            e + 1, ... one after the other, each drawn from `(seed, epoch)`
            only. Fit it with `steps_per_epoch` (`num_samples //
            batch_size` with `drop_remainder`) and `initial_epoch=e`: a fit
            resumed at epoch e sees the batches an uninterrupted one sees.

    Returns:
        A `tf.data.Dataset`.
    """
    import tensorflow as tf  # only where a TF pipeline or export runs

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
    if shuffle or modality_dropout > 0:
        if seed is None:
            seed = int(np.random.randint(2**31))
        dataset = epochs_of_draws(
            num_samples,
            len(modalities),
            seed,
            shuffle,
            initial_epoch,
            batch_size,
            drop_remainder,
        ).map(
            _gather_with_dropout(elements, modalities, modality_dropout),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if initial_epoch is None:  # one epoch, of a length Keras can read
            batches = -(-num_samples // batch_size)
            if drop_remainder:
                batches = num_samples // batch_size
            dataset = dataset.apply(
                tf.data.experimental.assert_cardinality(batches)
            )
    else:
        dataset = tf.data.Dataset.from_tensor_slices(elements).batch(
            batch_size, drop_remainder=drop_remainder
        )
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def epochs_of_draws(
    num_samples,
    num_modalities,
    seed,
    shuffle=True,
    initial_epoch=None,
    batch_size=None,
    drop_remainder=False,
):
    """The randomness of a training pipeline, epoch by epoch: a dataset of
    `(index, uniform)` (batched when `batch_size`, within each epoch), the
    sample indices in the epoch's order (shuffled when `shuffle`) and
    `(2, num_modalities)` uniform draws per sample for `drop_modalities`.

    Each epoch is drawn statelessly from `(seed, key)`. The key is the
    epoch number, from `initial_epoch` on, when that is given (the dataset
    is then endless); otherwise a draw that changes with every iteration
    of the dataset (one epoch per iteration)."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    if initial_epoch is None:
        keys = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).take(1)
    else:
        keys = tf.data.Dataset.counter(int(initial_epoch))

    def epoch(key):
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(key, tf.int64)])
        order = tf.range(num_samples, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, key)
        uniform = tf.random.stateless_uniform(
            (num_samples, 2, num_modalities),
            tf.random.experimental.stateless_fold_in(key, 1),
        )
        draws = tf.data.Dataset.from_tensor_slices((order, uniform))
        if batch_size is None:
            return draws
        return draws.batch(batch_size, drop_remainder=drop_remainder)

    return keys.flat_map(epoch)


def _gather_with_dropout(elements, modalities, rate):
    """The map from `(indices, uniform draws)` to the batch of `elements`
    at those indices, with modality dropout at `rate` (dropped modalities
    masked and zeroed)."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    arrays = tf.nest.map_structure(tf.constant, elements)

    def gather(order, uniform):
        batch = tf.nest.map_structure(
            lambda array: tf.gather(array, order), arrays
        )
        if rate > 0:
            x = dict(batch[0])
            mask = drop_modalities(x[MASK_KEY], uniform, rate)
            for index, name in enumerate(modalities):
                if x[name].dtype.is_floating:
                    kept = tf.reshape(
                        mask[:, index] > 0,
                        [-1] + [1] * (len(x[name].shape) - 1),
                    )
                    x[name] = tf.where(kept, x[name], tf.zeros_like(x[name]))
            x[MASK_KEY] = mask
            batch = (x,) + tuple(batch[1:])
        return batch

    return gather
