"""SavedModel export for TF Serving, from a model trained on any backend.

The exported SavedModel has one `serving_default` signature that takes one
named input per modality (its trailing shape and dtype, batch dimension
free) plus `modality_mask` (float32 `(batch, M)`, 1 = present), and returns
`prediction` (task output space), `modality_predictions` `(batch, M,
output_dim)`, `num_modalities` (int32 `(batch,)`, the present count),
`dropped_modalities` (int32 `(batch, M)`) and `dropped_modality_names`
(string `(batch,)`, comma-separated), and for a classification model
`predicted_class` (string `(batch,)`, the arg-max class's name, or its
index where the model has no class names). A calibrated model
(`model.calibrate`) serves its calibrated outputs too: `prediction`
calibrated, `confidence` and `uncalibrated_prediction` (classification),
or `prediction_interval` `(batch, 2)` (regression), per presence pattern.
Any sample may omit any modality (send zeros and a 0 in the mask); a sample
with none gets the model's training-label prior and `num_modalities = 0`.
The request is read by the model's own rule, as `model(x)` and `predict`
read it: a modality is present where its mask value is above 0.5 and its
input holds finite values only. A NaN or infinite input in a modality the
mask calls present is treated as missing and reported in
`dropped_modalities` / `dropped_modality_names` (and in `num_modalities`),
never served as a confident answer.
Optional endpoints `serve_<modality>` take that modality's tensor alone.
A model with image inputs (float `(batch, height, width, 3)` in [0, 255])
also gets `serve_image_bytes`: the same inputs, except that each image is
the encoded file (JPEG, PNG, GIF, BMP) as a string, decoded and resized
to the model's size in the graph, each on its own (an empty string, or
bytes that do not decode, is a missing image: zeros and mask 0, which the
response's `num_modalities` shows; one bad file never fails the request).
A model that tokenizes strings in the graph loads only after `import
tensorflow_text` (the ops of keras-hub's tokenizers).

Routes, chosen from the running backend:
- `"tensorflow"`: `keras.export.ExportArchive` on the model as it is;
- `"jax2tf"`: the same archive on JAX, through `jax2tf` (shape-polymorphic
  batch dimension);
- `"reload"`: the model is saved to a temporary `.keras` file, which a
  TensorFlow-backend subprocess (`robult export`) reloads and exports. Used
  for PyTorch, and for JAX if its direct export fails.

TensorFlow is imported here only, lazily.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping

import keras
import numpy as np
from numpy.typing import ArrayLike

from keras_robult.data.image_text_pipeline import decode_image_bytes
from keras_robult.models.multimodal_model import (
    MultimodalModel,
    model_classes,
)
from keras_robult.utils.validation import MASK_KEY

__all__ = [
    "export_saved_model",
    "rest_request",
    "grpc_request",
    "input_specs",
    "image_modalities",
    "SERVING_OUTPUTS",
    "CALIBRATED_OUTPUTS",
    "ROUTES",
]

#: Outputs of every serving endpoint (a classification model's also
#: `predicted_class`, see `export_saved_model`).
SERVING_OUTPUTS = (
    "prediction",
    "modality_predictions",
    "num_modalities",
    "dropped_modalities",
    "dropped_modality_names",
)
#: Further outputs of a calibrated model's endpoints (`model.calibrate`):
#: a classification model's `confidence` and `uncalibrated_prediction`
#: (its `prediction` is calibrated), a regression model's
#: `prediction_interval`.
CALIBRATED_OUTPUTS = (
    "confidence",
    "uncalibrated_prediction",
    "prediction_interval",
)
ROUTES = ("tensorflow", "jax2tf", "reload")
# What TensorFlow accepts as an input name in a signature.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$")


def _check_model(model):
    if not isinstance(model, MultimodalModel):
        raise ValueError(
            "export_saved_model takes a keras_robult model ("
            f"{', '.join(model_classes())}); received "
            f"{type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"The model '{model.name}' is not built: train it, call it on a "
            "batch, or load a trained .keras file before exporting (the "
            "input shapes of the signature come from the built model)."
        )
    for name in model.modalities:
        if not _NAME_PATTERN.match(name):
            raise ValueError(
                f"Modality name '{name}' cannot name a SavedModel input "
                "(allowed: letters, digits, '.', '_', '-', '/', starting "
                "with a letter, digit or '.'). Rename the modality."
            )


def input_specs(model):
    """`tf.TensorSpec` per serving input: each modality with its trailing
    shape and dtype, then `modality_mask`; the batch dimension is free.

    Args:
        model: a built keras_robult model.

    Returns:
        dict, input name -> `tf.TensorSpec` (named after the input).
    """
    import tensorflow as tf  # only where a TF pipeline or export runs

    _check_model(model)
    config = model.get_build_config() or {}
    shapes = config.get("input_shape") or {}
    dtypes = model.input_dtypes
    specs = {}
    for name in model.modalities + (MASK_KEY,):
        if name == MASK_KEY:
            shape = (None, model.num_modalities)
        elif name in shapes:
            shape = (None,) + tuple(shapes[name][1:])
        else:
            raise ValueError(
                f"The model records no input shape for modality '{name}'."
            )
        specs[name] = tf.TensorSpec(shape, tf.as_dtype(dtypes[name]), name)
    return specs


def image_modalities(specs):
    """The modalities whose serving input is an image: float `(batch,
    height, width, 3)`."""
    return [
        name
        for name, spec in specs.items()
        if name != MASK_KEY
        and spec.shape.rank == 4
        and spec.shape[-1] == 3
        and spec.dtype.is_floating
    ]


def _decode_requests(contents, spec):
    """Encoded images `(batch,)` -> `(float (batch, h, w, 3) of spec's
    size, float (batch,) 1 where an image was decoded)`. Each image is
    decoded on its own: an empty string, or bytes that do not decode, give
    zeros and 0 (a missing image), never a failed request."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    size = tuple(spec.shape[1:3].as_list())
    count = tf.shape(contents, out_type=tf.int64)[0]
    given = tf.strings.length(contents) > 0
    # A failure drops its element (`ignore_errors`); a sentinel row keeps
    # the batch non-empty.
    decoded = (
        tf.data.Dataset.from_tensor_slices((tf.range(count), contents, given))
        .filter(lambda index, value, present: present)
        .map(
            lambda index, value, present: (
                index,
                tf.cast(decode_image_bytes(value, size), spec.dtype),
            )
        )
        .ignore_errors()
        .concatenate(
            tf.data.Dataset.from_tensors(
                (count, tf.zeros(size + (3,), spec.dtype))
            )
        )
        .batch(2**31 - 1)
    )
    index, images = decoded.get_single_element()
    rows = tf.concat([tf.range(count), [count]], 0)
    found = tf.reduce_any(index[:, None] == rows[None, :], axis=0)[:-1]
    full = tf.scatter_nd(
        index[:, None],
        images,
        tf.concat([[count + 1], tf.constant(size + (3,), tf.int64)], 0),
    )[:-1]
    return full, tf.cast(found, tf.float32)


