"""The dataset suite defaults are chosen on: classification and regression,
redundant and complementary views, synthetic and real, with and without
gaps in training. Everything ships with the package or with scikit-learn
(no download); the synthetic sets are drawn from a fixed seed.

Each entry of `DATASETS` is a `SuiteDataset`: its arrays (`load()`, the
modalities and the labels, optionally a training missing rate), its task
and labeled fraction, and what it stresses. `benchmarks/suite.py` runs
every method on each.

Example:

```python
from keras_robult.datasets import suite

data = suite.DATASETS["additive-regression"]
x, y = data.load()
```
"""

import dataclasses

import numpy as np

from keras_robult.datasets import mfeat


@dataclasses.dataclass(frozen=True)
class SuiteDataset:
    """One dataset of the suite.

    Args:
        name: its name in the results.
        make: function `() -> (x, y)`: dict modality -> array, labels.
        task: `"classification"` or `"regression"`.
        labeled_fraction: the share of the training split that is labeled.
        stresses: what it tests, in a sentence.
        train_missing_rate: training data with gaps: each modality of a
            training sample missing with this probability (0: complete).
    """

    name: str
    make: object
    task: str
    labeled_fraction: float
    stresses: str
    train_missing_rate: float = 0.0

    def load(self):
        """`(x, y)`."""
        return self.make()


def redundant_regression(samples=1200, seed=0):
    """Three noisy views of one 3-d latent; the target, in [-3, 3], is a
    function of the latent (a sentiment-like score): each view alone
    predicts it, the three together better (redundant views)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(samples, 3))
    score = latent @ np.array([1.2, -0.8, 0.5]) + 0.3 * np.tanh(latent[:, 0])
    y = np.clip(score, -3, 3)
    x = {}
    for name, (width, noise) in {
        "text": (32, 0.6),
        "audio": (16, 1.0),
        "vision": (24, 1.4),
    }.items():
        mixing = rng.normal(size=(3, width)) / np.sqrt(3)
        view = latent @ mixing + rng.normal(0, noise, (samples, width))
        x[name] = view.astype("float32")
    return x, y.astype("float32")


def additive_regression(samples=500, seed=0):
    """Two views, each of 8 features; the target is additive across them,
    `y = 40 (3 a_0 + 2 b_1 + noise) + 700`: neither view alone can predict
    it, and averaging two single-view predictions halves each part
    (complementary views)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(samples, 8))
    b = rng.normal(size=(samples, 8))
    y = 40 * (3 * a[:, 0] + 2 * b[:, 1] + rng.normal(0, 0.3, samples)) + 700
    return {"a": a.astype("float32"), "b": b.astype("float32")}, y.astype(
        "float32"
    )


def complementary_classification(samples=1200, seed=0):
    """Four classes, two bits, one bit in each of two views (plus noise
    features): each view alone can tell two classes apart at most, both
    views all four (complementary views)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, samples)
    bits = np.stack([y // 2, y % 2], axis=1) * 2.0 - 1.0
    x = {}
    for index, name in enumerate(("left", "right")):
        width = 12
        direction = rng.normal(size=width)
        direction /= np.linalg.norm(direction)
        view = bits[:, index : index + 1] * 1.5 * direction
        view = view + rng.normal(size=(samples, width))
        x[name] = view.astype("float32")
    return x, y.astype("int64")


def nonlinear_regression(samples=1500, seed=0):
    """Two noisy views of one 2-d latent; the target is a nonlinear
    function of the latent, `2 sin(1.5 u_0) + u_1^2 + noise`: each view
    alone predicts it (redundant views), no linear model can."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(samples, 2))
    y = (
        2 * np.sin(1.5 * latent[:, 0])
        + latent[:, 1] ** 2
        + rng.normal(0, 0.2, samples)
    )
    x = {}
    for name, (width, noise) in {"left": (16, 0.3), "right": (12, 0.5)}.items():
        mixing = rng.normal(size=(2, width)) / np.sqrt(2)
        view = latent @ mixing + rng.normal(0, noise, (samples, width))
        x[name] = view.astype("float32")
    return x, y.astype("float32")


def diabetes():
    """scikit-learn's diabetes progression (442 patients, real data): the
    clinical measurements (age, sex, body-mass index, blood pressure) and
    the six blood serum measurements are two natural views of a
    regression target (disease progression after a year, 25-346)."""
    from sklearn.datasets import load_diabetes  # ships with scikit-learn

    data = load_diabetes()
    features = data.data.astype("float32")
    x = {"clinical": features[:, :4], "serum": features[:, 4:]}
    return x, data.target.astype("float32")


def digits_quadrants():
    """scikit-learn's handwritten digits (1,797 8x8 images, real data),
    each cut into its four 4x4 quadrants: each quadrant sees a corner of
    the digit only."""
    from sklearn.datasets import load_digits  # ships with scikit-learn

    digits = load_digits()
    x = {}
    for name, rows, cols in (
        ("top_left", slice(0, 4), slice(0, 4)),
        ("top_right", slice(0, 4), slice(4, 8)),
        ("bottom_left", slice(4, 8), slice(0, 4)),
        ("bottom_right", slice(4, 8), slice(4, 8)),
    ):
        part = digits.images[:, rows, cols].reshape(len(digits.images), -1)
        x[name] = part.astype("float32")
    return x, digits.target.astype("int64")


DATASETS = {
    d.name: d
    for d in (
        SuiteDataset(
            "mfeat",
            mfeat.load_data,
            "classification",
            0.05,
            "six redundant views of one digit image, 70 labels; the "
            "embedded default",
        ),
        SuiteDataset(
            "digits-quadrants",
            digits_quadrants,
            "classification",
            0.05,
            "real, partial views: each quadrant sees a corner of the "
            "digit, 63 labels",
        ),
        SuiteDataset(
            "complementary-classification",
            complementary_classification,
            "classification",
            0.05,
            "complementary views: one label bit in each, so a single view "
            "is at most a coin flip between two classes",
        ),
        SuiteDataset(
            "redundant-regression",
            redundant_regression,
            "regression",
            0.05,
            "a sentiment-like regression in [-3, 3] (the paper's task) "
            "from three redundant noisy views, 42 labels",
        ),
        SuiteDataset(
            "additive-regression",
            additive_regression,
            "regression",
            0.2,
            "a target additive across two views: late fusion by averaging "
            "halves each part; a linear target that ridge fits exactly",
        ),
        SuiteDataset(
            "nonlinear-regression",
            nonlinear_regression,
            "regression",
            0.1,
            "a nonlinear target of a latent two noisy views share, 105 "
            "labels: no linear model fits it",
        ),
        SuiteDataset(
            "diabetes",
            diabetes,
            "regression",
            0.2,
            "real tabular regression with two natural views (clinical, "
            "serum), 62 labels",
        ),
        SuiteDataset(
            "digits-gaps",
            digits_quadrants,
            "classification",
            0.05,
            "the digits quadrants with gaps in training: each quadrant of "
            "a training sample missing with probability 0.5",
            train_missing_rate=0.5,
        ),
    )
}
