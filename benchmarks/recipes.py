"""Seconds per training epoch of each recipe's Robult model, on synthetic
data of the real dataset's size and shape (nothing to download).

    python benchmarks/recipes.py                # mosi mosei mmimdb food101
    python benchmarks/recipes.py --datasets mosei --epochs 3

Uses the recipes' own pieces: the default encoders of the protocol
(`SequenceEncoder` for (time, features), standardisation + MLP for
vectors), Robult's defaults, batch 256 with a static batch size, 5 % of
the training split labeled, XLA on TensorFlow and JAX. The first epoch
includes compilation; the next ones are the steady state. The backend is
$KERAS_BACKEND (run once per backend to compare).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Train-split size and per-sample shapes of the releases.
DATASETS = {
    "mosi": (1284, {"text": (50, 300), "audio": (50, 5), "vision": (50, 20)}),
    "mosei": (
        16326,
        {"text": (50, 300), "audio": (50, 74), "vision": (50, 35)},
    ),
    "mmimdb": (15552, {"text": (300,), "image": (4096,)}),
    # Cached frozen-backbone features: 90 % of the release's 67,988 train
    # pages (10 % validate), ResNet-18 (512) and all-MiniLM-L6-v2 (384).
    "food101": (61189, {"text": (384,), "image": (512,)}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    import keras
    import numpy as np

    from keras_robult.data import fit_standardization, labeled_mask
    from keras_robult.experiments.registry import method_factories
    from keras_robult.tasks import Classification, MultiLabel, Regression

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    print(f"backend {keras.backend.backend()}, batch {args.batch_size}")
    print("| dataset | train samples | first epoch (s) | later epochs (s) |")
    print("|---|---|---|---|")
    for name in args.datasets:
        size, shapes = DATASETS[name]
        rng = np.random.default_rng(0)
        x = {
            m: rng.normal(size=(size,) + shape).astype("float32")
            for m, shape in shapes.items()
        }
        if name == "mmimdb":
            task = MultiLabel(23)
            labels = (rng.random((size, 23)) < 0.15).astype("int32")
        elif name == "food101":
            task = Classification(101)
            labels = rng.integers(0, 101, size).astype("int32")
        else:
            task = Regression()
            labels = rng.uniform(-3, 3, size).astype("float32")
        x["modality_mask"] = np.ones((size, len(shapes)), "float32")
        is_labeled = labeled_mask(labels, 0.05, seed=0, task=task)
        y = {"label": labels, "is_labeled": is_labeled.astype("float32")}
        method = method_factories(["robult"])["robult"](
            task, shapes, fit_standardization(x)
        )
        model = method.build_model()
        model.compile(
            optimizer=method.optimizer(), jit_compile=method.jit_compile
        )
        timer = EpochTimes()
        timer.times = []
        model.fit(
            method.dataset(x, y, args.batch_size, seed=0),
            epochs=args.epochs,
            verbose=0,
            callbacks=[timer],
        )
        later = np.median(timer.times[1:]) if len(timer.times) > 1 else None
        print(
            f"| {name} | {size} | {timer.times[0]:.1f} | "
            + (f"{later:.1f}" if later is not None else "-")
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
