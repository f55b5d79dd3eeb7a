"""Seeded fuzzing of what users hand to `robult train --data FILE.npz`.

A few hundred malformed inputs are generated from one seed: archives that
are truncated, bit-flipped or zeroed in places, arrays of wrong dtypes,
ranks and lengths, NaN / inf, empty arrays, labels of every type, masks
and flags that make no sense, and `.npy` headers that claim huge shapes.
Each goes through the command's loader (`load_npz`, task inference, the
checks made before any training) and, when that accepts it,
`Robult.fit`'s input checks. Every case must end in a `ValueError` with a
one-sentence message (the command prints its first line and exits with
2), never another exception, a hang, or a result. The one exception: a
corrupted archive whose damage misses the data (a timestamp in a zip
header) may load, and must then give exactly the original arrays.
"""

import io
import struct
import zipfile

import keras
import numpy as np
import pytest

from keras_robult import Robult
from keras_robult.cli import main
from keras_robult.experiments.default_encoders import default_encoder
from keras_robult.experiments.protocol import run_protocol
from keras_robult.experiments.user_data import npz_data

SEED = 20261127
N = 24  # samples of the valid archive the byte-level cases corrupt


def valid_arrays(rng, n=N):
    y = np.arange(n) % 3
    return {
        "x_a": (y[:, None] + rng.normal(size=(n, 4))).astype("float32"),
        "x_b": (y[:, None] + rng.normal(size=(n, 3))).astype("float32"),
        "y": y,
        "is_labeled": np.arange(n) % 2 == 0,
    }


def npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npy_member(header, data=b""):
    """A `.npy` member (format 1.0) with a hand-written header dict."""
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def zip_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def byte_cases(rng, count):
    """(name, bytes) of a valid archive truncated, bit-flipped or with a
    zeroed run of bytes."""
    original = npz_bytes(valid_arrays(np.random.default_rng(0)))
    cases = []
    for index in range(count):
        data = bytearray(original)
        kind = ("truncate", "flip", "zero")[index % 3]
        if kind == "truncate":
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == "flip":
            for _ in range(int(rng.integers(1, 9))):
                position = int(rng.integers(0, len(data)))
                data[position] ^= 1 << int(rng.integers(0, 8))
        else:
            start = int(rng.integers(0, len(data)))
            stop = start + int(rng.integers(1, 64))
            data[start:stop] = bytes(len(data[start:stop]))
        cases.append((f"{kind}-{index}", bytes(data)))
    return cases


