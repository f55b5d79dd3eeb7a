"""Data-parallel training on the engines Keras already has
(docs/scaling.md): `keras.distribution.DataParallel` on JAX,
`tf.distribute.MirroredStrategy` on TensorFlow. Nothing home-made.

The losses of the package couple the samples of a batch (the PU loss
compares every anchor with every key), so they must see the global batch.

- JAX: under `DataParallel`, Keras jits the step over arrays sharded along
  the batch, so `compute_loss` already sees the global batch; nothing to do.
- TensorFlow: `MirroredStrategy` runs `compute_loss` once per replica on
  the replica's share of the batch. `global_batch_loss` (the decorator on
  every model's `compute_loss`) gathers the loss inputs across replicas
  (`all_gather`, whose gradient sums the replicas' upstream gradients and
  hands each replica its own slice), computes the loss of the global batch
  and divides it by the number of replicas: the replicas' gradients, summed
  by the optimizer, are then exactly the single-device gradient. (A custom
  `compute_loss` gets no loss scaling from Keras.)
- PyTorch: Keras 3.15 has no distribution support for torch.

TensorFlow is imported here only when the TensorFlow backend is active.
"""

import contextlib
import functools

import keras
import numpy as np

from keras_robult.utils.validation import MASK_KEY


def replicas_in_sync():
    """How many replicas run `compute_loss` on their own part of the batch:
    the current `tf.distribute` replica context's `num_replicas_in_sync` on
    TensorFlow, 1 elsewhere (and outside any strategy)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf  # only where a TF pipeline or export runs

    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def strategy_replicas():
    """Replicas of the `tf.distribute` strategy in scope on TensorFlow (1
    for the default strategy and on the other backends). Unlike
    `replicas_in_sync`, it also answers in the cross-replica context (e.g.
    inside `strategy.scope()`, where models are built and compiled)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf  # only where a TF pipeline or export runs

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def check_jit_compile(jit_compile):
    """A `ValueError` when `jit_compile` asks for XLA under a multi-replica
    `tf.distribute` strategy, which Keras 3.15 cannot compile (it turns
    `"auto"` off there itself); the models' `fit`, `evaluate` and `predict`
    call it."""
    if jit_compile is True and strategy_replicas() > 1:
        raise ValueError(
            "jit_compile=True is not supported under a multi-replica "
            "tf.distribute strategy (Keras compiles each replica's step "
            "without XLA there; forcing it fails on variables of another "
            "device). Compile with jit_compile='auto' or False, or train "
            "with XLA data-parallel on the JAX backend."
        )


def gather_global_batch(structure):
    """`structure` (nested tensors, batch on axis 0) concatenated over the
    replicas in replica order; unchanged with a single replica."""
    if replicas_in_sync() == 1:
        return structure
    import tensorflow as tf  # only where a TF pipeline or export runs

    context = tf.distribute.get_replica_context()
    flat = tf.nest.flatten(structure)
    # One all_gather of one float32 matrix `(local batch, features)`: a
    # collective per tensor can run in another order on each replica
    # (shape mismatches), one over a list has no usable gradient, and int32
    # tensors live in host memory (labels and counts are exact in float32
    # below 2**24). The feature axes must be static.
    widths = [int(np.prod(value.shape[1:])) for value in flat]
    packed = tf.concat(
        [
            tf.reshape(tf.cast(value, "float32"), [-1, width])
            for value, width in zip(flat, widths)
        ],
        axis=1,
    )
    gathered = context.all_gather(packed, axis=0)
    restored = []
    for local, value in zip(flat, tf.split(gathered, widths, axis=1)):
        value = tf.reshape(value, [-1] + list(local.shape[1:]))
        # The batch is n times the local one (when that is static).
        batch = local.shape[0]
        if batch is not None:
            value = tf.ensure_shape(
                value,
                [batch * context.num_replicas_in_sync] + list(local.shape[1:]),
            )
        restored.append(tf.cast(value, local.dtype))
    return tf.nest.pack_sequence_as(structure, restored)


