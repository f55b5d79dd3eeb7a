"""Runs a few `fit` steps on one device and data-parallel on two simulated
CPU devices; prints a JSON report. A separate process: the device count is
fixed before the backend starts (`tests/test_distribution.py` runs it).

    KERAS_BACKEND=jax python -m tests.distributed_fit
"""

import json
import os

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
if BACKEND == "tensorflow":
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_robult  # noqa: E402
from keras_robult import baselines, distribution, encoders, tasks  # noqa: E402
from keras_robult.models import robult as robult_module  # noqa: E402

BATCH = 8
SIMILARITY_SHAPES = []
_similarity = robult_module.cosine_similarity_matrix


def _recording_similarity(anchors, keys):
    result = _similarity(anchors, keys)
    SIMILARITY_SHAPES.append(tuple(result.shape))
    return result


robult_module.cosine_similarity_matrix = _recording_similarity


def data():
    rng = np.random.default_rng(0)
    count, dims = 2 * BATCH, (6, 5, 4)
    labels = rng.integers(0, 3, count)
    x = {
        f"m{i}": (rng.normal(size=(count, d)) + labels[:, None]).astype(
            "float32"
        )
        for i, d in enumerate(dims)
    }
    mask = (rng.random((count, len(dims))) > 0.3).astype("float32")
    mask[np.arange(count), rng.integers(0, len(dims), count)] = 1.0
    x["modality_mask"] = mask
    is_labeled = (rng.random(count) < 0.5).astype("float32")
    return x, {"label": labels, "is_labeled": is_labeled}


def build(name):
    keras.utils.set_random_seed(0)
    encs = {
        f"m{i}": encoders.MLPEncoder(8, hidden_units=(8,)) for i in range(3)
    }
    if name == "robult":
        model = keras_robult.Robult(
            encs,
            tasks.Classification(3),
            latent_dim=8,
            redundant_dim=4,
            unique_dim=4,
            dropout=0.0,
        )
    else:
        model = baselines.GMC(encs, tasks.Classification(3), latent_dim=8)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        jit_compile=distribution.strategy_replicas() == 1,
    )
    return model


def train(name, x, y, initial):
    model = build(name)
    model({k: v[:BATCH] for k, v in x.items()})
    if initial is not None:
        model.set_weights(initial)
    weights = [np.array(w) for w in model.get_weights()]
    SIMILARITY_SHAPES.clear()
    history = model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0
    )
    shapes = sorted(set(SIMILARITY_SHAPES))
    return weights, model.get_weights(), history.history, shapes


def max_difference(a, b):
    """Largest difference between two lists of arrays, relative to the
    first one's magnitude (`|a - b| / (1 + |a|)`)."""
    return float(
        max(
            np.max(np.abs(np.asarray(u) - np.asarray(v)) / (1 + np.abs(u)))
            for u, v in zip(a, b)
        )
    )


def main():
    x, y = data()
    report, runs = {"backend": BACKEND}, {}
    for name in ("robult", "gmc"):
        initial, single, history, shapes = train(name, x, y, None)
        runs[name] = initial, single
        with distribution.data_parallel(BATCH) as devices:
            _, parallel, history_p, shapes_p = train(name, x, y, initial)
        report[name] = {
            "devices": devices,
            "weight_moved": max_difference(initial, single),
            "weight_difference": max_difference(single, parallel),
            "loss_difference": max_difference(
                history["loss"], history_p["loss"]
            ),
            "similarity_shapes": shapes,
            "similarity_shapes_parallel": shapes_p,
        }
    # 11 rows, batch 8: the last batch (3 rows) does not divide by 2.
    x_odd = {k: v[:11] for k, v in x.items()}
    y_odd = {k: v[:11] for k, v in y.items()}
    model = build("robult")
    model(x_odd)
    weights = model.get_weights()
    expected = model.predict(x_odd, batch_size=BATCH, verbose=0)
    scores = model.evaluate(
        x_odd, y_odd, batch_size=BATCH, verbose=0, return_dict=True
    )
    with distribution.data_parallel(BATCH):
        model = build("robult")
        model(x_odd)
        model.set_weights(weights)
        predicted = model.predict(x_odd, batch_size=BATCH, verbose=0)
        scores_p = model.evaluate(
            x_odd, y_odd, batch_size=BATCH, verbose=0, return_dict=True
        )
    report["odd_batch"] = {
        "rows": len(predicted["prediction"]),
        "prediction_difference": max_difference(
            [expected["prediction"]], [predicted["prediction"]]
        ),
        # Keras' own `loss` weighs each batch by its rows (padding included
        # on JAX); the terms and the metric are exact.
        "score_difference": max_difference(
            [scores[k] for k in scores if k != "loss"],
            [scores_p[k] for k in scores if k != "loss"],
        ),
    }
    if BACKEND == "tensorflow":
        # Control: without the gather and the 1/n share, each replica's
        # loss sees half the batch and the gradients are summed twice.
        initial, single = runs["robult"]
        original = distribution.replicas_in_sync
        distribution.replicas_in_sync = lambda: 1
        try:
            with distribution.data_parallel(BATCH):
                _, parallel, _, _ = train("robult", x, y, initial)
        finally:
            distribution.replicas_in_sync = original
        report["control_weight_difference"] = max_difference(single, parallel)
        with distribution.data_parallel(BATCH):
            model = build("robult")
            model.compile(optimizer="sgd", jit_compile=True)
            try:
                model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
                report["jit_error"] = None
            except ValueError as error:
                report["jit_error"] = str(error)
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
