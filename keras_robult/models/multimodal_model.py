import keras
import numpy as np
from keras import ops

from keras_robult.calibration.presence_calibration import (
    PresenceCalibration,
    pattern_ids,
)
from keras_robult.distribution import (
    check_jit_compile,
    pad_to_shards,
    process_sum,
)
from keras_robult.layers.latent_projection import LatentProjection
from keras_robult.tasks.task import Task, labeled_rows
from keras_robult.utils.interrupt import interruptible
from keras_robult.utils.tensor import safe_divide
from keras_robult.utils.validation import (
    MASK_KEY,
    check_arrays,
    check_dataset_spec,
    check_keys,
    is_string_array,
)


@keras.saving.register_keras_serializable(package="keras_robult")
class MultimodalModel(keras.Model):
    """Base of the multimodal models: named modalities, a modality mask,
    per-sample predictions from whichever modalities are present.

    It owns what `Robult` and the baselines share: the per-modality encoders
    (each followed by a `LatentProjection` to `latent_dim`), zero-filling of
    missing modalities, input checks with clear errors (at trace time in
    `call`, on the data before `fit` / `evaluate` / `predict`), late fusion
    (`mean_over_present`), target unpacking and the task metric on labeled
    samples. Subclasses implement `call` (returning at least
    `"prediction"`, passed through `with_fallback`) and `compute_loss`.

    A sample with no modality present (allowed in `predict` and serving,
    an error in `fit` / `evaluate`) gets a defined, finite fallback
    prediction: the training-label prior (`label_prior`, a non-trainable
    weight set by `fit` from array inputs or by `set_label_prior`; the
    task's `default_prior()` until then) and `num_modalities = 0`. Every
    other sample of the batch is unaffected.

    A model calibrated on held-out data (`calibrate`) also returns, per
    presence pattern, calibrated class probabilities (`prediction`, with
    `confidence` and `uncalibrated_prediction`) or a prediction interval
    (`prediction_interval`, regression); see `PresenceCalibration`.

    Args:
        encoders: dict, modality name -> Keras layer producing
            `(batch, features)`; its order is the modality order.
        task: a `keras_robult.tasks.Task`.
        latent_dim: int, width the encoders' outputs are projected to.
        calibration: optional `PresenceCalibration` (or its config), as
            `calibrate` sets it; saved in the model's config.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict of modality tensors plus optional `"modality_mask"`
            `(batch, M)` (default: all present).
        training: bool.
    """

    def __init__(
        self, encoders, task, latent_dim=128, calibration=None, **kwargs
    ):
        super().__init__(**kwargs)
        if not isinstance(encoders, dict) or not encoders:
            raise ValueError(
                "`encoders` must be a non-empty dict mapping modality names "
                f"to Keras layers; received {encoders!r}."
            )
        for name, encoder in encoders.items():
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"Modality names must be non-empty strings; got {name!r}."
                )
            if name == MASK_KEY:
                raise ValueError(
                    f"'{MASK_KEY}' is reserved for the modality mask and "
                    "cannot be a modality name."
                )
            if not isinstance(encoder, keras.layers.Layer):
                raise ValueError(
                    f"The encoder of modality '{name}' must be a Keras layer "
                    f"or model; received {type(encoder).__name__}."
                )
        if not isinstance(task, Task):
            raise ValueError(
                "`task` must be a keras_robult.tasks.Task (Classification, "
                f"Regression or MultiLabel); received {task!r}."
            )
        self.encoders = dict(encoders)
        self.modalities = tuple(encoders)
        self.num_modalities = len(self.modalities)
        self.task = task
        self.latent_dim = int(latent_dim)
        self.projections = {
            name: LatentProjection(self.latent_dim, name=f"projection_{name}")
            for name in self.modalities
        }
        self.task_metric = task.make_metric()
        self._input_dtypes = {}
        self._input_shapes = {}
        self._pending_prior = None
        self.calibration = None
        if calibration is not None:
            self.set_calibration(calibration)

    # ---------------------------------------------------------------- inputs
    def _check_inputs(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError(
                f"{type(self).__name__} expects a dict of modality tensors "
                f"plus '{MASK_KEY}'; received {type(inputs).__name__}."
            )
        check_keys(inputs.keys(), self.modalities)

    def _modality_mask(self, inputs):
        """The `(batch, M)` float 0/1 presence mask every computation
        reads: modality `m` of a sample is present where its
        `modality_mask` value is above 0.5 (1 present, 0 absent; any
        other value is read by that threshold, NaN as absent) and every
        value of its input is finite. A NaN or infinite input is a
        missing modality, reported in `dropped_modalities`: `model(x)`,
        `predict` and the exported signatures all apply this rule."""
        claimed = self._claimed_mask(inputs) > 0.5
        # (A loss on the global batch of several replicas gets the mask
        # alone: the rule was applied to it on each replica.)
        finite = [
            self._finite_rows(inputs[m]) if m in inputs else None
            for m in self.modalities
        ]
        if all(column is None for column in finite):
            return ops.cast(claimed, "float32")
        columns = [
            claimed[:, index]
            if column is None
            else ops.logical_and(claimed[:, index], column)
            for index, column in enumerate(finite)
        ]
        return ops.cast(ops.stack(columns, axis=1), "float32")

    def _claimed_mask(self, inputs):
        """The `modality_mask` as given (float32 `(batch, M)`; all ones
        without one), before `_modality_mask`'s rule."""
        if MASK_KEY not in inputs:
            # All present, batch size from the data: no `ops.shape` (a
            # traced partial batch has none on TensorFlow under XLA).
            first = ops.cast(inputs[self.modalities[0]], "float32")
            rows = ops.ones_like(
                first[(slice(None),) + (0,) * (first.ndim - 1)]
            )
            return rows[:, None] * ops.ones((1, self.num_modalities))
        mask = inputs[MASK_KEY]
        if len(mask.shape) != 2 or mask.shape[-1] != self.num_modalities:
            raise ValueError(
                f"'{MASK_KEY}' must have shape (batch, "
                f"{self.num_modalities}), one column per modality "
                f"{list(self.modalities)}; received shape {tuple(mask.shape)}."
            )
        return ops.cast(mask, "float32")

    @staticmethod
    def _finite_rows(x):
        """`(batch,)` bool, True where a floating-point input row holds
        finite values only; None for inputs that cannot be NaN (integers,
        text)."""
        if "float" not in keras.backend.standardize_dtype(x.dtype):
            return None
        finite = ops.isfinite(x)
        if len(x.shape) == 1:
            return finite
        return ops.all(finite, axis=tuple(range(1, len(x.shape))))

    def dropped_modalities(self, inputs):
        """`(batch, M)` int32: 1 where the mask says present but the
        input holds NaN or infinite values, so the model treated the
        modality as missing (`_modality_mask`)."""
        claimed = ops.cast(self._claimed_mask(inputs) > 0.5, "int32")
        kept = ops.cast(self._modality_mask(inputs), "int32")
        return claimed - kept

    def build(self, inputs_shape):
        """Builds every sub-layer by tracing `call` on symbolic inputs.

        Input errors (a missing modality, a mask of the wrong width) are
        raised here, before anything is marked as built.
        """
        self._check_inputs(inputs_shape)
        self._input_shapes = {
            key: tuple(shape)[1:] for key, shape in inputs_shape.items()
        }
        prior = self._pending_prior
        if prior is None:
            prior = self.task.default_prior()
        self.label_prior = self.add_weight(
            shape=(self.task.output_dim,),
            initializer=keras.initializers.Constant(prior),
            trainable=False,
            name="label_prior",
        )
        self._pending_prior = None
        self.call(
            {
                key: keras.KerasTensor(
                    tuple(shape), dtype=self._input_dtypes.get(key, "float32")
                )
                for key, shape in inputs_shape.items()
            }
        )
        self.built = True

    @property
    def input_dtypes(self):
        """dict, input name -> dtype the model was given (`"float32"` where
        it has not seen data); travels with the saved model."""
        return {
            key: self._input_dtypes.get(key, "float32")
            for key in self.modalities + (MASK_KEY,)
        }

    def get_build_config(self):
        config = super().get_build_config()
        if config is not None and self._input_dtypes:
            config["input_dtypes"] = dict(self._input_dtypes)
        return config

    def build_from_config(self, config):
        config = dict(config)
        self._input_dtypes = dict(config.pop("input_dtypes", {}))
        super().build_from_config(config)

    def record_input_dtypes(self, x):
        """Remembers the dtype of each input of `x` (a dict of arrays, or
        a `tf.data.Dataset`), once, before the model is built: a saved
        model rebuilds its inputs with them (e.g. string text). `fit`,
        `evaluate` and `predict` call it; call it before `build` when
        building a model by hand on a sample."""
        if self.built or self._input_dtypes:
            return
        if isinstance(x, dict):
            dtypes = {k: np.asarray(v).dtype for k, v in x.items()}
        else:
            spec = getattr(x, "element_spec", None)
            spec = spec[0] if isinstance(spec, tuple) else spec
            if not isinstance(spec, dict):
                return
            dtypes = {
                k: np.dtype(v.dtype.as_numpy_dtype) for k, v in spec.items()
            }
        for key, dtype in dtypes.items():
            if dtype.kind in "USO":
                self._input_dtypes[key] = "string"
            elif dtype.kind in "iub":
                self._input_dtypes[key] = keras.backend.standardize_dtype(
                    dtype.name
                )
            else:
                self._input_dtypes[key] = "float32"

    def _check_text_inputs(self, x):
        """Text goes only to a modality the model takes as text, and only
        on TensorFlow (the one backend with string tensors)."""
        expected = self.input_dtypes
        for name in self.modalities:
            array = np.asarray(x[name]) if name in x else None
            if array is None or not array.size:
                continue
            text = is_string_array(array)
            if text and keras.backend.backend() != "tensorflow":
                raise ValueError(
                    f"Modality '{name}' holds text; text inputs (a tokenizer "
                    "inside the encoder) need the TensorFlow backend, this "
                    f"is {keras.backend.backend()}. Tokenize in the data "
                    "pipeline and feed numeric token ids instead."
                )
            if text != (expected[name] == "string"):
                raise ValueError(
                    f"Modality '{name}' was built for "
                    + ("text" if expected[name] == "string" else "numeric")
                    + f" ({expected[name]}) input; received "
                    + (
                        "text."
                        if text
                        else f"numeric input of dtype {array.dtype}."
                    )
                )

    # -------------------------------------------------------------- fallback
    def set_label_prior(self, labels, is_labeled=None):
        """Sets the fallback prediction for samples with no modality present
        to the training-label prior of `labels` (labeled rows only; see
        `Task.label_prior`). `fit` calls it on array inputs; call it
        yourself when you train from a `tf.data.Dataset`.

        In a multi-process JAX run, where each process passes its own share
        of the data, the prior is that of every process's labeled rows.

        Returns:
            The prior, a NumPy `(output_dim,)` array.
        """
        prior = self.task.label_prior(labels, is_labeled)
        # The prior is a mean over labeled rows: combine the processes'
        # means weighted by their counts (the identity in one process).
        count = len(labeled_rows(labels, is_labeled))
        total = process_sum(np.append(prior * count, count))
        if total[-1] > 0:
            prior = (total[:-1] / total[-1]).astype("float32")
        if self.built:
            self.label_prior.assign(prior)
        else:
            self._pending_prior = prior
        return prior

    def modality_predictions(self, inputs):
        """`(batch, M, output_dim)`: the prediction from each present
        modality alone (from the same inputs with a one-hot mask per
        modality). The export uses it for a model whose `call` does not
        return `"modality_predictions"` (one full forward pass per
        modality, which `call` then need not pay at every prediction)."""
        mask = self._modality_mask(inputs)
        single = []
        for index in range(self.num_modalities):
            one = mask * ops.one_hot(index, self.num_modalities)[None]
            outputs = self({**inputs, MASK_KEY: one}, training=False)
            single.append(outputs["prediction"])
        return ops.stack(single, axis=1)

    def with_fallback(self, outputs, mask, inputs=None):
        """Adds `num_modalities` (present count, int32 `(batch,)`) to the
        call outputs and replaces `prediction` by `label_prior` on samples
        with no modality present; given the call's `inputs`, also
        `dropped_modalities` (see `dropped_modalities`). A calibrated model
        (`calibrate`) adds its calibrated outputs here, from the presence
        mask, so every method and every serving signature has them."""
        count = ops.sum(ops.cast(mask > 0.5, "int32"), axis=-1)
        prediction = outputs["prediction"]
        prior = ops.cast(self.label_prior, prediction.dtype)[None, :]
        outputs["prediction"] = ops.where(
            count[:, None] > 0, prediction, ops.zeros_like(prediction) + prior
        )
        outputs["num_modalities"] = count
        if self.calibration is not None:
            calibrated = self.calibration.apply(outputs["prediction"], mask)
            if "prediction" in calibrated:
                outputs["uncalibrated_prediction"] = outputs["prediction"]
            outputs.update(calibrated)
        if inputs is not None:
            outputs["dropped_modalities"] = self.dropped_modalities(inputs)
        return outputs

    def encode(self, inputs, mask):
        """Stacked modality latents `(batch, M, latent_dim)`.

        A missing modality is zero-filled before its encoder, so its values
        (even NaN) never reach anything downstream. Text inputs (a model
        whose encoder holds the tokenizer, TensorFlow only) cannot be NaN
        and pass unchanged; the mask removes a missing one downstream.
        """
        present = mask > 0.5
        latents = []
        for index, name in enumerate(self.modalities):
            x = inputs[name]
            if keras.backend.standardize_dtype(x.dtype) != "string":
                keep = self.per_row(present[:, index], x)
                x = ops.where(keep, x, ops.zeros_like(x))
            encoded = self.encoders[name](x)
            if len(encoded.shape) != 2:  # a static shape: checked once
                raise ValueError(
                    f"The encoder of modality '{name}' must output one "
                    "vector per sample, shape (batch, features); it outputs "
                    f"shape {tuple(encoded.shape)}. Pool or flatten inside "
                    "the encoder (e.g. keras.layers.GlobalAveragePooling1D "
                    "after a sequence layer)."
                )
            latents.append(self.projections[name](encoded))
        return ops.stack(latents, axis=1)

    @staticmethod
    def present_first_ranks(present, seed_generator):
        """`(batch, M)` int ranks `0..M-1`: each sample's present modalities
        first, in random order, then the missing ones (`rank < k` keeps `k`
        random present modalities)."""
        noise = keras.random.uniform(ops.shape(present), seed=seed_generator)
        noise = noise + 2.0 * (1.0 - present)
        return ops.argsort(ops.argsort(noise, axis=-1), axis=-1)

    @staticmethod
    def mean_over_present(values, mask):
        """Mean over the present modalities of `values` `(batch, M, width)`,
        `(batch, width)` (zeros for a sample with none): the late fusion of
        branch outputs, the mean of present latents."""
        weights = ops.cast(mask, values.dtype)
        total = ops.einsum("bm,bmo->bo", weights, values)
        count = ops.sum(weights, axis=-1, keepdims=True)
        return safe_divide(total, count)

    @staticmethod
    def where_all_present(mask, full, partial):
        """Per sample: `full` where every modality is present, else
        `partial` (mask arithmetic, no branch on data)."""
        all_present = ops.all(mask > 0.5, axis=-1, keepdims=True)
        return ops.where(all_present, full, partial)

    # --------------------------------------------------------------- targets
    def unpack_targets(self, x, y):
        """`(labels, is_labeled)` from a target dict, plain labels or None.

        Placeholder labels of unlabeled samples (-1, NaN, ...) are replaced
        by a valid value: every use of a label is gated by `is_labeled`.
        """
        batch_size = ops.shape(self._modality_mask(x))[0]
        if y is None:
            labels = self.task.placeholder_labels(batch_size)
            is_labeled = ops.zeros((batch_size,))
        elif isinstance(y, dict):
            labels = y["label"]
            is_labeled = y.get("is_labeled")
            if is_labeled is None:
                is_labeled = ops.ones((batch_size,))
        else:
            labels, is_labeled = y, ops.ones((batch_size,))
        is_labeled = ops.reshape(ops.cast(is_labeled, "float32"), (-1,))
        keep = self.per_row(is_labeled > 0.5, labels)
        labels = ops.where(keep, labels, ops.zeros_like(labels))
        return labels, is_labeled

    @staticmethod
    def per_row(flags, values):
        """`flags` `(batch,)` reshaped to broadcast against `values`
        `(batch, ...)` (one flag per row, e.g. for `ops.where`)."""
        return ops.reshape(flags, (-1,) + (1,) * (len(values.shape) - 1))

    @staticmethod
    def sample_weight_vector(sample_weight):
        """The user's per-sample weights as a float32 `(batch,)` vector, or
        None. (For dict targets Keras hands `compute_loss` one copy of the
        weights per target key; the copy under `"label"` is used.)"""
        if sample_weight is None:
            return None
        if isinstance(sample_weight, dict):
            sample_weight = sample_weight.get(
                "label", next(iter(sample_weight.values()))
            )
        return ops.reshape(ops.cast(sample_weight, "float32"), (-1,))

    @classmethod
    def supervised_weights(cls, is_labeled, sample_weight=None):
        """Per-sample weights of the supervised terms and the task metric:
        `is_labeled` times the user's `sample_weight`, if any."""
        weight = cls.sample_weight_vector(sample_weight)
        return is_labeled if weight is None else is_labeled * weight

    def branch_supervised_loss(self, labels, weight, logits, available):
        """Mean over branches of the task loss, each branch averaged over
        the samples where `weight * available` is positive; branches with
        no such sample are left out.

        Args:
            labels: `(batch,) + label_shape`.
            weight: `(batch,)` per-sample weights (is_labeled).
            logits: `(batch, branches, output_dim)`.
            available: `(batch, branches)`.
        """
        per_sample = self.task.supervised_loss(labels, logits)
        branch_weight = available * weight[:, None]
        mass = ops.sum(branch_weight, axis=0)
        branch_loss = safe_divide(
            ops.sum(branch_weight * per_sample, axis=0), mass
        )
        has_branch = ops.cast(mass > 0, "float32")
        return safe_divide(
            ops.sum(has_branch * branch_loss), ops.sum(has_branch)
        )

    def regularization_loss(self):
        """Sum of the layers' regularisation losses (0 when none)."""
        if not self.losses:
            return ops.zeros(())
        return ops.sum([ops.cast(loss, "float32") for loss in self.losses])

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates the task metric on the labeled samples (weighted by
        `sample_weight` when given)."""
        labels, is_labeled = self.unpack_targets(x, y)
        self.task_metric.update_state(
            self.task.metric_labels(labels),
            y_pred["prediction"],
            sample_weight=self.supervised_weights(is_labeled, sample_weight),
        )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # ---------------------------------------------------------- eager checks
    def _check_data(self, x, y=None, prediction=False):
        """Eager checks of `fit` / `evaluate` data, or (`prediction`) of
        `predict` data: rows with no modality allowed, and a mask value
        other than 0 / 1 or a NaN in a present modality warned about and
        read by the model's rule (`_modality_mask`) rather than refused."""
        if x is None:
            return
        self.record_input_dtypes(x)
        if isinstance(x, dict):
            self._check_shapes({k: np.shape(v)[1:] for k, v in x.items()})
            self._check_text_inputs(x)
            check_arrays(
                x, y, self.modalities, self.task, prediction, prediction
            )
        elif hasattr(x, "__array__") or isinstance(x, (list, tuple)):
            raise ValueError(
                f"{type(self).__name__} expects a dict of modality arrays "
                f"plus '{MASK_KEY}'; received {type(x).__name__}."
            )
        else:
            check_dataset_spec(x, self.modalities)
            spec = getattr(x, "element_spec", None)
            spec = spec[0] if isinstance(spec, tuple) else spec
            if isinstance(spec, dict):
                self._check_shapes(
                    {k: tuple(v.shape)[1:] for k, v in spec.items()}
                )

    def _check_shapes(self, shapes):
        """Per-sample shapes against those the model was built on (a
        `None` dimension takes any size), before Keras sees the data: a
        wrong width would otherwise fail inside an encoder, under a layer's
        name, and on JAX leave the model unable to predict again."""
        for key, built in self._input_shapes.items():
            given = shapes.get(key)
            if given is None or key == MASK_KEY:
                continue
            given = tuple(given)
            fits = len(given) == len(built) and all(
                b is None or g is None or b == g for b, g in zip(built, given)
            )
            if not fits:
                raise ValueError(
                    f"Modality '{key}' has per-sample shape {given}; the "
                    f"model was built for {tuple(built)}."
                )

    @staticmethod
    def _text_as_objects(x):
        """NumPy text arrays (`<U`, `<S`) as object arrays, the form Keras'
        data adapters turn into string tensors."""
        if not isinstance(x, dict):
            return x
        return {
            k: v.astype(object)
            if isinstance(v, np.ndarray) and v.dtype.kind in "US"
            else v
            for k, v in x.items()
        }

    def _check_jit_compile(self):
        # Here rather than in an overridden `compile`: Keras' `load_model`
        # does not compile a model whose class overrides `compile`.
        if getattr(self, "compiled", False):
            check_jit_compile(self.jit_compile)
            if getattr(self, "loss", None) is not None:
                raise ValueError(
                    f"{type(self).__name__} computes its own loss "
                    "(`compute_loss`, weighted by `loss_weights`); "
                    f"compile(loss={self.loss!r}) would be ignored. Compile "
                    "without `loss`."
                )

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_jit_compile()
        x = self._text_as_objects(x)
        self._check_data(x, y)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, (tuple, list)):
            self._check_data(*validation_data[:2])
            padded = self._pad_to_shards(*validation_data)
            kwargs["validation_data"] = padded[: len(validation_data)]
        elif validation_data is not None:
            self._check_data(validation_data)
        if isinstance(x, dict) and y is not None:
            labels, is_labeled = (
                (y["label"], y.get("is_labeled"))
                if isinstance(y, dict)
                else (y, None)
            )
            self.set_label_prior(labels, is_labeled)
        x, y, weight = self._pad_to_shards(x, y, kwargs.get("sample_weight"))
        if weight is not None:
            kwargs["sample_weight"] = weight
        self._build_before_tracing(x, kwargs.get("batch_size"))
        return _interruptibly(super().fit, 5, x, y, *args, **kwargs)

    def _build_before_tracing(self, x, batch_size=None, optimizer=True):
        """Builds the layers (from the input arrays' shapes) and the
        optimizer before TensorFlow traces a step. Without a distribution
        strategy, Keras' TensorFlow trainer defers both to the step's
        first trace, and a `tf.function` that creates variables is traced
        twice: the first `fit` of a model paid two traces of its training
        step (about 6 % of the CPU time of the Robult tests' fits). Built
        here, the variables are created in the same order as in the trace
        (the same initial values). The other backends build before their
        first step already, and so does TensorFlow under a distribution
        strategy (the model's `_distribute_strategy`, Keras' own
        condition)."""
        if keras.backend.backend() != "tensorflow" or not isinstance(x, dict):
            return
        if getattr(self, "_distribute_strategy", None) is not None:
            return
        if not self.built:  # on a batch's shapes, as Keras builds
            rows = len(next(iter(x.values())))
            batch = min(rows, batch_size or 32)
            self.build({k: (batch, *np.shape(v)[1:]) for k, v in x.items()})
        state = getattr(self, "optimizer", None) if optimizer else None
        if state is not None and not state.built:
            state.build(self.trainable_variables)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_jit_compile()
        x = self._text_as_objects(x)
        self._check_data(x, y)
        x, y, weight = self._pad_to_shards(x, y, kwargs.get("sample_weight"))
        if weight is not None:
            kwargs["sample_weight"] = weight
        self._build_before_tracing(x, kwargs.get("batch_size"), optimizer=False)
        return _interruptibly(super().evaluate, 6, x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_jit_compile()
        x = self._text_as_objects(x)
        self._check_data(x, prediction=True)
        if not isinstance(x, dict):
            return _interruptibly(super().predict, 4, x, *args, **kwargs)
        x, _, _, count = pad_to_shards(x)
        self._build_before_tracing(x, kwargs.get("batch_size"), optimizer=False)
        outputs = _interruptibly(super().predict, 4, x, *args, **kwargs)
        return keras.tree.map_structure(lambda out: out[:count], outputs)

    @staticmethod
    def _pad_to_shards(x, y=None, sample_weight=None):
        """`(x, y, sample_weight)`; array data padded with inert rows so
        that every batch divides by the device count under data parallelism
        (see `keras_robult.distribution.pad_to_shards`)."""
        if not isinstance(x, dict):
            return x, y, sample_weight
        return pad_to_shards(x, y, sample_weight)[:3]

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved, except that
        `jit_compile=True` (XLA, on TensorFlow and JAX) is dropped on
        torch, where it means `torch.compile`: minutes before the first
        prediction of a model trained elsewhere. Call
        `compile(..., jit_compile=True)` after loading to have it."""
        if keras.backend.backend() == "torch" and config.get("jit_compile"):
            config = dict(config, jit_compile=False)
        super().compile_from_config(config)

    # ----------------------------------------------------------- serialising
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoders": {
                    name: keras.layers.serialize(encoder)
                    for name, encoder in self.encoders.items()
                },
                "task": keras.saving.serialize_keras_object(self.task),
                "latent_dim": self.latent_dim,
            }
        )
        if self.calibration is not None:
            config["calibration"] = self.calibration.get_config()
        return config

    # ----------------------------------------------------------- calibrating
    def set_calibration(self, calibration):
        """Uses `calibration` (a `PresenceCalibration`, its config, or
        None to remove it) from the next `predict` or call on."""
        if isinstance(calibration, dict):
            calibration = PresenceCalibration.from_config(calibration)
        if calibration is not None:
            if not isinstance(calibration, PresenceCalibration):
                raise ValueError(
                    "`calibration` must be a PresenceCalibration, its "
                    f"config or None; received {type(calibration).__name__}."
                )
            if tuple(calibration.modalities) != self.modalities:
                raise ValueError(
                    f"The calibration is for the modalities "
                    f"{calibration.modalities}; the model's are "
                    f"{list(self.modalities)}."
                )
            expected = {
                "classification": "temperature",
                "regression": "conformal",
            }.get(self.task.name)
            if calibration.kind != expected:
                raise ValueError(
                    f"A {calibration.kind} calibration does not apply to "
                    f"a {self.task.name} model."
                )
        self.calibration = calibration
        # The compiled prediction step holds the table: trace it again.
        self.predict_function = None

    def calibrate(
        self,
        x,
        y,
        coverage=0.9,
        patterns="all",
        prior_strength=20.0,
        min_samples=30,
        batch_size=None,
    ):
        """Fits a calibration per presence pattern on held-out labeled
        data and keeps it in the model (see `PresenceCalibration`).

        Classification: a temperature per pattern; regression: a
        split-conformal prediction interval per pattern at `coverage`.
        The data must not have been used for training (carve it from the
        training split, never from the test split).

        Args:
            x: dict of modality arrays plus optional `"modality_mask"`.
            y: labels `(samples,)`, or a dict with `"label"` and
                `"is_labeled"` (only the labeled rows are used).
            coverage: float in (0, 1), the intervals' nominal coverage
                (regression). Defaults to 0.9.
            patterns: `"all"` (default): the held-out rows are predicted
                under every non-empty subset of their modalities (the other
                modalities masked), so each pattern gets every row;
                `"observed"`: each row under its own mask only.
            prior_strength: float, the precision of the prior around the
                trend of the temperatures (classification; see
                `PresenceCalibration`). Defaults to 20.
            min_samples: int, the samples a pattern needs for an interval
                of its own (regression).
            batch_size: `predict`'s batch size.

        Returns:
            The fitted `PresenceCalibration` (also `model.calibration`).
        """
        if self.task.name not in ("classification", "regression"):
            raise ValueError(
                "calibrate supports classification (temperatures) and "
                f"regression (intervals); this model's task is "
                f"{self.task.name}."
            )
        if patterns not in ("all", "observed"):
            raise ValueError(
                "`patterns` must be 'all' or 'observed'; received "
                f"{patterns!r}."
            )
        if not isinstance(x, dict):
            raise ValueError(
                "calibrate takes a dict of modality arrays (plus "
                f"'{MASK_KEY}'); received {type(x).__name__}."
            )
        if y is None:
            raise ValueError(
                "calibrate needs the held-out samples' labels (`y`)."
            )
        labels, is_labeled = (
            (y.get("label"), y.get("is_labeled"))
            if isinstance(y, dict)
            else (y, None)
        )
        labels = np.asarray(labels)
        keep = (
            np.ones(len(labels), bool)
            if is_labeled is None
            else np.asarray(is_labeled).reshape(-1) > 0.5
        )
        if not keep.any():
            raise ValueError(
                "calibrate received no labeled sample: give held-out "
                "samples with their labels."
            )
        x = {
            k: np.asarray(v)[keep] for k, v in self._text_as_objects(x).items()
        }
        labels = labels[keep]
        if labels.dtype.kind in "fc" and not np.all(np.isfinite(labels)):
            raise ValueError(
                "The calibration labels hold NaN or infinite values: give "
                "labeled held-out samples only."
            )
        self._check_data(x, labels)
        mask = np.asarray(
            ops.convert_to_numpy(self._modality_mask(x)), dtype="float32"
        )
        if patterns == "all":
            count = self.num_modalities
            if count > 10:
                raise ValueError(
                    f"patterns='all' predicts 2 ** {count} - 1 subsets; "
                    "use patterns='observed' with this many modalities."
                )
            subsets = [
                np.array([(q >> m) & 1 for m in range(count)], "float32")
                for q in range(1, 1 << count)
            ]
        else:
            subsets = [np.ones(self.num_modalities, "float32")]
        previous = self.calibration
        self.set_calibration(None)
        try:
            predictions, ids, rows = [], [], []
            for subset in subsets:
                # Every row each time (one compiled shape); rows left with
                # nothing are dropped below.
                shown = mask * subset[None, :]
                out = self.predict(
                    {**x, MASK_KEY: shown}, batch_size=batch_size, verbose=0
                )
                keep = shown.max(axis=1) > 0.5
                predictions.append(np.asarray(out["prediction"])[keep])
                ids.append(pattern_ids(shown[keep]))
                rows.append(np.flatnonzero(keep))
        except BaseException:
            self.set_calibration(previous)
            raise
        values = np.concatenate(predictions)
        patterns_seen = np.concatenate(ids)
        targets = np.asarray(labels).reshape(len(labels), -1)[
            np.concatenate(rows)
        ]
        try:
            if self.task.name == "classification":
                fitted = PresenceCalibration.fit_temperatures(
                    values,
                    targets.reshape(-1),
                    patterns_seen,
                    list(self.modalities),
                    prior_strength=prior_strength,
                    rows=np.concatenate(rows),
                )
            else:
                fitted = PresenceCalibration.fit_conformal(
                    values,
                    targets.reshape(-1),
                    patterns_seen,
                    list(self.modalities),
                    coverage=coverage,
                    min_samples=min_samples,
                )
        except BaseException:
            self.set_calibration(previous)
            raise
        self.set_calibration(fitted)
        return fitted

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Layer objects pass through (a model assembled from trained
        # encoders, e.g. with backbones in front of them).
        config["encoders"] = {
            name: encoder
            if isinstance(encoder, keras.layers.Layer)
            else keras.layers.deserialize(encoder)
            for name, encoder in config["encoders"].items()
        }
        config["task"] = keras.saving.deserialize_keras_object(config["task"])
        return cls(**config)


def model_classes():
    """The sorted names of this package's model classes (every subclass
    of `MultimodalModel` defined in `keras_robult`), for messages."""
    found, pending = [], [MultimodalModel]
    while pending:
        klass = pending.pop(0)
        for sub in klass.__subclasses__():
            if sub.__module__.startswith("keras_robult.") and (
                sub.__name__ not in found
            ):
                found.append(sub.__name__)
            pending.append(sub)
    return sorted(found)


def _interruptibly(loop, callbacks_index, *args, **kwargs):
    """Keras' `fit` / `evaluate` / `predict` (`loop`) with a Ctrl-C that
    stops it on every backend (`keras_robult.utils.interrupt`), its
    check added to the `callbacks` (unless they were passed by position:
    `callbacks_index` is their place in `loop`'s positional arguments)."""
    with interruptible() as check:
        if check is not None and len(args) <= callbacks_index:
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), check]
        return loop(*args, **kwargs)
