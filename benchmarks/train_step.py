"""Training-step throughput of Robult on a synthetic 6-modality problem.

For every backend that imports (tensorflow, jax, torch) and jit on / off,
prints the compile time (first step), steady-state steps/s and samples/s,
and the share of the step spent in the soft PU loss (measured as the
difference with a model whose PU loss is skipped).

    python benchmarks/train_step.py                  # all backends
    python benchmarks/train_step.py --backends jax --steps 50

Each configuration runs in a fresh subprocess (the Keras backend is fixed
at import).
"""

import argparse
import json
import os
import subprocess
import sys
import time

MODALITY_DIMS = (76, 216, 64, 240, 47, 6)  # mfeat-like widths


def worker(args):
    import keras
    import numpy as np
    from keras import ops

    import keras_robult

    class WithoutPU(keras_robult.Robult):
        def pu_loss(self, labels, is_labeled, mask, y_pred):
            zero = ops.zeros(())
            return zero, zero

    def make(cls):
        encoders = {
            f"m{i}": keras_robult.encoders.MLPEncoder(
                args.latent_dim, hidden_units=(256,)
            )
            for i in range(len(MODALITY_DIMS))
        }
        half = args.latent_dim // 2
        model = cls(
            encoders,
            keras_robult.tasks.Classification(10),
            latent_dim=args.latent_dim,
            redundant_dim=half,
            unique_dim=args.latent_dim - half,
        )
        model.compile(optimizer="adam", jit_compile=args.jit)
        return model

    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = {
        f"m{i}": rng.normal(size=(n, d)).astype("float32")
        for i, d in enumerate(MODALITY_DIMS)
    }
    x["modality_mask"] = np.ones((n, len(MODALITY_DIMS)), "float32")
    y = {
        "label": rng.integers(0, 10, n),
        "is_labeled": (rng.uniform(size=n) < 0.05).astype("float32"),
    }

    def measure(cls):
        keras.utils.set_random_seed(0)
        model = make(cls)
        first = {k: v[: args.batch_size] for k, v in x.items()}
        first_y = {k: v[: args.batch_size] for k, v in y.items()}
        start = time.perf_counter()
        model.train_on_batch(first, first_y)
        compile_s = time.perf_counter() - start
        # Steady state: one epoch of `steps` batches through `fit`.
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        step_s = (time.perf_counter() - start) / args.steps
        return compile_s, step_s

    compile_s, step_s = measure(keras_robult.Robult)
    _, step_without_pu = measure(WithoutPU)
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "jit": args.jit,
                "compile_s": compile_s,
                "steps_per_s": 1.0 / step_s,
                "samples_per_s": args.batch_size / step_s,
                "pu_share": max(0.0, 1.0 - step_without_pu / step_s),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=["tensorflow", "jax", "torch"]
    )
    parser.add_argument("--jit", nargs="+", default=["on", "off"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--jit-on", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.jit = args.jit_on
        worker(args)
        return

    print(
        f"Robult train step, 6 modalities {MODALITY_DIMS}, batch "
        f"{args.batch_size}, latent {args.latent_dim}, {args.steps} steps"
    )
    header = (
        f"{'backend':<11} {'jit':<4} {'compile s':>9} {'steps/s':>8} "
        f"{'samples/s':>10} {'PU share':>8}"
    )
    print(header)
    print("-" * len(header))
    for backend in args.backends:
        for jit in args.jit:
            command = [
                sys.executable,
                __file__,
                "--worker",
                "--batch-size",
                str(args.batch_size),
                "--latent-dim",
                str(args.latent_dim),
                "--steps",
                str(args.steps),
            ] + (["--jit-on"] if jit == "on" else [])
            env = dict(os.environ, KERAS_BACKEND=backend)
            result = subprocess.run(
                command, env=env, capture_output=True, text=True
            )
            lines = [
                line
                for line in result.stdout.splitlines()
                if line.startswith("{")
            ]
            if result.returncode or not lines:
                error = (result.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{backend:<11} {jit:<4} failed: {error[:60]}")
                continue
            r = json.loads(lines[-1])
            print(
                f"{backend:<11} {jit:<4} {r['compile_s']:>9.2f} "
                f"{r['steps_per_s']:>8.1f} {r['samples_per_s']:>10.0f} "
                f"{r['pu_share']:>8.1%}"
            )


if __name__ == "__main__":
    main()
