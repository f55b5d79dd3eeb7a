"""Two JAX processes on localhost (`keras.distribution.initialize`, one CPU
device each, gloo collectives), each feeding its half of every global
batch, or one process on whole batches (`--single`); prints the history
and writes the trained weights. `tests/test_distribution.py` runs it.

    KERAS_BACKEND=jax python -m tests.multi_process_fit PROCESS PORT OUT
    KERAS_BACKEND=jax python -m tests.multi_process_fit --single OUT
"""

import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_robult  # noqa: E402
from keras_robult import encoders, tasks  # noqa: E402

BATCH, ROWS = 8, 32


def main(argv):
    single = argv[0] == "--single"
    out = argv[-1]
    process = 0 if single else int(argv[0])
    if not single:
        keras.distribution.initialize(
            job_addresses=f"localhost:{argv[1]}",
            num_processes=2,
            process_id=process,
        )
        # Each process passes its own share: no automatic sharding.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(
                devices=jax.devices(), auto_shard_dataset=False
            )
        )
    rng = np.random.default_rng(0)
    x = {
        f"m{i}": rng.normal(size=(ROWS, d)).astype("float32")
        for i, d in enumerate((6, 5, 4))
    }
    x["modality_mask"] = (rng.uniform(size=(ROWS, 3)) < 0.8).astype("float32")
    x["modality_mask"][:, 0] = 1
    y = {
        "label": rng.integers(0, 3, ROWS),
        # Different labeled shares per process: the label prior (the
        # fallback prediction) must still be the global one.
        "is_labeled": (np.arange(ROWS) % 8 < 3).astype("float32"),
    }
    if not single:
        half = BATCH // 2
        rows = np.concatenate(
            [
                np.arange(start + process * half, start + (process + 1) * half)
                for start in range(0, ROWS, BATCH)
            ]
        )
        x = {key: value[rows] for key, value in x.items()}
        y = {key: value[rows] for key, value in y.items()}
    keras.utils.set_random_seed(0)
    model = keras_robult.Robult(
        {f"m{i}": encoders.MLPEncoder(8, hidden_units=(8,)) for i in range(3)},
        tasks.Classification(3),
        latent_dim=8,
        redundant_dim=4,
        unique_dim=4,
    )
    model.compile(optimizer="sgd", jit_compile=True)
    history = model.fit(
        x,
        y,
        batch_size=BATCH if single else BATCH // 2,
        epochs=2,
        shuffle=False,
        verbose=0,
    )
    weights = np.concatenate(
        [np.asarray(v.value).ravel() for v in model.trainable_variables]
    )
    np.savez(out, weights=weights, prior=np.asarray(model.label_prior.value))
    print("REPORT " + json.dumps(history.history))


if __name__ == "__main__":
    main(sys.argv[1:])