def _check_request(inputs, specs):
    """TensorFlow assertions with clear messages on the request's shapes
    (a signature does not check them itself)."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    checks = []
    batch = None
    for name, tensor in inputs.items():
        expected = specs[name].shape[1:]
        shape = tf.shape(tensor, out_type=tf.int64)
        checks.append(
            tf.debugging.assert_equal(
                shape[1:],
                tf.constant(expected.as_list(), tf.int64),
                message=f"Input {name} must have shape (batch, "
                + ", ".join(str(d) for d in expected)
                + ")",
            )
        )
        if batch is None:
            batch = shape[0]
        else:
            checks.append(
                tf.debugging.assert_equal(
                    shape[0],
                    batch,
                    message=f"Input {name} has another batch size than "
                    f"{next(iter(inputs))}",
                )
            )
    with tf.control_dependencies(checks):
        return {name: tf.identity(t) for name, t in inputs.items()}


def _write_archive(model, path, modality_endpoints):
    """Builds the SavedModel with `keras.export.ExportArchive`: the model's
    computation becomes one TensorFlow function (traced on TensorFlow,
    converted with jax2tf on JAX), which the TensorFlow-side endpoints
    call after checking the request."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    specs = input_specs(model)

    def serve(inputs):
        outputs = model(inputs, training=False)
        if "modality_predictions" not in outputs:
            outputs["modality_predictions"] = model.modality_predictions(inputs)
        return {
            key: outputs[key]
            for key in SERVING_OUTPUTS + CALIBRATED_OUTPUTS
            if key in outputs and key != "dropped_modality_names"
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Keras' own conversion of a backend function into a tf.function (the
    # step `add_endpoint` runs before registering a signature).
    backend_fn = archive._backend_add_endpoint("model", serve, [specs])
    modality_names = tf.constant(list(model.modalities))
    class_names = _class_names(model)

    def model_fn(inputs):
        """The model's outputs and the string outputs named from them."""
        outputs = dict(backend_fn(inputs))
        dropped = tf.cast(outputs["dropped_modalities"], tf.bool)
        rows = tf.shape(dropped)[0]
        names = tf.ragged.boolean_mask(
            tf.broadcast_to(modality_names[None], tf.shape(dropped)), dropped
        )
        joined = tf.strings.reduce_join(names, axis=1, separator=",")
        outputs["dropped_modality_names"] = tf.reshape(joined, [rows])
        if class_names is not None:
            index = tf.argmax(outputs["prediction"], axis=-1)
            outputs["predicted_class"] = tf.gather(
                tf.constant(class_names), index
            )
        return outputs

    @tf.function(input_signature=[specs], autograph=False)
    def serving_default(inputs):
        return model_fn(_check_request(inputs, specs))

    endpoints = {"serving_default": serving_default}
    images = image_modalities(specs)
    if images:
        byte_specs = {
            name: (
                tf.TensorSpec((None,), tf.string, name)
                if name in images
                else spec
            )
            for name, spec in specs.items()
        }

        def serve_image_bytes(inputs):
            decoded = dict(inputs)
            mask = inputs[MASK_KEY]
            for name in images:
                decoded[name], found = _decode_requests(
                    inputs[name], specs[name]
                )
                column = list(model.modalities).index(name)
                # An image that does not decode is missing: mask 0 (the
                # response's `num_modalities` tells the client).
                keep = tf.one_hot(column, len(model.modalities)) * (
                    1.0 - found[:, None]
                )
                mask = mask * (1.0 - tf.cast(keep, mask.dtype))
            decoded[MASK_KEY] = mask
            return model_fn(_check_request(decoded, specs))

        endpoints["serve_image_bytes"] = tf.function(
            serve_image_bytes, input_signature=[byte_specs], autograph=False
        )
    for index, name in enumerate(
        model.modalities if modality_endpoints else ()
    ):

        def serve_one(x, index=index, name=name):
            x = _check_request({name: x}, specs)[name]
            batch = tf.shape(x)[0]
            inputs = {}
            for other, spec in specs.items():
                if other == name:
                    inputs[other] = x
                elif other == MASK_KEY:
                    row = tf.one_hot([index], model.num_modalities)
                    inputs[other] = tf.tile(row, tf.stack([batch, 1]))
                else:
                    shape = tf.concat(
                        [
                            [batch],
                            tf.constant(spec.shape[1:].as_list(), tf.int32),
                        ],
                        axis=0,
                    )
                    blank = "" if spec.dtype == tf.string else 0
                    inputs[other] = tf.fill(
                        shape, tf.constant(blank, spec.dtype)
                    )
            return model_fn(inputs)

        endpoints[f"serve_{name}"] = tf.function(
            serve_one, input_signature=[specs[name]], autograph=False
        )
    for name, function in endpoints.items():
        function.get_concrete_function()  # traced once, as add_endpoint needs
        archive.add_endpoint(name, function)
    archive.write_out(path, verbose=False)


def _class_names(model):
    """A classification model's class names (its task's `class_names`,
    else the class indices as text), the `predicted_class` output; None
    for other tasks."""
    task = model.task
    if task.name != "classification":
        return None
    names = getattr(task, "class_names", None)
    return list(names or (str(i) for i in range(task.output_dim)))


# What the TensorFlow subprocess of `_reload_and_export` runs.
_EXPORT_IN_TENSORFLOW = """
import sys
import keras
import keras_robult  # registers the classes of the .keras file
from keras_robult.export import export_saved_model
source, path, endpoints = sys.argv[1:]
model = keras.saving.load_model(source)
export_saved_model(
    model, path, modality_endpoints=endpoints == "1", verbose=False
)
"""


def _reload_and_export(model, path, modality_endpoints):
    """Saves a `.keras` file and exports it in a TensorFlow subprocess."""
    with tempfile.TemporaryDirectory(prefix="robult-export-") as folder:
        source = os.path.join(folder, "model.keras")
        model.save(source)
        command = [
            sys.executable,
            "-c",
            _EXPORT_IN_TENSORFLOW,
            source,
            path,
            "1" if modality_endpoints else "0",
        ]
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        result = subprocess.run(
            command, capture_output=True, text=True, env=env
        )
        if result.returncode != 0:
            raise RuntimeError(
                "Exporting through a TensorFlow subprocess failed (exit "
                f"{result.returncode}):\n{result.stderr[-4000:]}"
            )


def export_saved_model(
    model: keras.Model,
    path: str | os.PathLike,
    overwrite: bool = False,
    modality_endpoints: bool = True,
    route: str | None = None,
    verbose: bool = True,
) -> str:
    """Exports a keras_robult model as a SavedModel for TF Serving.

    The directory is written next to `path` and moved into place only when
    complete, so an interrupted export never leaves a half-written model.

    Args:
        model: a built (trained) keras_robult model, on any backend.
        path: output directory.
        overwrite: bool, replace an existing `path`.
        modality_endpoints: bool, add one `serve_<modality>` endpoint per
            modality.
        route: `None` (choose from the backend), `"tensorflow"`,
            `"jax2tf"` or `"reload"`.
        verbose: bool, print the route taken.

    Returns:
        The route taken (`"tensorflow"`, `"jax2tf"` or `"reload"`).

    Example:

    ```python
    model.fit(x, y, epochs=10)
    keras_robult.export.export_saved_model(model, "exported/robult")
    served = tf.saved_model.load("exported/robult")
    served.signatures["serving_default"](**inputs)["prediction"]
    ```
    """
    _check_model(model)
    backend = keras.backend.backend()
    native = {"tensorflow": "tensorflow", "jax": "jax2tf"}.get(backend)
    if route is None:
        route = native or "reload"
    if route not in ROUTES:
        raise ValueError(
            f"`route` must be one of {ROUTES}; received {route!r}."
        )
    if route in ("tensorflow", "jax2tf") and route != native:
        raise ValueError(
            f"Route '{route}' needs the "
            + ("TensorFlow" if route == "tensorflow" else "JAX")
            + f" backend; this is {backend}. Use route='reload'."
        )
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"The output directory {path} exists; pass overwrite=True "
            "(`robult export --overwrite`) to replace it."
        )
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".robult-export-", dir=parent)
    target = os.path.join(staging, "saved_model")
    try:
        if route == "reload":
            _reload_and_export(model, target, modality_endpoints)
        else:
            try:
                _write_archive(model, target, modality_endpoints)
            except Exception as error:
                if route != "jax2tf":
                    raise
                if verbose:
                    print(
                        "robult export: the jax2tf export failed ("
                        f"{type(error).__name__}: {str(error)[:200]}); "
                        "falling back to the reload route",
                        flush=True,
                    )
                shutil.rmtree(target, ignore_errors=True)
                route = "reload"
                _reload_and_export(model, target, modality_endpoints)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if verbose:
        how = {
            "tensorflow": "exported directly on the TensorFlow backend",
            "jax2tf": "JAX functions converted with jax2tf",
            "reload": ".keras file reloaded under TensorFlow in a subprocess",
        }[route]
        print(f"robult export: route {route} ({how}) -> {path}", flush=True)
        if any(spec.dtype == "string" for spec in input_specs(model).values()):
            print(
                "robult export: the model tokenizes strings in the graph; "
                "load it with `import tensorflow_text` first (its ops, e.g. "
                "RegexSplitWithOffsets; TF Serving: a build with them)",
                flush=True,
            )
    return route


