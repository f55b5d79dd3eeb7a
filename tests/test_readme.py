"""The README's Python example runs as written, and its model loads in a
fresh process once `keras_robult` is imported."""

import os
import re
import subprocess
import sys

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_example():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text[text.index("## In Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run(code, cwd):
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = ROOT
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_the_python_example_runs_and_its_model_loads_elsewhere(tmp_path):
    example = run(python_example(), tmp_path)
    assert example.returncode == 0, example.stderr[-3000:]
    assert (tmp_path / "robult.keras").exists()
    load = "import keras; m = keras.saving.load_model('robult.keras')"
    alone = run(load, tmp_path)
    assert alone.returncode != 0 and "Robult" in alone.stderr
    # Loaded after `import keras_robult`; the package's subpackages the
    # README names are attributes (one fresh process for both).
    imported = run(
        "import keras_robult as k; "
        + load
        + "; print(m.modalities); print(k.data.make_dataset.__name__, "
        "k.datasets.mfeat.__name__)",
        tmp_path,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    modalities, names = imported.stdout.strip().splitlines()[-2:]
    assert modalities == "('audio', 'video')"
    assert names.split() == ["make_dataset", "keras_robult.datasets.mfeat"]