def array_cases(rng):
    """(name, bytes) of archives that are readable but wrong."""
    cases = []

    def add(name, **changes):
        arrays = valid_arrays(rng)
        for key, value in changes.items():
            if value is None:
                arrays.pop(key, None)
            else:
                arrays[key] = value
        cases.append((name, npz_bytes(arrays)))

    n = N
    y = np.arange(n) % 3
    x_a = rng.normal(size=(n, 4)).astype("float32")
    for bad in (np.nan, np.inf, -np.inf):
        row = int(rng.integers(0, n))
        value = x_a.copy()
        value[row, int(rng.integers(0, 4))] = bad
        add(f"non-finite-{bad}", x_a=value)
    half = x_a.astype("float16")
    half[0, 0] = np.inf
    add("float16-inf", x_a=half)
    for dtype in ("complex64", "datetime64[s]", "timedelta64[s]", "<U3"):
        add(f"x-dtype-{dtype}", x_a=np.zeros((n, 4)).astype(dtype))
    add("x-bytes", x_a=np.full((n, 4), b"ab"))
    add("x-structured", x_a=np.zeros(n, dtype=[("p", "f4"), ("q", "i4")]))
    add("x-0d", x_a=np.float32(1.0))
    add("x-rank3", x_a=np.zeros((n, 2, 2, 2), "float32"))
    add("x-no-features", x_a=np.zeros((n, 0), "float32"))
    add("x-short", x_a=x_a[:-1])
    add("x-long", x_b=rng.normal(size=(n + 3, 3)).astype("float32"))
    add("y-short", y=y[:-2])
    add("y-long", y=np.arange(n + 1) % 3)
    add(
        "empty",
        x_a=np.zeros((0, 4), "float32"),
        x_b=np.zeros((0, 3), "float32"),
        y=np.zeros(0, "int64"),
        is_labeled=np.zeros(0, bool),
    )
    add("no-modality", x_a=None, x_b=None)
    add("no-labels", y=None)
    add("unknown-key", z=np.zeros(n))
    add("y-0d", y=np.int64(1))
    add("y-rank3", y=np.zeros((n, 2, 2)))
    add("y-complex", y=(y + 1j).astype("complex64"))
    add("y-datetime", y=np.zeros(n, "datetime64[s]"))
    add("y-timedelta", y=np.zeros(n, "timedelta64[s]"))
    add("y-structured", y=np.zeros(n, dtype=[("p", "f4")]))
    add("y-negative", y=y - 1)
    add("y-nan-labeled", y=np.where(y == 0, np.nan, y).astype("float32"))
    add("y-inf", y=np.where(y == 1, np.inf, 0.5).astype("float32"))
    add("y-matrix-not-01", y=rng.normal(size=(n, 3)))
    add("y-one-class-text", y=np.array(["cat"] * n))
    add("y-one-class", y=np.zeros(n, "int64"))
    add("y-empty-text", y=np.array([""] * n))
    add("mask-values", modality_mask=np.full((n, 2), 2.0))
    add("mask-nan", modality_mask=np.full((n, 2), np.nan))
    add("mask-shape", modality_mask=np.ones((n, 3)))
    add("mask-rank", modality_mask=np.ones(n))
    mask = np.ones((n, 2))
    mask[int(rng.integers(0, n))] = 0
    add("mask-empty-row", modality_mask=mask)
    add("mask-text", modality_mask=np.full((n, 2), "1"))
    add("mask-bool-empty-row", modality_mask=np.arange(2 * n).reshape(n, 2) > 1)
    add("is-labeled-shape", is_labeled=np.ones(n - 1, bool))
    add("is-labeled-values", is_labeled=np.full(n, 3))
    add("is-labeled-none", is_labeled=np.zeros(n, bool))
    add("test-all", test=np.ones(n, bool))
    add("test-none", test=np.zeros(n, bool))
    add("test-shape", test=np.ones((n, 2), bool))
    # Members that are not .npy arrays, or claim far more than they hold.
    good = {f"{k}.npy": _npy(v) for k, v in valid_arrays(rng).items()}
    for name, shape, descr in (
        ("huge-rows", (10**12, 4), "<f4"),
        ("huge-elements", (N, 2**40), "<f8"),
        ("overflowing", (2**62, 2**62), "<f8"),
        ("negative", (-1, 4), "<f4"),
        ("bad-descr", (N, 4), "<x9"),
        ("object", (N, 4), "|O"),
    ):
        members = dict(good)
        members["x_a.npy"] = npy_member(
            {"descr": descr, "fortran_order": False, "shape": shape},
            b"\x00" * 64,
        )
        cases.append((f"header-{name}", zip_of(members)))
    members = dict(good)
    members["y.npy"] = b"not an array"
    cases.append(("member-not-npy", zip_of(members)))
    members = dict(good)
    members["x_a.npy"] = b"\x93NUMPY\x09\x00garbage"
    cases.append(("member-bad-version", zip_of(members)))
    cases.append(("empty-zip", zip_of({})))
    cases.append(("text", b"x,y\n1,2\n"))
    cases.append(("empty-file", b""))
    cases.append(("npy-not-npz", _npy(np.zeros((N, 4)))))
    return cases


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def command_checks(path):
    """What `robult train --data path` does before it trains: the loader,
    then the protocol's split checks with no method to train."""
    data = npz_data(path)
    run_protocol(
        data.x,
        data.y,
        data.task,
        {},
        seeds=[0],
        test_mask=data.test_mask,
        is_labeled=data.is_labeled,
        verbose=0,
    )
    return data, data.task


