"""UCI Multiple Features (mfeat): 2000 handwritten digits, six views."""

import os

import numpy as np

VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
DESCRIPTIONS = {
    "fou": "76 Fourier coefficients of the character shapes",
    "fac": "216 profile correlations",
    "kar": "64 Karhunen-Loeve coefficients",
    "pix": "240 pixel averages in 2 x 3 windows",
    "zer": "47 Zernike moments",
    "mor": "6 morphological features",
}
CITATION = (
    "M. van Breukelen, R.P.W. Duin, D.M.J. Tax, J.E. den Hartog, "
    '"Handwritten digit recognition by combined classifiers", '
    "Kybernetika 34(4), 1998. UCI Machine Learning Repository, "
    '"Multiple Features" (Robert P.W. Duin).'
)
DATA_DIR = os.path.join(os.path.dirname(__file__), "data", "mfeat")


def load_data(data_dir=None):
    """Loads mfeat from the copy inside the package (no network).

    Returns:
        Tuple `(x, y)`: `x` a dict view name -> float32 array
        `(2000, features)` in the order `VIEWS`, `y` an int array `(2000,)`
        of digit classes 0-9. Row `i` of every view is the same sample.
    """
    data_dir = data_dir or DATA_DIR
    x, y = {}, None
    for view in VIEWS:
        path = os.path.join(data_dir, f"mfeat-{view}.csv")
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"mfeat view file {path} is missing from the package data."
            )
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype="float64")
        labels = table[:, -1].astype("int64")
        if y is None:
            y = labels
        elif not np.array_equal(y, labels):
            raise ValueError(f"Labels of view '{view}' disagree with 'fou'.")
        x[view] = table[:, :-1].astype("float32")
    return x, y
