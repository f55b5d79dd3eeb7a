import contextlib
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_robult.experiments import registry
from keras_robult.experiments.tune import method_defaults
from tests.conftest import BACKEND, once

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def robult(*args, cwd=None, process=False):
    """`robult ARGS` as a `subprocess.CompletedProcess`. Run in this
    process (under this backend, in `cwd`) unless it needs a process of
    its own: `export` under another backend than TensorFlow (it runs
    under TensorFlow), `--backend` (a new process under it), `--verbose`
    (the start-up lines) or `process=True`. A process costs about ten
    seconds of imports."""
    if (
        process
        or (args[:1] == ("export",) and BACKEND != "tensorflow")
        or {"--backend", "--verbose"} & set(args)
    ):
        env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        return subprocess.run(
            [sys.executable, "-m", "keras_robult_cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd or ROOT,
            timeout=600,
        )
    from keras_robult import cli

    out, err = io.StringIO(), io.StringIO()
    backend = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = keras.backend.backend()
    try:
        with contextlib.chdir(cwd or ROOT):
            with contextlib.redirect_stdout(out):
                with contextlib.redirect_stderr(err):
                    try:
                        code = cli.main(list(args))
                    except SystemExit as exit:  # argparse
                        code = exit.code
    finally:
        if backend is None:
            os.environ.pop("KERAS_BACKEND")
        else:
            os.environ["KERAS_BACKEND"] = backend
    return subprocess.CompletedProcess(
        ["robult", *args], code, out.getvalue(), err.getvalue()
    )


def toy_npz(path, **changes):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    arrays = {
        "x_a": (y[:, None] + rng.normal(size=(60, 4))).astype("float32"),
        "x_b": (y[:, None] + rng.normal(size=(60, 3))).astype("float32"),
        "y": y,
    }
    arrays.update(changes)
    np.savez(path, **arrays)
    return str(path)


def test_version_and_help(capsys, monkeypatch):
    from keras_robult.version import __version__

    code, out, _ = run_cli(["--version"], capsys, monkeypatch)
    assert code == 0 and out.strip() == f"robult {__version__}"
    code, out, _ = run_cli(["train", "--help"], capsys, monkeypatch)
    assert code == 0
    for option in ("--labeled-fraction", "--methods", "--latent-dim"):
        assert option in out


def tensorflow_startup_lines():
    """What loading TensorFlow writes to stderr on this machine with no
    log level set, each glog line without its timestamp and thread."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    probe = subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return [
        line.rsplit("] ", 1)[-1].strip()
        for line in probe.stderr.splitlines()
        if line.strip()
    ]


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent subprocesses: run once, in the TF suite",
)
def test_tensorflow_start_up_lines_only_with_verbose(tmp_path):
    """The command reads --backend / --verbose before Keras loads, so
    TensorFlow's C++ start-up lines (written to file descriptor 2 as it
    loads, then at device start) stay out of its output unless
    --verbose, for --version too."""
    lines = tensorflow_startup_lines()
    if not lines:
        pytest.skip("TensorFlow writes nothing as it loads on this machine")
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "keras_robult_cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )

    version = run("--version")
    assert version.returncode == 0 and version.stderr == ""
    data = toy_npz(tmp_path / "toy.npz")
    missing = str(tmp_path / "missing.keras")
    evaluate = ["evaluate", "--model", missing, "--data", data]
    # --backend from the command line: set before Keras loads, no restart.
    env["KERAS_BACKEND"] = "jax"
    quiet = run(*evaluate, "--backend", "tensorflow")
    assert quiet.returncode == 2
    assert quiet.stderr.startswith("robult: error:"), quiet.stderr
    assert len(quiet.stderr.splitlines()) == 1, quiet.stderr
    loud = run(*evaluate, "--backend", "tensorflow", "--verbose")
    assert loud.returncode == 2
    assert lines[0] in loud.stderr, (lines, loud.stderr)


def run_cli(argv, capsys, monkeypatch):
    """`robult ...` in this process (the backend is already the right one,
    so nothing re-executes): `(exit code, stdout, stderr)`."""
    from keras_robult import cli

    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse
        code = exit.code
    out = capsys.readouterr()
    return code, out.out, out.err


@once
def test_train_then_evaluate_on_a_user_file(tmp_path):
    # A test split in the file: training and evaluation both use it.
    data = toy_npz(tmp_path / "toy.npz", test=np.arange(60) % 3 == 0)
    out = str(tmp_path / "out")
    result = robult(
        "train",
        "--data",
        data,
        "--methods",
        "robult",
        "gmc",
        "--epochs",
        "2",
        "--seeds",
        "0",
        "--batch-size",
        "16",
        "--labeled-fraction",
        "0.2",
        "--train-missing-rate",
        "0.3",
        "--modality-dropout",
        "0.2",
        "--late-fusion",
        "product",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| subset | robult | gmc |" in result.stdout
    assert "| all |" in result.stdout and "| a+b |" not in result.stdout
    with open(os.path.join(out, "results.json")) as handle:
        results = json.load(handle)
    assert results["dataset"] == "toy" and results["task"] == "classification"
    assert results["modalities"] == ["a", "b"]
    assert {r["method"] for r in results["results"]} == {"robult", "gmc"}
    assert {tuple(r["subset"]) for r in results["results"]} == {
        ("a",),
        ("b",),
        ("a", "b"),
    }
    for name in ("results.md", "missing_rate.png", "labeled_indices.json"):
        assert os.path.exists(os.path.join(out, name))
    # The training gaps and the fusion rule reach the run and its records.
    assert results["train_missing_rate"] == 0.3
    assert results["modality_dropout"] == 0.2
    assert results["late_fusion"] == "product"
    with open(os.path.join(out, "labeled_indices.json")) as handle:
        split = json.load(handle)["seed_0"]
    gaps = np.asarray(split["train_modality_mask"])
    assert gaps.shape == (len(split["train"]), 2) and gaps.min(1).min() == 0
    with open(os.path.join(out, "run_config.json")) as handle:
        config = json.load(handle)
    assert config["train_missing_rate"] == 0.3
    assert config["late_fusion"] == "product"
    import keras_robult  # noqa: F401 (registers the model classes)

    robult_model = keras.saving.load_model(
        os.path.join(out, "models", "robult-seed0.keras")
    )
    assert robult_model.late_fusion == "product"
    model = os.path.join(out, "models", "gmc-seed0.keras")
    result = robult(
        "evaluate", "--model", model, "--data", data, "--out", out + "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Titled by the model it read, not as a training run ("0% labeled").
    assert "accuracy on toy, model gmc-seed0.keras\n" in result.stdout
    assert "labeled" not in result.stdout.split("|")[0]
    with open(os.path.join(out + "2", "results.json")) as handle:
        evaluated = json.load(handle)
    # The evaluation of the saved model reproduces the training run's
    # numbers on the same test split, under the model's method name.
    assert {r["method"] for r in evaluated["results"]} == {"gmc"}
    trained = {
        ("+".join(r["subset"]), r["metric"]): r["mean"]
        for r in results["results"]
        if r["method"] == "gmc"
    }
    for entry in evaluated["results"]:
        key = ("+".join(entry["subset"]), entry["metric"])
        assert entry["mean"] == pytest.approx(trained[key], abs=1e-6), key


@once  # the command's glue; its backend paths are tested on all three
def test_regression_bins_come_from_the_targets(tmp_path):
    """Targets in [1000, 1337]: without --bins the bins span them (they
    are not binned as if in [-3, 3]); --bins that do not cover them is an
    error naming the fix."""
    rng = np.random.default_rng(0)
    y = rng.uniform(1000.0, 1337.0, 60).astype("float32")
    data = toy_npz(tmp_path / "prices.npz", y=y)
    args = ["train", "--data", data, "--methods", "unimodal", "--epochs"]
    args += ["1", "--seeds", "0", "--batch-size", "16", "--quiet"]
    result = robult(*args, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "out" / "run_config.json") as handle:
        config = json.load(handle)["task"]["config"]
    scale = (y.max() - y.min()) / 6
    assert config["scale"] == pytest.approx(scale, rel=1e-5)
    assert config["offset"] == pytest.approx(y.min() + 3 * scale, rel=1e-5)
    wrong = robult(*args, "--bins", "-3", "3", "--out", str(tmp_path / "b"))
    assert wrong.returncode == 2
    assert "the bins do not describe these targets" in wrong.stderr
    explicit = robult(
        *args, "--bins", "1000", "1337", "--out", str(tmp_path / "c")
    )
    assert explicit.returncode == 0, explicit.stderr[-2000:]


@once  # the command's glue; its backend paths are tested on all three
def test_option_errors_name_the_option_before_any_work(
    tmp_path, capsys, monkeypatch
):
    data = toy_npz(tmp_path / "toy.npz")
    code, _, err = run_cli(
        ["train", "--data", data, "--seeds", "0", "-1"], capsys, monkeypatch
    )
    assert code == 2
    assert "--seeds must be non-negative integers; got 0 -1" in err
    # An existing --out is refused before the model is read (here it is
    # not even a model).
    (tmp_path / "served").mkdir()
    # (A process of its own: `export` runs under TensorFlow.)
    served = str(tmp_path / "served")
    export = robult("export", "--model", data, "--out", served)
    assert export.returncode == 2
    assert "served exists; pass --overwrite" in export.stderr
    _, helped, _ = run_cli(["train", "--help"], capsys, monkeypatch)
    helped = helped[helped.index("options:") :]
    for option in ("--labeled-fraction", "--seeds", "--epochs"):
        line = helped[helped.index("  " + option + " ") + 2 :]
        assert "(default: " in line[: line.index("\n  --")], option


def test_multilabel_on_one_dimensional_labels_is_named(
    tmp_path, capsys, monkeypatch
):
    data = toy_npz(tmp_path / "toy.npz")
    code, _, err = run_cli(
        ["train", "--data", data, "--task", "multilabel"], capsys, monkeypatch
    )
    assert code == 2
    assert "--task multilabel needs y of shape (samples, labels)" in err
    assert "Traceback" not in err


def test_options_reach_the_run_under_another_backend(tmp_path):
    """`--backend` re-executes under that backend; `--task`, `--methods`
    and `--latent-dim` reach the methods."""
    other = "torch" if keras.backend.backend() != "torch" else "jax"
    data = toy_npz(tmp_path / "toy.npz")
    out = str(tmp_path / "out")
    result = robult(
        "train",
        "--data",
        data,
        "--backend",
        other,
        "--task",
        "regression",
        "--methods",
        "unimodal",
        "--latent-dim",
        "6",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--batch-size",
        "16",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"backend {other}" in result.stdout.splitlines()[0]
    with open(os.path.join(out, "results.json")) as handle:
        results = json.load(handle)
    assert results["task"] == "regression" and results["seeds"] == [1]
    assert {r["method"] for r in results["results"]} == {"unimodal"}
    assert {r["metric"] for r in results["results"]} >= {"mae", "corr"}
    import zipfile

    with zipfile.ZipFile(
        os.path.join(out, "models", "unimodal-seed1.keras")
    ) as archive:
        config = json.loads(archive.read("config.json"))["config"]
    assert config["latent_dim"] == 6
    assert config["task"]["class_name"] == "Regression"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--task", "clustering"],
            "robult train: error: argument --task: invalid choice: "
            "'clustering' (choose from 'classification', 'regression', "
            "'multilabel')",
        ),
        (
            ["train", "--epochs", "ten"],
            "robult train: error: argument --epochs: invalid int value: 'ten'",
        ),
        (
            ["train", "--backend", "mxnet"],
            "robult train: error: argument --backend: invalid choice: "
            "'mxnet' (choose from 'tensorflow', 'jax', 'torch')",
        ),
        (
            ["export"],
            "robult export: error: the following arguments are required: "
            "--model, --out",
        ),
        (
            ["evaluate", "--data", "x.npz"],
            "robult evaluate: error: the following arguments are required: "
            "--model",
        ),
        (
            ["train", "--methods", "robult", "mae"],
            "robult: error: Unknown method(s) ['mae']; choose from "
            f"{list(registry.METHODS) + list(registry.METHOD_GROUPS)}.",
        ),
        (
            ["train", "--latent-dim", "1"],
            "robult: error: --latent-dim must be at least 2",
        ),
        (
            ["train", "--labeled-fraction", "0"],
            "robult: error: --labeled-fraction must be in (0, 1]; got 0.0",
        ),
        (
            ["train", "--train-missing-rate", "1"],
            "robult: error: --train-missing-rate must be in [0, 1); got 1.0",
        ),
        (
            ["train", "--late-fusion", "max"],
            "robult train: error: argument --late-fusion: invalid choice: "
            "'max' (choose from 'mean', 'product')",
        ),
        (
            ["evaluate", "--model", "{tmp}/none.keras"],
            "robult: error: No such model file: {tmp}/none.keras",
        ),
        (
            ["train", "--data", "{tmp}/none.npz"],
            "robult: error: No such data file: {tmp}/none.npz",
        ),
    ],
    ids=[
        "task",
        "epochs",
        "backend",
        "export",
        "evaluate",
        "methods",
        "latent_dim",
        "fraction",
        "train_missing_rate",
        "late_fusion",
        "no_model",
        "no_data",
    ],
)
def test_argument_errors_are_one_line(
    argv, message, tmp_path, capsys, monkeypatch
):
    data = toy_npz(tmp_path / "toy.npz")
    argv = [a.format(tmp=tmp_path) for a in argv]
    if argv[0] in ("train", "evaluate") and "--data" not in argv:
        argv += ["--data", data]
    code, _, err = run_cli(argv, capsys, monkeypatch)
    assert code == 2
    assert err.strip().splitlines()[-1] == message.format(tmp=tmp_path)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"x_b": np.zeros((50, 3), "float32")},
            "Every modality must have the same number of samples on its "
            "first axis; received {'a': 60, 'b': 50}.",
        ),
        (
            {"x_a": np.full((60, 4), np.nan, "float32")},
            "Modality 'a' has NaN or infinite values in row 0 (60 rows in "
            "all). Fix them, or mark the modality missing for those rows in "
            "'modality_mask'.",
        ),
        (
            {"labels": np.arange(60)},
            "{path} must hold one array 'x_<modality>' per modality and the "
            "labels 'y' (optionally is_labeled, test, modality_mask); it "
            "holds ['labels', 'x_a', 'x_b', 'y'] (unknown: ['labels']).",
        ),
    ],
    ids=["length", "nan", "keys"],
)
def test_bad_data_is_a_one_line_error(
    tmp_path, changes, message, capsys, monkeypatch
):
    data = toy_npz(tmp_path / "bad.npz", **changes)
    code, _, err = run_cli(
        ["train", "--data", data, "--epochs", "1"], capsys, monkeypatch
    )
    assert code == 2
    assert err.strip().splitlines() == [
        "robult: error: " + message.replace("{path}", data)
    ]


def test_evaluate_refuses_data_with_other_modalities(
    tmp_path, capsys, monkeypatch
):
    import keras_robult

    model = keras_robult.baselines.UnimodalEnsemble(
        {
            "a": keras_robult.encoders.MLPEncoder(4),
            "c": keras_robult.encoders.MLPEncoder(4),
        },
        keras_robult.tasks.Classification(3),
        latent_dim=4,
    )
    model({"a": np.zeros((2, 4), "float32"), "c": np.zeros((2, 3), "float32")})
    path = str(tmp_path / "ac.keras")
    model.save(path)
    code, _, err = run_cli(
        ["evaluate", "--model", path, "--data", toy_npz(tmp_path / "t.npz")],
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "robult: error: The data's modalities ['a', 'b'] do not match the "
        "model's ['a', 'c']."
    )


# ------------------------------------------------------------ reliability
@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"y": np.zeros(60, int)},
            "The training labels hold one class only (0): there is nothing "
            "to classify. Classification needs samples of at least two "
            "classes.",
        ),
        (
            {
                "x_a": np.zeros((4, 4), "float32"),
                "x_b": np.zeros((4, 3), "float32"),
                "y": np.array([0, 1, 0, 1]),
            },
            "Seed 0: the test split holds 1 sample(s) for 2 classes; it "
            "needs at least one per class to mean anything. Use more data "
            "or a larger test split.",
        ),
        (
            {},
            "Seed 0: 2 labeled training sample(s) for 3 classes; a "
            "semi-supervised split needs at least one labeled sample per "
            "class. Raise the labeled fraction or add labels.",
        ),
        (
            {"modality_mask": np.repeat([[1.0, 0.0]], 60, axis=0)},
            "Seed 0: modality 'b' is missing in every training sample (its "
            "modality_mask column is all 0): nothing can learn it. Leave it "
            "out of the data, or give it training samples where it is "
            "present.",
        ),
    ],
    ids=["one_class", "four_samples", "few_labels", "modality_never_there"],
)
def test_meaningless_runs_are_refused_before_training(
    tmp_path, changes, message, capsys, monkeypatch
):
    data = toy_npz(tmp_path / "d.npz", **changes)
    code, _, err = run_cli(
        ["train", "--data", data, "--seeds", "0", "--out", str(tmp_path)],
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == f"robult: error: {message}"
    assert not os.path.exists(tmp_path / "results.json")


def test_text_labels_are_classes_kept_in_results_and_model(
    tmp_path, capsys, monkeypatch
):
    names = np.array(["owl", "cat", "dog"])[np.repeat(np.arange(3), 20)]
    data = toy_npz(tmp_path / "named.npz", y=names)
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["train", "--data", data, "--methods", "unimodal", "--epochs", "1"]
        + ["--seeds", "0", "--batch-size", "16", "--out", str(out)]
        + ["--labeled-fraction", "0.2"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    with open(out / "results.json") as handle:
        assert json.load(handle)["classes"] == ["cat", "dog", "owl"]
    import keras_robult  # noqa: F401

    model = keras.models.load_model(out / "models" / "unimodal-seed0.keras")
    assert model.task.class_names == ["cat", "dog", "owl"]


def test_a_diverging_method_is_recorded_and_the_others_run(tmp_path):
    from keras_robult import tasks
    from keras_robult.experiments import registry, run_protocol

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = {"a": (y[:, None] + rng.normal(size=(60, 4))).astype("float32")}
    methods = registry.method_factories(["unimodal"], latent_dim=8)
    methods["exploding"] = registry.method_factories(
        ["unimodal"], latent_dim=8, learning_rate=1e38
    )["unimodal"]
    results, _ = run_protocol(
        x,
        y,
        tasks.Classification(3),
        methods,
        seeds=(0,),
        labeled_fraction=0.5,
        epochs=3,
        batch_size=8,
        verbose=0,
    )
    failure = results["failures"][0]
    assert results["failures"] == [failure]
    assert (failure["method"], failure["seed"]) == ("exploding", 0)
    assert failure["message"] == (
        f"unimodal (seed 0): the training loss became NaN or infinite in "
        f"epoch {failure['epoch']}; this run is recorded as failed (try a "
        "lower learning rate, or check the inputs)."
    )
    assert {r["method"] for r in results["results"]} == {"unimodal"}
    from keras_robult.experiments.report import markdown_table

    assert "Failed: exploding, seed 0" in markdown_table(results)


@once
def kill_once(args, out, path, poll=0.05, signal_number=None):
    """Starts `robult *args --out out` and SIGKILLs it (or sends it
    `signal_number`) once `path` exists (the run must not have finished);
    returns `(exit code, seconds from the signal to the exit, stderr)`."""
    import signal
    import time

    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    # A terminal's Ctrl-C: pytest-xdist's workers ignore SIGINT, and a
    # child inherits that (as a background job does, by design), so the
    # child gives SIGINT back to Python before the command starts. (Not a
    # `preexec_fn`: Python code between fork and exec in a multithreaded
    # worker can crash the child, as it once did under JAX.)
    start = (
        "import runpy, signal, sys; "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('keras_robult_cli', run_name='__main__', "
        "alter_sys=True)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", start, *args, "--out", out],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not os.path.exists(path) and process.poll() is None:
            assert time.time() < deadline
            time.sleep(poll)
        sent = time.time()
        process.send_signal(signal_number or signal.SIGKILL)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # never left running
            process.kill()
            process.wait()
    assert not os.path.exists(os.path.join(out, "results.json"))
    return process.returncode, time.time() - sent, err


def test_ctrl_c_stops_a_fit_at_once_keeping_the_last_epoch(tmp_path):
    """SIGINT in the middle of a long fit (Keras' JAX trainer swallowed
    it): exit 130 within seconds, the last finished epoch backed up."""
    import signal

    data = toy_npz(tmp_path / "toy.npz")
    args = ["train", "--data", data, "--methods", "robult", "--epochs"]
    args += ["100000", "--seeds", "0", "--labeled-fraction", "0.2"]
    args += ["--batch-size", "16", "--backup-interval", "0"]
    out = str(tmp_path / "stopped")
    state = os.path.join(out, "backups", "robult-seed0", "fit", "state.npz")
    code, seconds, err = kill_once(
        args, out, state, signal_number=signal.SIGINT
    )
    assert code == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "robult: interrupted"
    assert seconds < 30
    assert os.path.exists(state)


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="once: the CLI is one path"
)
def test_a_run_killed_in_the_middle_of_a_fit_resumes_it_exactly(tmp_path):
    """SIGKILL once a fit has backed up an epoch, before it ends; the rerun
    resumes that fit and reaches the results of an uninterrupted run."""
    data = toy_npz(tmp_path / "toy.npz")
    args = ["train", "--data", data, "--methods", "robult", "--epochs", "40"]
    args += ["--seeds", "0", "--labeled-fraction", "0.2", "--batch-size"]
    args += ["16", "--backup-interval", "0"]
    out = str(tmp_path / "killed")
    state = os.path.join(out, "backups", "robult-seed0", "fit", "state.npz")
    kill_once(args, out, state, poll=0.01)
    resumed = robult(*args, "--out", out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch" in resumed.stdout, resumed.stdout
    reference = robult(*args, "--out", str(tmp_path / "whole"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    with open(os.path.join(out, "results.json")) as handle:
        got = json.load(handle)
    with open(tmp_path / "whole" / "results.json") as handle:
        whole = json.load(handle)
    # Every number but the measured cost of this machine.
    assert [c["method"] for c in got.pop("cost")] == ["robult"]
    whole.pop("cost")
    assert got == whole


@once  # the command's glue; its backend paths are tested on all three
def test_a_killed_run_resumes_to_the_uninterrupted_results(tmp_path):
    """SIGKILL after the first (method, seed) is written; the rerun skips
    it and ends with the results of a run that was never interrupted."""
    data = toy_npz(tmp_path / "toy.npz")
    args = ["train", "--data", data, "--methods", "unimodal", "gmc"]
    args += ["--epochs", "2", "--seeds", "0", "1", "--labeled-fraction"]
    args += ["0.2", "--batch-size", "16"]
    out = str(tmp_path / "killed")
    kill_once(args, out, os.path.join(out, "runs", "unimodal-seed0.json"))
    resumed = robult(*args, "--out", out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "unimodal: seed 0 finished earlier, skipped" in resumed.stdout
    # TensorFlow's device start-up error line is kept out of the output.
    assert "cuInit" not in resumed.stderr
    reference = robult(*args, "--out", str(tmp_path / "whole"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    with open(os.path.join(out, "results.json")) as handle:
        got = json.load(handle)
    with open(tmp_path / "whole" / "results.json") as handle:
        whole = json.load(handle)
    # Every number but the measured cost of this machine.
    assert [c["method"] for c in got.pop("cost")] == ["unimodal", "gmc"]
    whole.pop("cost")
    assert got == whole
    changed = robult(*args[:-2], "--batch-size", "8", "--out", out)
    assert changed.returncode == 2
    assert "holds a run with other options (batch_size: 16 there, 8 now)" in (
        changed.stderr
    )


@once  # the command's glue; its backend paths are tested on all three
def test_missing_type_specs_from_the_command_line(tmp_path):
    data = toy_npz(tmp_path / "toy.npz")
    out = tmp_path / "out"
    args = ["train", "--data", data, "--seeds", "0", "--epochs", "1"]
    args += ["--methods", "unimodal", "--labeled-fraction", "0.3"]
    args += ["--out", str(out), "--quiet", "--train-missing", "b:0.5"]
    specs = ["--test-missing", "a:0.7", "--test-missing", "both:0.7"]
    run = robult(*args, *specs)
    assert run.returncode == 0, run.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["train_missing"] == "b:0.5"
    assert results["test_missing"] == ["a:0.7", "both:0.7"]
    cells = {
        (e["train"], e["test"])
        for e in results["missing_type"]
        if e["metric"] == "accuracy"
    }
    assert cells == {("b:0.5", "a:0.7"), ("b:0.5", "both:0.7")}
    (cost,) = results["cost"]
    assert cost["parameters"] > 0 and cost["peak_host_mib"] > 0
    table = (out / "results.md").read_text()
    assert "| b:0.5 | both:0.7 |" in table and "| unimodal |" in table
    assert "| b:0.5 | both:0.7 |" in run.stdout
    splits = json.loads((out / "labeled_indices.json").read_text())["seed_0"]
    train_mask = np.asarray(splits["train_modality_mask"])
    assert (1 - train_mask).sum(0).tolist() == [0, len(splits["train"]) // 2]
    test_mask = np.asarray(splits["test_modality_masks"]["both:0.7"])
    incomplete = int(len(splits["test"]) * 0.7)
    assert (test_mask.sum(1) == 1).sum() == incomplete
    # Another test spec in the same folder is another run: refused.
    again = robult(*args, "--test-missing", "a:0.5")
    assert again.returncode == 2 and "test_missing" in again.stderr


@once
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--test-missing", "c:0.5"], "unknown modality 'c'"),
        (["--test-missing", "a:2"], "rate must be in [0, 1]"),
        (["--train-missing", "a"], "expected TYPE:RATE"),
        (
            ["--train-missing", "a:0.5", "--train-missing-rate", "0.2"],
            "give one of them",
        ),
        (["--grid", "literature", "--test-missing", "a:0.5"], "leave out"),
    ],
)
def test_bad_missing_type_options_are_one_line_errors(
    tmp_path, capsys, monkeypatch, extra, message
):
    data = toy_npz(tmp_path / "toy.npz")
    code, _, err = run_cli(
        [
            "train", "--data", data, "--seeds", "0", "--epochs", "1",
            "--methods", "unimodal", "--out", str(tmp_path / "o"), "--quiet",
            *extra,
        ],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 2
    (line,) = err.strip().splitlines()[-1:]
    assert line.startswith("robult: error:") and message in line, err
    assert not (tmp_path / "o" / "runs").exists() or not os.listdir(
        tmp_path / "o" / "runs"
    )


@once  # the command's glue; its backend paths are tested on all three
def test_the_literature_grid_writes_every_cell(tmp_path):
    data = toy_npz(tmp_path / "toy.npz")
    out = tmp_path / "grid"
    run = robult(
        "train", "--data", data, "--seeds", "0", "--epochs", "1",
        "--methods", "unimodal", "--labeled-fraction", "0.3",
        "--out", str(out), "--quiet", "--grid", "literature",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["grid"] == "literature"
    assert results["grid_runs"] == {
        "a:0.7": "train-a-0.7",
        "b:0.7": "train-b-0.7",
        "both:0.7": "train-both-0.7",
    }
    cells = [
        (e["train"], e["test"])
        for e in results["missing_type"]
        if e["metric"] == "accuracy"
    ]
    assert cells == [
        ("a:0.7", "a:0.7"),
        ("b:0.7", "b:0.7"),
        ("both:0.7", "a:0.7"),
        ("both:0.7", "b:0.7"),
        ("both:0.7", "both:0.7"),
    ]
    for folder in results["grid_runs"].values():
        assert (out / folder / "results.json").exists()
    assert {c["train"] for c in results["cost"]} == {
        "a:0.7",
        "b:0.7",
        "both:0.7",
    }
    table = (out / "results.md").read_text()
    assert table.count("| both:0.7 |") == 3


@once  # the command's glue; its backend paths are tested on all three
def test_tensorboard_logs_hold_every_loss_term(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    data = toy_npz(tmp_path / "toy.npz")
    logs = tmp_path / "logs"
    run = robult(
        "train", "--data", data, "--seeds", "0", "--epochs", "2",
        "--methods", "robult", "unimodal", "--labeled-fraction", "0.3",
        "--out", str(tmp_path / "o"), "--quiet", "--tensorboard", str(logs),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(os.listdir(logs)) == ["robult-seed0", "unimodal-seed0"]
    expected = {
        "robult-seed0": {"loss", "loss_lb", "loss_ulb", "loss_rec", "loss_sup"},
        "unimodal-seed0": {"loss", "loss_sup"},
    }
    for run_name, terms in expected.items():
        events = EventAccumulator(str(logs / run_name / "train"))
        events.Reload()
        tags = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
        assert {f"epoch_{t}" for t in terms} <= tags, tags
        (tag,) = [t for t in tags if t == "epoch_loss"]
        values = events.Tensors(tag) or events.Scalars(tag)
        assert [v.step for v in values] == [0, 1]  # one point per epoch


@once  # the command's glue; its backend paths are tested on all three
def test_hparams_from_a_file_train_that_method_and_are_recorded(tmp_path):
    data = toy_npz(tmp_path / "toy.npz")
    chosen = {
        "temperature": 0.4,
        "rbf_bandwidth": 0.7,
        "dropout": 0.2,
        "learning_rate": 0.003,
        "loss_weights": {"ulb": 0.25},
    }
    hparams = tmp_path / "best_hparams.json"
    hparams.write_text(json.dumps({"method": "robult", "hparams": chosen}))
    out = tmp_path / "o"
    run = robult(
        "train", "--data", data, "--seeds", "0", "--epochs", "1",
        "--methods", "robult", "unimodal", "--labeled-fraction", "0.3",
        "--out", str(out), "--quiet", "--hparams", str(hparams),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["hparams"] == {
        "method": "robult",
        "values": chosen,
        "source": str(hparams),
    }
    import keras_robult  # noqa: F401 (registers the classes)

    model = keras.saving.load_model(out / "models" / "robult-seed0.keras")
    config = model.get_config()
    for name in ("temperature", "rbf_bandwidth", "dropout"):
        assert config[name] == chosen[name], name
    assert config["loss_weights"]["ulb"] == 0.25
    assert config["loss_weights"]["lb"] == 1.0  # the others: the defaults
    assert float(model.optimizer.learning_rate) == pytest.approx(0.003)
    other = keras.saving.load_model(out / "models" / "unimodal-seed0.keras")
    assert float(other.optimizer.learning_rate) == pytest.approx(1e-3)
    # A typo in the file is one line, before any training.
    hparams.write_text(json.dumps({"hparams": {"temprature": 0.4}}))
    bad = robult(
        "train", "--data", data, "--out", str(tmp_path / "b"),
        "--hparams", str(hparams),
    )  # fmt: skip
    assert bad.returncode == 2
    assert "unknown option 'temprature'" in bad.stderr.splitlines()[-1]


@once
def test_tune_then_train_with_its_best_hparams(tmp_path):
    """`robult tune` with a YAML space, then `robult train --hparams` on
    its `best_hparams.json`: the saved model holds exactly those values,
    whichever won (a trial or the defaults)."""
    data = toy_npz(tmp_path / "toy.npz")
    space = tmp_path / "space.yaml"
    space.write_text(
        "temperature: {min: 0.3, max: 0.6}\n"
        "latent_dim: [8, 12]\n"
        "epochs: [1, 2]\n"
        "dropout: 0.1\n"
        "loss_weights.rec: 2.0\n"
        "rbf_bandwidth: null\n"
        "learning_rate: null\n"
        "loss_weights.lb: null\n"
        "loss_weights.ulb: null\n"
        "loss_weights.sup: null\n"
    )
    search = tmp_path / "t"
    run = robult(
        "tune", "--data", data, "--max-trials", "2", "--seeds", "0",
        "--epochs", "1", "--latent-dim", "8", "--labeled-fraction", "0.3",
        "--space", str(space), "--out", str(search),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert sum(line.startswith("trial ") for line in lines) == 2, lines
    assert "--hparams" in lines[-1]
    best = json.loads((search / "best_hparams.json").read_text())
    values = best["hparams"]
    if best["source"] != "the defaults":
        assert 0.3 <= values["temperature"] <= 0.6
        assert values["latent_dim"] in (8, 12)
        assert values["dropout"] == 0.1
        assert values["loss_weights"]["rec"] == 2.0
    out = tmp_path / "o"
    run = robult(
        "train", "--data", data, "--seeds", "0", "--methods", "robult",
        "--labeled-fraction", "0.3", "--out", str(out), "--quiet",
        "--hparams", str(search / "best_hparams.json"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["hparams"]["values"] == values
    (cost,) = results["cost"]
    assert cost["epochs"] == values["epochs"]
    import keras_robult  # noqa: F401 (registers the classes)

    model = keras.saving.load_model(out / "models" / "robult-seed0.keras")
    config = model.get_config()
    # The file holds the searched options (those left null keep the
    # method's defaults, so it leaves them out).
    defaults = method_defaults("robult")
    for name in ("temperature", "rbf_bandwidth", "dropout"):
        if name in values:
            assert config[name] == pytest.approx(values[name]), name
    assert config["latent_dim"] == values["latent_dim"]
    for term, weight in values["loss_weights"].items():
        assert config["loss_weights"][term] == pytest.approx(weight), term
    assert float(model.optimizer.learning_rate) == pytest.approx(
        values.get("learning_rate", defaults["learning_rate"])
    )
    # An unreadable space is one line naming the file, before any data.
    space.write_text("temperature: [unclosed\n")
    bad = robult(
        "tune", "--data", data, "--space", str(space),
        "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert bad.returncode == 2
    assert f"--space {space}: not readable" in bad.stderr.splitlines()[-1]


@once
def test_evaluate_maps_class_names_through_the_model_s_names(
    tmp_path, capsys, monkeypatch
):
    """An evaluation file with fewer classes (or another order) is scored
    against the model's classes, not the file's sorted names; unknown
    names are refused."""
    names = np.array(["a", "b", "c"])[np.repeat(np.arange(3), 20)]
    data = toy_npz(tmp_path / "named.npz", y=names)
    out = tmp_path / "out"
    args = ["train", "--data", data, "--methods", "unimodal", "--epochs", "1"]
    args += ["--seeds", "0", "--labeled-fraction", "0.2", "--out", str(out)]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    model = str(out / "models" / "unimodal-seed0.keras")
    keep = names != "a"

    def evaluate(labels, name):
        path = toy_npz(tmp_path / f"{name}.npz", y=labels)
        with np.load(path) as saved:
            arrays = {k: saved[k][keep] for k in saved}
        np.savez(path, **arrays)
        folder = str(tmp_path / f"eval-{name}")
        code, _, err = run_cli(
            ["evaluate", "--model", model, "--data", path, "--out", folder],
            capsys,
            monkeypatch,
        )
        return code, err, folder

    def accuracy(folder):
        with open(os.path.join(folder, "results.json")) as handle:
            results = json.load(handle)["results"]
        return [
            r["mean"]
            for r in results
            if r["metric"] == "accuracy" and len(r["subset"]) == 2
        ][0]

    code, err, by_name = evaluate(names, "bc")
    assert code == 0, err
    code, err, by_index = evaluate(np.repeat(np.arange(3), 20), "indices")
    assert code == 0, err
    assert accuracy(by_name) == accuracy(by_index)
    unknown = names.astype("<U3")
    unknown[keep & (np.arange(60) % 7 == 0)] = "zzz"
    code, err, _ = evaluate(unknown, "unknown")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "robult: error: The data's classes ['zzz'] are not among the "
        "model's ['a', 'b', 'c']."
    )


@once
def test_a_stray_class_label_is_named_not_made_a_thousand_classes(
    tmp_path, capsys, monkeypatch
):
    y = np.repeat(np.arange(3), 20)
    y[0] = 1000
    data = toy_npz(tmp_path / "stray.npz", y=y)
    code, _, err = run_cli(
        ["train", "--data", data, "--epochs", "1"], capsys, monkeypatch
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "robult: error: Class labels must be the indices 0..K-1 with every "
        "class present; the labels hold 4 values (0, 1, 2, 1000), so 997 of "
        "the classes 0..1000 would have no sample (e.g. 3). Map the labels "
        "to 0..3 first, or save them as class names (text)."
    )


@once
def test_placeholder_labels_of_unlabeled_rows_are_never_read(
    tmp_path, capsys, monkeypatch
):
    """NaN placeholders on unlabeled rows: the task is classification
    (from the labeled rows), and no unlabeled row is ever a test row."""
    y = np.repeat(np.arange(3), 20).astype("float64")
    is_labeled = np.arange(60) % 2 == 0
    y[~is_labeled] = np.nan
    data = toy_npz(tmp_path / "gaps.npz", y=y, is_labeled=is_labeled)
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["train", "--data", data, "--methods", "unimodal", "--epochs", "1"]
        + ["--seeds", "0", "1", "--out", str(out)],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    with open(out / "results.json") as handle:
        assert json.load(handle)["task"] == "classification"
    with open(out / "labeled_indices.json") as handle:
        splits = json.load(handle)
    for split in splits.values():
        assert split["test"] and is_labeled[split["test"]].all()
        assert set(split["labeled"]) == set(np.flatnonzero(is_labeled)) - set(
            split["test"]
        )


@once
def test_one_modality_prints_its_metric_without_warnings(tmp_path):
    data = toy_npz(tmp_path / "one.npz")
    with np.load(data) as saved:
        np.savez(data, x_a=saved["x_a"], y=saved["y"])
    result = robult(
        "train", "--data", data, "--methods", "unimodal", "--epochs", "1",
        "--seeds", "0", "--labeled-fraction", "0.2", "--out",
        str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "  unimodal: accuracy " in result.stdout
    assert "nan" not in result.stdout
    assert "Warning" not in result.stderr, result.stderr[-2000:]


@once
def test_a_run_says_where_it_writes_and_a_refused_one_locks_nothing(
    tmp_path, capsys, monkeypatch
):
    data = toy_npz(tmp_path / "toy.npz")
    out = str(tmp_path / "out")
    base = ["train", "--data", data, "--methods", "unimodal", "--epochs", "1"]
    base += ["--seeds", "0", "--out", out]
    # 5 % of 42 training samples: 2 labels for 3 classes, refused.
    code, _, err = run_cli(base, capsys, monkeypatch)
    assert code == 2 and "labeled training sample(s)" in err
    code, printed, err = run_cli(
        base + ["--labeled-fraction", "0.2"], capsys, monkeypatch
    )
    assert code == 0, err
    assert printed.splitlines()[0].endswith(
        f"; results in {out}/ (rerun with --out {out} to resume there)"
    )


@once
def test_a_second_run_on_the_same_folder_is_refused(
    tmp_path, capsys, monkeypatch
):
    from keras_robult.experiments.run_store import run_lock

    data = toy_npz(tmp_path / "toy.npz")
    out = str(tmp_path / "busy")
    with run_lock(out):
        code, _, err = run_cli(
            ["train", "--data", data, "--epochs", "1", "--out", out],
            capsys,
            monkeypatch,
        )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"robult: error: {out} is in use by another run (process "
        f"{os.getpid()}); wait for it to end, or choose another --out."
    )


@once
def test_an_unwritable_folder_is_named_not_a_temporary_file(
    tmp_path, monkeypatch
):
    import errno
    import tempfile

    from keras_robult.utils.atomic import write_json

    def refuse(prefix, suffix, dir):
        name = os.path.join(dir, f"{prefix}x1y2{suffix}")
        raise PermissionError(errno.EACCES, "Permission denied", name)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = str(tmp_path / "results.json")
    with pytest.raises(PermissionError) as error:
        write_json(target, {})
    assert str(error.value) == f"[Errno 13] Permission denied: '{target}'"


def test_evaluate_help_has_no_training_options_and_no_empty_default(
    capsys, monkeypatch
):
    for command, absent in (
        ("evaluate", ("--finetune", "--raw-models")),
        ("train", ("(default: )",)),
    ):
        code, printed, _ = run_cli([command, "--help"], capsys, monkeypatch)
        assert code == 0
        for text in absent:
            assert text not in printed


def test_library_parameter_names_become_the_command_s_flags():
    """One table, from the parsers: every option's `dest` to its longest
    `--` flag, subcommands included; only quoted names are rewritten, and
    a quoted word that is no option stays."""
    from keras_robult.cli.options import as_flags, flag_table
    from keras_robult.cli.parser import robult_parser
    from keras_robult.cli.recipe import recipe_parser

    table = flag_table(robult_parser())
    assert table["labeled_fraction"] == "--labeled-fraction"
    assert table["max_trials"] == "--max-trials"  # robult tune's
    assert table["overwrite"] == "--overwrite"  # robult export's
    assert flag_table(recipe_parser("A recipe."))["data_dir"] == "--data-dir"
    assert (
        as_flags(
            "`epochs` and `batch_size` must be positive; epochs stays, "
            "`Robult` too",
            table,
        )
        == "--epochs and --batch-size must be positive; epochs stays, "
        "`Robult` too"
    )
