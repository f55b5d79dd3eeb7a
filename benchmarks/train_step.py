"""Training-step time of Robult on a synthetic multimodal problem.

For every backend that imports (tensorflow, jax, torch), jit on / off,
batch size and number of modalities, prints the compile time (first step)
and the steady-state time of one `fit` step (median over `--repeats`
epochs of `--steps` batches), next to an independent hand-written
`jax.jit(value_and_grad)` step of the same model
(`benchmarks/handwritten_step.py`), and optionally the share of the step
spent in the soft PU loss (`--pu-share`: the difference with a model whose
PU loss is skipped).

    python benchmarks/train_step.py                       # batch 256, 1024
    python benchmarks/train_step.py --backends jax tensorflow --jit on \
        --batch-size 256 1024 2048 4096 --modalities 6
    python benchmarks/train_step.py --backends jax --jit on \
        --batch-size 1024 --modalities 2 6 12
    python benchmarks/train_step.py --methods all \
        --backends jax tensorflow --jit on      # every compared method

With `--methods`, each method of the comparison (`robult train`'s
registry: its own model and defaults, mfeat-like inputs) is timed instead,
next to Robult's step (x robult), with the step's work as XLA counts it
(GFLOP, from JAX's compiled program; the same model on every backend) and
the rate it ran at (GFLOP/s): a slow method that does proportionally more
work is not an inefficient one.

Each configuration runs in a fresh subprocess (the Keras backend is fixed
at import).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from shapes import modality_dims


def steps_for(batch_size, steps):
    """Fewer steps at large batches (the same samples per measurement)."""
    return max(5, min(steps, steps * 1024 // batch_size))


def synthetic_data(args):
    """`(x, y, steps)`: `steps` batches of a 10-class problem with
    mfeat's widths (modalities `m0`, `m1`, ...), 5 % labeled."""
    import numpy as np

    dims = modality_dims(args.modalities)
    steps = steps_for(args.batch_size, args.steps)
    rng = np.random.default_rng(0)
    n = args.batch_size * steps
    x = {
        f"m{i}": rng.normal(size=(n, d)).astype("float32")
        for i, d in enumerate(dims)
    }
    x["modality_mask"] = np.ones((n, len(dims)), "float32")
    y = {
        "label": rng.integers(0, 10, n),
        "is_labeled": (rng.uniform(size=n) < 0.05).astype("float32"),
    }
    return x, y, steps


def time_fit(model, x, y, batch_size, steps, repeats):
    """`(compile seconds, steady seconds per step)` of a compiled model:
    the first batch, then the median of `repeats` one-epoch `fit`s of
    `steps` batches (after one unmeasured epoch)."""
    import numpy as np

    first = {k: v[:batch_size] for k, v in x.items()}
    start = time.perf_counter()
    model.train_on_batch(first, {k: v[:batch_size] for k, v in y.items()})
    compile_s = time.perf_counter() - start
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        times.append((time.perf_counter() - start) / steps)
    return compile_s, float(np.median(times))


