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
    # One fresh process: the file does not load with Keras alone (the
    # error names the class), and loads once `keras_robult` is imported;
    # the package's subpackages the README names are attributes.
    loads = run(
        "import keras\n"
        "try:\n"
        "    keras.saving.load_model('robult.keras')\n"
        "except Exception as error:\n"
        "    print('alone:', 'Robult' in str(error))\n"
        "import keras_robult as k\n"
        "m = keras.saving.load_model('robult.keras')\n"
        "print(m.modalities)\n"
        "print(k.data.make_dataset.__name__, k.datasets.mfeat.__name__)\n",
        tmp_path,
    )
    assert loads.returncode == 0, loads.stderr[-3000:]
    alone, modalities, names = loads.stdout.strip().splitlines()[-3:]
    assert alone == "alone: True"
    assert modalities == "('audio', 'video')"
    assert names.split() == ["make_dataset", "keras_robult.datasets.mfeat"]
