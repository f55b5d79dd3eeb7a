import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
# XLA on TF and JAX; torch.compile costs tens of seconds a model on CPU.
JIT_COMPILE = BACKEND != "torch"

# Orchestration that does not depend on the backend (recipe and command glue:
# options, files, the run store) runs once, under the cheapest backend, to
# keep the fast suite's time; the backend-specific paths it calls have their
# own tests on all three.
once = pytest.mark.skipif(
    BACKEND != "torch",
    reason="backend-independent glue: run once, in the torch suite",
)


def pytest_addoption(parser):
    parser.addoption(
        "--run-large",
        action="store_true",
        default=False,
        help="run the slow tests marked `large`",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large test: pass --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


def to_numpy(tree):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tree)


def make_multimodal(
    num_samples=64,
    num_classes=3,
    dims=(6, 5, 4),
    noise=1.0,
    labeled_fraction=0.25,
    seed=0,
):
    """Synthetic problem: each modality is a noisy code of the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_samples)
    x = {}
    for index, dim in enumerate(dims):
        centres = rng.normal(size=(num_classes, dim)) * 2.0
        x[f"m{index}"] = (
            centres[labels] + noise * rng.normal(size=(num_samples, dim))
        ).astype("float32")
    x["modality_mask"] = np.ones((num_samples, len(dims)), "float32")
    is_labeled = np.zeros(num_samples, "float32")
    for c in range(num_classes):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        count = max(1, int(round(labeled_fraction * rows.size)))
        is_labeled[rng.choice(rows, count, replace=False)] = 1.0
    return x, {"label": labels, "is_labeled": is_labeled}