def global_batch_loss(compute_loss):
    """Decorator for a `MultimodalModel.compute_loss`: the same loss on
    one device and on `n` TensorFlow replicas.

    With one replica it calls `compute_loss` unchanged. With `n`, it gathers
    what the losses read (the modality mask, labels, `is_labeled`, the
    sample weights and every `y_pred` tensor) across replicas, calls
    `compute_loss` on the global batch (`x` then holds the mask only) and
    returns the loss divided by `n`, each replica's share of the total.
    """

    @functools.wraps(compute_loss)
    def wrapper(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        replicas = replicas_in_sync()
        if replicas == 1:
            return compute_loss(self, x, y, y_pred, sample_weight, training)
        labels, is_labeled = self.unpack_targets(x, y)
        sample_weight = self.sample_weight_vector(sample_weight)
        batch = gather_global_batch(
            {
                "mask": self._modality_mask(x),
                "label": labels,
                "is_labeled": is_labeled,
                "y_pred": y_pred,
                **({} if sample_weight is None else {"weight": sample_weight}),
            }
        )
        loss = compute_loss(
            self,
            {MASK_KEY: batch["mask"]},
            {"label": batch["label"], "is_labeled": batch["is_labeled"]},
            batch["y_pred"],
            batch.get("weight"),
            training,
        )
        return loss / replicas

    return wrapper


def batch_shards():
    """How many parts every batch is split into: the size of the batch axis
    of the current `keras.distribution` device mesh (JAX), the replicas of
    the `tf.distribute` strategy in scope (TensorFlow); 1 without either.
    Batches should divide by it (JAX requires it)."""
    if keras.backend.backend() == "tensorflow":
        return strategy_replicas()
    current = keras.distribution.distribution()
    if current is None or getattr(current, "batch_dim_name", None) is None:
        return 1
    mesh = current.device_mesh
    return int(mesh.shape[mesh.axis_names.index(current.batch_dim_name)])


def pad_to_shards(x, y=None, sample_weight=None, shards=None):
    """Pads a dict of arrays (and its targets) with inert rows up to a
    multiple of `shards` (default `batch_shards()`), so that every batch,
    the last one included, divides by the device count when the batch size
    does. An inert row has every modality missing (zeros, mask 0), is
    unlabeled and has sample weight 0: no loss term and no metric reads it.

    Returns:
        `(x, y, sample_weight, count)`, `count` the original number of rows
        (predictions beyond it are the padding's). Unchanged with one shard.
    """
    count = len(next(iter(x.values())))
    shards = batch_shards() if shards is None else shards
    extra = -count % shards
    if not extra:
        return x, y, sample_weight, count

    def pad(array, value=0):
        array = np.asarray(array)
        filler = np.full((extra,) + array.shape[1:], value, array.dtype)
        return np.concatenate([array, filler])

    names = [k for k in x if k != MASK_KEY]
    mask = x.get(MASK_KEY, np.ones((count, len(names)), "float32"))
    padded = {
        k: pad(v, "" if np.asarray(v).dtype.kind in "USO" else 0)
        for k, v in x.items()
        if k != MASK_KEY
    }
    padded[MASK_KEY] = pad(mask)
    if y is not None:
        if not isinstance(y, dict):
            y = {"label": y}
        labels = np.asarray(y["label"])
        is_labeled = y.get("is_labeled", np.ones(count, "float32"))
        y = {
            "label": np.concatenate([labels, np.repeat(labels[:1], extra, 0)]),
            "is_labeled": pad(np.asarray(is_labeled, "float32")),
        }
    if sample_weight is not None:
        sample_weight = pad(np.asarray(sample_weight, "float32"))
    return padded, y, sample_weight, count


def process_sum(values):
    """Sum of a host NumPy array over the processes of a multi-process JAX
    run (`keras.distribution.initialize`), where each process holds its
    own share of the data; the array itself otherwise."""
    values = np.asarray(values, "float32")
    if keras.backend.backend() != "jax":
        return values
    import jax  # the JAX backend only

    if jax.process_count() == 1:
        return values
    from jax.experimental import multihost_utils  # JAX only

    return np.asarray(multihost_utils.process_allgather(values)).sum(axis=0)


def local_device_count():
    """Devices that `data_parallel` spreads the batch over: every local
    accelerator, else every CPU device of the backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        return len(keras.distribution.list_devices())
    if backend == "tensorflow":
        return len(_tensorflow_devices())
    return 1


def training_context(distribute, batch_size=None, finetune=False):
    """`data_parallel(batch_size)` when `distribute`, else a context that
    changes nothing (the `--distribute` option of the command and the
    recipes). Fine-tuning streamed backbones is not data-parallel yet: a
    `ValueError` when both are asked for."""
    if distribute and finetune:
        raise ValueError(
            "--distribute does not support --finetune yet: train the "
            "backbones on one device, or train on their cached features."
        )
    if distribute:
        return data_parallel(batch_size)
    return contextlib.nullcontext(1)


@contextlib.contextmanager
def data_parallel(batch_size=None):
    """Context in which models are built, compiled and trained data-parallel
    over every local device, with the backend's own engine.

    JAX: `keras.distribution.DataParallel` over `list_devices()` (on several
    hosts, call `keras.distribution.initialize()` first). TensorFlow:
    `tf.distribute.MirroredStrategy` (models must be created inside the
    context). PyTorch: not supported by Keras 3.15, a `ValueError`.

    Args:
        batch_size: int or None; when given, it must divide by the device
            count (every replica gets the same static share of each batch).

    Yields:
        The number of devices (replicas).
    """
    backend = keras.backend.backend()
    if backend == "torch":
        raise ValueError(
            "Data-parallel training is not available on the torch backend: "
            "Keras 3.15 has no distribution support for torch. Use "
            "KERAS_BACKEND=jax (keras.distribution.DataParallel) or "
            "KERAS_BACKEND=tensorflow (tf.distribute.MirroredStrategy)."
        )
    devices = local_device_count()
    if batch_size is not None and batch_size % devices:
        raise ValueError(
            f"The batch size ({batch_size}) must be divisible by the number "
            f"of devices ({devices}) for data-parallel training: each "
            "device gets the same share of every batch. Use a multiple of "
            f"{devices}."
        )
    if backend == "jax":
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(
                devices=keras.distribution.list_devices()
            )
        )
        try:
            yield devices
        finally:
            keras.distribution.set_distribution(previous)
        return
    with mirrored_strategy().scope():
        yield devices


@functools.cache
def mirrored_strategy():
    """The process's one `tf.distribute.MirroredStrategy` over every local
    GPU (else every logical CPU device). One per process: a second strategy
    over the same devices reuses the collective keys of the first, and its
    collectives then fail with shape mismatches."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    return tf.distribute.MirroredStrategy(_tensorflow_devices())


def _tensorflow_devices():
    """Names of every logical GPU, else of every logical CPU device."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
