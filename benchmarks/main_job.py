"""Where the time of the main job goes: `robult train` on the embedded
mfeat data, per method.

    python benchmarks/main_job.py                      # the whole job
    python benchmarks/main_job.py --seeds 0 --methods robult actionmae

Runs the default comparison (`run_comparison` with `robult train`'s
defaults: every method, seeds 0 1 2, 150 epochs, batch 256) into a
temporary folder and times every (method, seed) pair with a callback on
its training stages and `predict` calls. Per method, summed over its
seeds, in seconds:

- compile: the first step of each training stage less a steady step
  (tracing and XLA compilation);
- steps: every training step at the steady time;
- epoch overhead: the rest of `fit` (the data pipeline between steps,
  callbacks, the end of each epoch);
- evaluation: the `predict` calls of the evaluation (every modality subset
  and missing rate; the first call compiles);
- other: the rest of the pair (building the model, metrics, saving);
- total: the pair's wall time.

The backend is $KERAS_BACKEND (default JAX, as `robult train`); XLA on
TensorFlow and JAX. `--json FILE` also writes the numbers.
"""

import argparse
import collections
import json
import os
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PHASES = ("compile", "steps", "epoch overhead", "evaluation", "other")


def phase_timer_class(keras):
    class PhaseTimer(keras.callbacks.Callback):
        """Timestamps of one (method, seed) pair's training steps, `fit`
        calls and `predict` calls."""

        def __init__(self):
            super().__init__()
            self.first = self.last = None
            self.fits = []  # (fit seconds, [step seconds])
            self.predicts = []  # seconds per predict call

        def _mark(self):
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            self.last = now
            return now

        def on_train_begin(self, logs=None):
            self.fit_start = self._mark()
            self.fits.append([0.0, []])

        def on_train_batch_begin(self, batch, logs=None):
            self.step_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.fits[-1][1].append(time.perf_counter() - self.step_start)

        def on_train_end(self, logs=None):
            self.fits[-1][0] = self._mark() - self.fit_start

        def on_predict_begin(self, logs=None):
            self.predict_start = self._mark()

        def on_predict_end(self, logs=None):
            self.predicts.append(self._mark() - self.predict_start)

        def phases(self, total):
            import numpy as np

            compile_s = steps_s = overhead = 0.0
            for fit_s, step_times in self.fits:
                if not step_times:
                    overhead += fit_s
                    continue
                steady = float(np.median(step_times[1:] or step_times))
                compile_s += max(step_times[0] - steady, 0.0)
                steps_s += steady * len(step_times)
                overhead += fit_s - sum(step_times)
            evaluation = sum(self.predicts)
            known = compile_s + steps_s + overhead + evaluation
            return {
                "compile": compile_s,
                "steps": steps_s,
                "epoch overhead": overhead,
                "evaluation": evaluation,
                "other": max(total - known, 0.0),
                "steps count": sum(len(t) for _, t in self.fits),
                "predict calls": len(self.predicts),
            }

    return PhaseTimer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--json", default=None, help="write numbers here")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="no compilation cache (`robult train` keeps one)",
    )
    args = parser.parse_args()

    import keras

    from keras_robult.experiments import enable_compilation_cache
    from keras_robult.experiments.comparison import (
        ComparisonConfig,
        run_comparison,
    )
    from keras_robult.experiments.user_data import mfeat_data

    PhaseTimer = phase_timer_class(keras)
    timers = collections.defaultdict(list)
    order = []

    def callbacks(name, seed):
        timer = PhaseTimer()
        timers[name].append(timer)
        if name not in order:
            order.append(name)
        return [timer]

    if not args.no_cache:  # as `robult train`
        print(f"compilation cache: {enable_compilation_cache()}", flush=True)
    out = args.out or tempfile.mkdtemp(prefix="main_job-")
    config = ComparisonConfig(
        methods=tuple(args.methods) if args.methods else None,
        seeds=tuple(args.seeds),
        epochs=args.epochs,
        out=out,
        restart=True,
    )
    start = time.perf_counter()
    run_comparison(config, mfeat_data(), callbacks=callbacks)
    wall = time.perf_counter() - start

    # A pair's total: from its first event to the next pair's first event
    # (the last pair: to the end of the run's training and evaluation).
    events = sorted(
        (timer.first, name, timer)
        for name, pairs in timers.items()
        for timer in pairs
        if timer.first is not None
    )
    rows = collections.defaultdict(lambda: collections.Counter())
    for index, (first, name, timer) in enumerate(events):
        end = events[index + 1][0] if index + 1 < len(events) else timer.last
        rows[name].update(timer.phases(end - first))
        rows[name]["total"] += end - first
    backend = keras.backend.backend()
    print()
    print(
        f"backend {backend}, seeds {args.seeds}, {args.epochs} epochs; "
        "seconds summed over the seeds"
    )
    header = ["method", *PHASES, "total", "steps", "predict calls"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in order:
        row = rows[name]
        cells = [f"{row[p]:.1f}" for p in (*PHASES, "total")]
        cells += [str(row["steps count"]), str(row["predict calls"])]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nwhole job: {wall:.0f} s ({wall / 60:.1f} min), results in {out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "backend": backend,
                    "seeds": args.seeds,
                    "epochs": args.epochs,
                    "wall_s": wall,
                    "methods": {n: dict(rows[n]) for n in order},
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
