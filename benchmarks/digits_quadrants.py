"""Writes scikit-learn's bundled handwritten digits as a four-view `--data`
file: each 8x8 image cut into its four 4x4 quadrants (`top_left`,
`top_right`, `bottom_left`, `bottom_right`, 16 pixels each, 0-16).

Real data that ships with scikit-learn (no download: UCI optdigits' test
part, 1,797 images, 10 classes), and not mfeat: the views are parts of one
image, so each alone sees only a corner of the digit.

    python benchmarks/digits_quadrants.py --out digits.npz
    robult tune --data digits.npz --out results/digits-tune
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits

QUADRANTS = {
    "top_left": (slice(0, 4), slice(0, 4)),
    "top_right": (slice(0, 4), slice(4, 8)),
    "bottom_left": (slice(4, 8), slice(0, 4)),
    "bottom_right": (slice(4, 8), slice(4, 8)),
}


def make():
    """The arrays of the `.npz`: `x_<quadrant>` `(1797, 16)` float32 and
    `y` `(1797,)` int."""
    digits = load_digits()
    arrays = {"y": digits.target.astype(np.int64)}
    for name, (rows, cols) in QUADRANTS.items():
        part = digits.images[:, rows, cols].reshape(len(digits.images), -1)
        arrays[f"x_{name}"] = part.astype(np.float32)
    return arrays


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="digits.npz")
    args = parser.parse_args()
    arrays = make()
    np.savez(args.out, **arrays)
    print(
        f"{args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    )


if __name__ == "__main__":
    main()
