"""The disk cache of compiled steps (JAX only)."""

import os
import subprocess
import sys

import keras
import pytest

from keras_robult.experiments import enable_compilation_cache

# A small Robult fit in a process of its own (the cache is a process-wide
# JAX setting): prints the cache folder and a weight checksum.
FIT = """
import sys
import numpy as np
import keras
from keras_robult.experiments import enable_compilation_cache
from keras_robult.experiments.registry import method_factories
from keras_robult import tasks
print(enable_compilation_cache(sys.argv[1] or None, min_compile_seconds=0))
rng = np.random.default_rng(0)
x = {m: rng.normal(size=(32, 4)).astype("float32") for m in ("a", "b")}
x["modality_mask"] = np.ones((32, 2), "float32")
y = {"label": rng.integers(0, 3, 32), "is_labeled": np.ones(32, "float32")}
method = method_factories(["robult"], latent_dim=8)["robult"](
    tasks.Classification(3), {"a": (4,), "b": (4,)}, None
)
method.fit(x, y, epochs=2, batch_size=16)
print(sum(float(np.abs(w).sum()) for w in method.model.get_weights()))
"""


def run_fit(folder, **env):
    environment = dict(os.environ, KERAS_BACKEND="jax", **env)
    environment.pop("JAX_COMPILATION_CACHE_DIR", None)
    result = subprocess.run(
        [sys.executable, "-c", FIT, str(folder)],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-2:]


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="a JAX cache, one process"
)
def test_compiled_steps_are_kept_and_reused_with_the_same_results(tmp_path):
    folder = tmp_path / "cache"
    used, first = run_fit(folder)
    assert used == str(folder)
    entries = set(os.listdir(folder))
    assert any("train_step" in name for name in entries), entries
    used, again = run_fit(folder)  # loaded, not compiled: same weights
    assert again == first
    assert set(os.listdir(folder)) == entries  # nothing new to keep
    used, _ = run_fit(tmp_path / "off", JAX_ENABLE_COMPILATION_CACHE="false")
    assert used == "None" and not (tmp_path / "off").exists()


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="JAX only")
def test_other_backends_keep_no_cache(tmp_path):
    assert enable_compilation_cache(tmp_path / "cache") is None
    assert not (tmp_path / "cache").exists()
