import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_robult import distribution
from tests.conftest import BACKEND

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def report():
    """`tests/distributed_fit.py` in a process with two CPU devices."""
    if BACKEND == "torch":
        pytest.skip("Keras 3.15 has no distribution support for torch")
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-m", "tests.distributed_fit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [
        line for line in done.stdout.splitlines() if line.startswith("REPORT")
    ]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT ") :])


@pytest.mark.parametrize("name", ["robult", "gmc"])
def test_two_devices_train_like_one(report, name):
    run = report[name]
    assert run["devices"] == 2
    assert run["weight_moved"] > 1e-3  # the steps did something
    assert run["weight_difference"] < 1e-4
    assert run["loss_difference"] < 1e-5


def test_the_pu_loss_sees_the_global_batch(report):
    # Batch 8 over 2 devices: each replica's similarity matrices (one per
    # modality) are still (8, 8), anchors and keys from the whole batch.
    assert report["robult"]["similarity_shapes"] == [[8, 8]]
    assert report["robult"]["similarity_shapes_parallel"] == [[8, 8]]


def test_a_last_batch_that_does_not_divide_gives_the_same_results(report):
    # JAX pads it with inert rows, MirroredStrategy splits it unevenly.
    odd = report["odd_batch"]
    assert odd["rows"] == 11
    assert odd["prediction_difference"] < 1e-5
    assert odd["score_difference"] < 1e-5


@pytest.mark.skipif(BACKEND != "tensorflow", reason="MirroredStrategy only")
def test_without_the_gather_replicas_would_train_differently(report):
    # Control: each replica's loss on its own half of the batch, not scaled
    # by 1/2: the weights leave the single-device run's.
    assert report["control_weight_difference"] > 1e-2


@pytest.mark.skipif(BACKEND != "tensorflow", reason="MirroredStrategy only")
def test_xla_under_mirrored_strategy_is_refused(report):
    assert "jit_compile=True is not supported" in report["jit_error"]


def test_padding_adds_inert_rows():
    x = {"a": np.ones((5, 2), "float32"), "b": np.ones((5, 3), "float32")}
    y = np.arange(5)
    x_pad, y_pad, weight, count = distribution.pad_to_shards(
        x, y, np.ones(5), shards=4
    )
    assert count == 5 and x_pad["a"].shape == (8, 2)
    np.testing.assert_array_equal(x_pad["modality_mask"][5:], 0)
    np.testing.assert_array_equal(x_pad["modality_mask"][:5], 1)
    np.testing.assert_array_equal(y_pad["is_labeled"], [1] * 5 + [0] * 3)
    np.testing.assert_array_equal(weight, [1] * 5 + [0] * 3)
    assert distribution.pad_to_shards(x, y, shards=5)[0] is x


def test_one_device_leaves_the_loss_alone():
    structure = {"a": np.ones((4, 2), "float32")}
    assert distribution.replicas_in_sync() == 1
    assert distribution.gather_global_batch(structure) is structure


@pytest.mark.skipif(BACKEND == "torch", reason="no torch distribution")
def test_a_batch_that_does_not_divide_is_refused(monkeypatch):
    monkeypatch.setattr(distribution, "local_device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"batch size \(7\).*devices \(2\)"):
        with distribution.data_parallel(7):
            pass
    assert keras.distribution.distribution() is None


@pytest.mark.skipif(BACKEND != "torch", reason="torch only")
def test_torch_has_no_data_parallel_training():
    with pytest.raises(ValueError, match="no distribution support for torch"):
        with distribution.data_parallel(8):
            pass


@pytest.mark.skipif(BACKEND != "jax", reason="simulated devices: JAX")
def test_robult_train_distribute_matches_one_device(tmp_path):
    from tests.cli.test_command import toy_npz

    data = toy_npz(tmp_path / "toy.npz")
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    means = {}
    for flags in ((), ("--distribute",)):
        out = str(tmp_path / f"out{len(flags)}")
        done = subprocess.run(
            [sys.executable, "-m", "keras_robult_cli", "train"]
            + ["--data", data, "--methods", "robult", "--epochs", "2"]
            + ["--seeds", "0", "--batch-size", "16", "--out", out]
            + ["--labeled-fraction", "0.2", *flags],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        with open(os.path.join(out, "results.json")) as handle:
            means[flags] = {
                ("+".join(r["subset"]), r["metric"]): r["mean"]
                for r in json.load(handle)["results"]
            }
    assert "data parallel over 2 devices" in done.stdout
    assert means[()].keys() == means[("--distribute",)].keys()
    for key, value in means[()].items():
        assert means[("--distribute",)][key] == pytest.approx(value, abs=1e-4)


@pytest.mark.skipif(BACKEND != "torch", reason="torch only")
def test_robult_train_distribute_on_torch_is_a_one_line_error(tmp_path):
    from tests.cli.test_command import robult, toy_npz

    done = robult(
        "train", "--data", toy_npz(tmp_path / "toy.npz"), "--distribute"
    )
    assert done.returncode != 0
    assert "no distribution support for torch" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(BACKEND != "jax", reason="simulated devices: JAX")
def test_a_recipe_trains_data_parallel_with_its_validation_split(tmp_path):
    # Early stopping on the validation split, labeled-only batches and
    # the evaluation all run sharded over 2 devices.
    from tests.cli.test_recipe import check_results
    from tests.datasets.writers import write_mult

    write_mult(tmp_path / "mosi_data.pkl", "mosi")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "mosi.py")]
        + ["--data-dir", str(tmp_path), "--smoke", "--distribute"]
        + ["--methods", "robult", "unimodal", "--batch-size", "16"]
        + ["--out", str(out)],
        cwd=ROOT,
        env=dict(
            os.environ,
            KERAS_BACKEND="jax",
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check_results(
        out,
        ["text", "text+audio+vision"],
        ["mae", "corr", "f1_weighted", "acc2", "acc7"],
        ["robult", "unimodal"],
    )


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution multi-host")
def test_two_processes_on_localhost_train_like_one(tmp_path):
    # Two JAX processes joined by keras.distribution.initialize, each with
    # its half of every batch of 8: the same losses, weights and label
    # prior as one process on whole batches.
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = str(probe.getsockname()[1])
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, "-m", "tests.multi_process_fit"]
    out = [str(tmp_path / f"{name}.npz") for name in ("p0", "p1", "single")]
    runs = [
        subprocess.Popen(
            command + [str(i), port, out[i]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        results = [run.communicate(timeout=240) for run in runs]
    finally:
        for run in runs:
            run.kill()
    single = subprocess.run(
        command + ["--single", out[2]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    histories = []
    for code, (stdout, stderr) in zip(
        [run.returncode for run in runs] + [single.returncode],
        results + [(single.stdout, single.stderr)],
    ):
        lines = [line for line in stdout.splitlines() if line[:7] == "REPORT "]
        assert code == 0 and lines, stderr[-3000:]
        histories.append(json.loads(lines[-1][7:]))
    saved = [np.load(path) for path in out]
    reference = saved[2]["weights"]
    for run, history in zip(saved[:2], histories[:2]):
        scale = np.abs(reference).max()
        assert np.abs(run["weights"] - reference).max() / scale < 1e-5
        np.testing.assert_allclose(run["prior"], saved[2]["prior"], atol=1e-6)
        for key in ("loss_lb", "loss_ulb", "loss_sup", "loss_rec"):
            np.testing.assert_allclose(
                history[key], histories[2][key], rtol=1e-5, atol=1e-6
            )