def rest_request(
    inputs: Mapping[str, ArrayLike], signature_name: str = "serving_default"
) -> dict:
    """The body of a TF Serving REST `:predict` request (row format).

    Args:
        inputs: dict, input name -> array with a leading batch axis (the
            modalities and `modality_mask`, or one modality for a
            `serve_<modality>` signature).
        signature_name: str.

    Returns:
        A JSON-serialisable dict `{"signature_name": ..., "instances":
        [{name: value, ...}, ...]}`, one instance per sample.
    """
    arrays = {k: np.asarray(v) for k, v in inputs.items()}
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(
            "Every input needs the same number of samples; received "
            f"{ {k: len(v) for k, v in arrays.items()} }."
        )

    def plain(value):
        if value.dtype.kind in "SO":
            return value.astype(str).tolist()
        return value.tolist()

    return {
        "signature_name": signature_name,
        "instances": [
            {k: plain(v[i]) for k, v in arrays.items()}
            for i in range(sizes.pop())
        ],
    }


def grpc_request(
    inputs: Mapping[str, ArrayLike],
    model_name: str,
    signature_name: str = "serving_default",
):
    """A TF Serving gRPC `PredictRequest` (needs the `serving` extra,
    `tensorflow-serving-api`).

    Args:
        inputs: dict, input name -> array with a leading batch axis.
        model_name: str, the name the model server serves it under.
        signature_name: str.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.
    """
    import tensorflow as tf  # only where a TF pipeline or export runs

    try:
        from tensorflow_serving.apis import predict_pb2  # optional
    except ImportError as error:
        raise ImportError(
            "grpc_request needs tensorflow-serving-api: pip install "
            "'keras-robult[serving]'"
        ) from error
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request