def fit_checks(data, task):
    """`Robult.fit` on the whole file (its input checks come first)."""
    x, y = data.x, data.y
    modalities = [m for m in x if m != "modality_mask"]
    encoders = {
        m: default_encoder(m, np.shape(x[m])[1:], 8) for m in modalities
    }
    model = Robult(encoders, task, latent_dim=8, redundant_dim=4, unique_dim=4)
    targets = {"label": y}
    if data.is_labeled is not None:
        targets["is_labeled"] = data.is_labeled.astype("float32")
    model.compile(optimizer="adam", jit_compile=False)
    model.fit(x, targets, epochs=1, batch_size=len(y), verbose=0)


def same_data(data, original):
    """The arrays of the original archive (labels: those of its labeled
    rows; an unlabeled row's label is a placeholder nothing reads)."""
    labeled = original["is_labeled"]
    return (
        set(data.x) == {"a", "b"}
        and all(np.array_equal(data.x[m], original[f"x_{m}"]) for m in "ab")
        and np.array_equal(data.y[labeled], original["y"][labeled])
        and np.array_equal(data.is_labeled, labeled)
    )


def outcome(tmp_path, name, payload, fit=True):
    """`(data, None)` when everything accepts the file, else `(None,
    message)` of the `ValueError`; any other exception propagates."""
    path = tmp_path / f"{name}.npz"
    path.write_bytes(payload)
    try:
        data, task = command_checks(str(path))
        if fit:
            fit_checks(data, task)
        return data, None
    except ValueError as error:
        return None, str(error)


def check_message(name, message):
    lines = message.strip().splitlines()
    assert lines and len(lines[0]) > 20, (name, message)
    assert "Traceback" not in message, (name, message)


def test_malformed_arrays_are_refused(tmp_path):
    rng = np.random.default_rng(SEED)
    failures = []
    for name, payload in array_cases(rng):
        try:
            data, message = outcome(tmp_path, name, payload)
        except Exception as error:  # the bug this test exists for
            failures.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if data is not None:
            failures.append(f"{name}: accepted")
            continue
        check_message(name, message)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("part", range(4))
def test_corrupted_archives_are_refused_or_read_intact(tmp_path, part):
    rng = np.random.default_rng([SEED, part])
    original = valid_arrays(np.random.default_rng(0))
    failures = []
    outcomes = {"refused": 0, "intact": 0}
    for name, payload in byte_cases(rng, 60):
        try:
            # A file that loads intact is valid data: no fit needed.
            data, message = outcome(tmp_path, name, payload, fit=False)
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if data is None:
            check_message(name, message)
            outcomes["refused"] += 1
        elif same_data(data, original):
            outcomes["intact"] += 1
        else:
            failures.append(f"{name}: loaded different data")
    assert not failures, "\n".join(failures)
    assert outcomes["refused"] > 30, outcomes


def test_the_command_prints_one_line_and_exits_2(tmp_path, capsys, monkeypatch):
    """A sample of the cases through `robult train` itself."""
    rng = np.random.default_rng(SEED)
    cases = array_cases(rng)
    picked = rng.choice(len(cases), size=6, replace=False)
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    for index in picked:
        name, payload = cases[index]
        path = tmp_path / f"{name}.npz"
        path.write_bytes(payload)
        argv = ["train", "--data", str(path), "--methods", "unimodal"]
        argv += ["--epochs", "1", "--seeds", "0", "--quiet"]
        argv += ["--out", str(tmp_path / f"out-{name}")]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert err.startswith("robult: error: "), (name, err)
        assert len(err.strip().splitlines()) == 1, (name, err)