def worker(args):
    import keras
    from keras import ops

    import keras_robult

    class WithoutPU(keras_robult.Robult):
        def pu_loss(self, labels, is_labeled, mask, y_pred):
            zero = ops.zeros(())
            return zero, zero

    dims = modality_dims(args.modalities)

    def make(cls):
        encoders = {
            f"m{i}": keras_robult.encoders.MLPEncoder(
                args.latent_dim, hidden_units=(256,)
            )
            for i in range(len(dims))
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

    x, y, steps = synthetic_data(args)

    def measure(cls):
        keras.utils.set_random_seed(0)
        model = make(cls)
        return time_fit(model, x, y, args.batch_size, steps, args.repeats)

    compile_s, step_s = measure(keras_robult.Robult)
    result = {"compile_s": compile_s, "step_ms": 1e3 * step_s}
    if args.pu_share:
        _, step_without_pu = measure(WithoutPU)
        result["pu_share"] = max(0.0, 1.0 - step_without_pu / step_s)
    print(json.dumps(result))


def method_worker(args):
    """The fit step of one method of the comparison, as the protocol
    builds and compiles it (its model, optimizer and defaults)."""
    import keras

    import keras_robult
    from keras_robult.experiments.registry import method_factories

    x, y, steps = synthetic_data(args)
    shapes = {k: v.shape[1:] for k, v in x.items() if k != "modality_mask"}
    factory = method_factories([args.method], latent_dim=args.latent_dim)[
        args.method
    ]
    method = factory(
        keras_robult.tasks.Classification(10),
        shapes,
        None,
        jit_compile=args.jit,
    )
    keras.utils.set_random_seed(0)
    method.seed = 0
    model = method.build_model()
    model.compile(optimizer=method.optimizer(), jit_compile=args.jit)
    compile_s, step_s = time_fit(
        model, x, y, args.batch_size, steps, args.repeats
    )
    print(
        json.dumps(
            {
                "compile_s": compile_s,
                "step_ms": 1e3 * step_s,
                "params": int(model.count_params()),
                "gflop": step_gflop(model, x, y, args.batch_size),
            }
        )
    )


def step_gflop(model, x, y, batch_size):
    """Floating-point operations of one training step (forward, backward
    and optimizer update) in billions, as XLA counts them in the compiled
    program (JAX only; None on the other backends)."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    batch = (
        {k: v[:batch_size] for k, v in x.items()},
        {k: v[:batch_size] for k, v in y.items()},
    )
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    cost = jax.jit(model.train_step).lower(state, batch).compile()
    cost = cost.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / 1e9 if cost and "flops" in cost else None


def methods_table(args):
    """Every method of `--methods` at every batch size, backend and jit
    setting: compile seconds, step ms and the ratio to Robult's step."""
    from keras_robult.experiments.registry import DEFAULT_METHODS

    methods = DEFAULT_METHODS if args.methods == ["all"] else args.methods
    if "robult" not in methods:
        methods = ["robult", *methods]
    print(
        f"fit step of each method (ms, median of {args.repeats} epochs of "
        f"{args.steps} steps at batch 256 or the same samples), "
        f"{args.modalities[0]} modalities, latent {args.latent_dim}"
    )
    header = "| method | params | batch | backend | jit | compile s | "
    header += "step ms | x robult | GFLOP | GFLOP/s |"
    print(header)
    print("|" + "---|" * 10)
    gflop = {}  # (method, batch) -> the step's GFLOP (JAX's count)
    backends = sorted(args.backends, key=lambda b: b != "jax")
    for batch_size in args.batch_size:
        for backend in backends:
            for jit in args.jit:
                robult_ms = None
                for method in methods:
                    r = run_worker(
                        args,
                        backend,
                        batch_size,
                        args.modalities[0],
                        jit,
                        method=method,
                    )
                    cells = f"| {method} | "
                    if not isinstance(r, dict):
                        print(f"{cells} failed: {r[:60]} |", flush=True)
                        continue
                    if method == "robult":
                        robult_ms = r["step_ms"]
                    ratio = r["step_ms"] / robult_ms if robult_ms else 0.0
                    if r.get("gflop"):
                        gflop[method, batch_size] = r["gflop"]
                    work = gflop.get((method, batch_size))
                    rate = work / r["step_ms"] * 1e3 if work else None
                    print(
                        f"{cells}{r['params']:,} | {batch_size} | {backend} | "
                        f"{jit} | {r['compile_s']:.1f} | {r['step_ms']:.1f} | "
                        f"{ratio:.2f} | "
                        + (f"{work:.2f} | {rate:.0f} |" if work else "- | - |"),
                        flush=True,
                    )


def pipeline_worker(args):
    """Batches/s of the package's `tf.data` pipeline alone (shuffled,
    standardised, batched, prefetched), on the benchmark's data."""
    import numpy as np

    import keras_robult
    import keras_robult.data

    dims = modality_dims(args.modalities)
    steps = max(50, steps_for(args.batch_size, args.steps))
    n = args.batch_size * steps
    rng = np.random.default_rng(0)
    x = {
        f"m{i}": rng.normal(size=(n, d)).astype("float32")
        for i, d in enumerate(dims)
    }
    labels = rng.integers(0, 10, n)
    is_labeled = rng.uniform(size=n) < 0.05
    dataset = keras_robult.data.make_dataset(
        x,
        labels,
        is_labeled,
        task=keras_robult.tasks.Classification(10),
        batch_size=args.batch_size,
        shuffle=True,
        seed=0,
        drop_remainder=True,
        standardization=keras_robult.data.fit_standardization(x),
    )
    for _ in dataset.take(2):
        pass
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        count = sum(1 for _ in dataset)
        times.append((time.perf_counter() - start) / count)
    print(json.dumps({"compile_s": 0.0, "step_ms": 1e3 * np.median(times)}))


def reference_worker(args):
    from handwritten_step import run  # imports JAX: this worker only

    compile_s, step_s = run(
        args.batch_size,
        modality_dims(args.modalities),
        latent=args.latent_dim,
        steps=steps_for(args.batch_size, args.steps),
        repeats=args.repeats,
    )
    print(json.dumps({"compile_s": compile_s, "step_ms": 1e3 * step_s}))


def run_worker(
    args, backend, batch_size, modalities, jit, reference=False, method=None
):
    """The worker's JSON result, or the last line of its error."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--batch-size",
        str(batch_size),
        "--modalities",
        str(modalities),
        "--latent-dim",
        str(args.latent_dim),
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
    ]
    command += ["--jit-on"] if jit == "on" else []
    command += ["--pu-share"] if args.pu_share else []
    command += ["--reference"] if reference == "hand" else []
    command += ["--pipeline"] if reference == "pipeline" else []
    command += ["--method", method] if method else []
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line[:1] == "{"]
    if result.returncode or not lines:
        return (result.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="*", default=["tensorflow", "jax", "torch"]
    )
    parser.add_argument("--jit", nargs="+", default=["on", "off"])
    parser.add_argument(
        "--batch-size", type=int, nargs="+", default=[256, 1024]
    )
    parser.add_argument("--modalities", type=int, nargs="+", default=[6])
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the hand-written JAX step",
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="also time the tf.data pipeline alone (ms per batch)",
    )
    parser.add_argument(
        "--pu-share",
        action="store_true",
        help="also time a model without the PU loss (twice the time)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="time these methods of the comparison (`all`: every one) "
        "instead of the Robult / hand-written table",
    )
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--jit-on", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--reference",
        dest="reference_worker",
        action="store_true",
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.worker:
        args.jit = args.jit_on
        args.batch_size = args.batch_size[0]
        args.modalities = args.modalities[0]
        if args.method:
            method_worker(args)
        elif args.pipeline:
            pipeline_worker(args)
        elif args.reference_worker:
            reference_worker(args)
        else:
            worker(args)
        return
    if args.methods:
        methods_table(args)
        return

    print(
        f"Robult fit step (ms, median of {args.repeats} epochs), latent "
        f"{args.latent_dim}, hidden 256; x = time / hand-written JAX step"
    )
    header = (
        f"{'M':>3} {'batch':>6} {'backend':<11} {'jit':<4} {'compile s':>9} "
        f"{'step ms':>9} {'x ref':>6}"
        + (f" {'PU share':>8}" if args.pu_share else "")
    )
    print(header)
    print("-" * len(header))
    for modalities in args.modalities:
        for batch_size in args.batch_size:
            reference = None
            if args.reference:
                r = run_worker(
                    args, "jax", batch_size, modalities, "on", "hand"
                )
                if isinstance(r, dict):
                    reference = r["step_ms"]
                    print(
                        f"{modalities:>3} {batch_size:>6} {'hand (jax)':<11} "
                        f"{'on':<4} {r['compile_s']:>9.2f} {reference:>9.1f} "
                        f"{1.0:>6.2f}"
                    )
                else:
                    print(f"{modalities:>3} {batch_size:>6} hand failed: {r}")
            if args.pipeline:
                r = run_worker(
                    args,
                    "tensorflow",
                    batch_size,
                    modalities,
                    "off",
                    "pipeline",
                )
                text = f"{r['step_ms']:>9.1f}" if isinstance(r, dict) else r
                print(
                    f"{modalities:>3} {batch_size:>6} {'tf.data':<11} {'':<4} "
                    f"{'':>9} {text}"
                )
            for backend in args.backends:
                for jit in args.jit:
                    r = run_worker(args, backend, batch_size, modalities, jit)
                    prefix = f"{modalities:>3} {batch_size:>6} "
                    prefix += f"{backend:<11} {jit:<4}"
                    if not isinstance(r, dict):
                        print(f"{prefix} failed: {r[:60]}")
                        continue
                    ratio = (
                        r["step_ms"] / reference if reference else float("nan")
                    )
                    line = (
                        f"{prefix} {r['compile_s']:>9.2f} {r['step_ms']:>9.1f} "
                        f"{ratio:>6.2f}"
                    )
                    if args.pu_share:
                        line += f" {r['pu_share']:>8.1%}"
                    print(line, flush=True)


if __name__ == "__main__":
    main()
