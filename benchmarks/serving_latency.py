"""Latency of the exported SavedModel against Keras `predict`, on mfeat.

Trains Robult on the embedded mfeat data (the `robult train` setting,
seed 0, few epochs: latency does not depend on how well it is trained),
exports it with `keras_robult.export.export_saved_model`, loads it with
`tf.saved_model.load` and times, at batch 1 and 256 with random modality
subsets:

- `serving_default` of the loaded SavedModel (what TF Serving runs);
- `model.predict` of the Keras model on the running backend;
- the Keras model called directly (`model(x, training=False)`).

Prints the median and 90th percentile in milliseconds over `--repeats`
calls after `--warmup` calls.

    python benchmarks/serving_latency.py
    KERAS_BACKEND=jax python benchmarks/serving_latency.py --repeats 200
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed(fn, warmup, repeats):
    import numpy as np

    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return np.median(samples), np.percentile(samples, 90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_robult.data import labeled_mask, random_mask
    from keras_robult.data.standardization import fit_standardization
    from keras_robult.datasets import mfeat
    from keras_robult.experiments.registry import method_factories
    from keras_robult.export import export_saved_model
    from keras_robult.tasks import Classification

    x, y = mfeat.load_data()
    modalities = [m for m in x if m != "modality_mask"]
    is_labeled = labeled_mask(y, 0.05, seed=0).astype("float32")
    statistics = fit_standardization(x)
    x["modality_mask"] = np.ones((len(y), len(modalities)), "float32")
    method = method_factories(["robult"])["robult"](
        Classification(10),
        {m: x[m].shape[1:] for m in modalities},
        statistics,
    )
    method.fit(x, {"label": y, "is_labeled": is_labeled}, args.epochs, 256)
    model = method.model

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "robult")
        start = time.perf_counter()
        route = export_saved_model(model, path, verbose=False)
        export_s = time.perf_counter() - start
        served = tf.saved_model.load(path).signatures["serving_default"]
        print(
            f"backend {keras.backend.backend()}, export route {route}, "
            f"{export_s:.1f} s; median / p90 latency in ms over "
            f"{args.repeats} calls"
        )
        print(
            "| batch | SavedModel serving_default | model.predict | model(x) |"
        )
        print("|---|---|---|---|")
        for batch in args.batches:
            rows = np.arange(batch) % len(y)
            request = {m: x[m][rows].astype("float32") for m in modalities}
            request["modality_mask"] = random_mask(
                batch, len(modalities), 0.5, seed=batch
            )
            tensors = {k: tf.constant(v) for k, v in request.items()}
            served_ms = timed(
                lambda: served(**tensors), args.warmup, args.repeats
            )
            predict_ms = timed(
                lambda: model.predict(request, batch_size=batch, verbose=0),
                args.warmup,
                args.repeats,
            )
            call_ms = timed(
                lambda: keras.ops.convert_to_numpy(
                    model(request, training=False)["prediction"]
                ),
                args.warmup,
                args.repeats,
            )
            print(
                f"| {batch} | "
                + " | ".join(
                    f"{m:.2f} / {p:.2f}"
                    for m, p in (served_ms, predict_ms, call_ms)
                )
                + " |"
            )


if __name__ == "__main__":
    main()
