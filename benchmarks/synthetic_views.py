"""Writes a synthetic multi-view classification problem as a `--data` file.

Not mfeat, and nothing the defaults were chosen on: `classes` Gaussian
classes in a `latent`-dimensional space; each view sees the class latent
through its own random linear map: the first half exactly as every other
view does, the second half through view-specific noise (standard
deviation 0.5), then observation noise at the view's own level, so the
views differ in width, in how much they know and in what they share. The
labels are balanced; nothing is marked as test or labeled (the protocol
draws its own splits).

    python benchmarks/synthetic_views.py --out synthetic.npz
    robult tune --data synthetic.npz --out results/synthetic-tune
"""

import argparse

import numpy as np

VIEWS = {  # name -> (width, noise standard deviation)
    "near": (24, 1.0),
    "wide": (96, 2.5),
    "far": (48, 4.0),
    "short": (8, 1.5),
}


def make(samples=1500, classes=6, latent=8, seed=0):
    """The arrays of the `.npz`: dict `x_<view>` -> `(samples, width)`
    float32 and `y` `(samples,)` int."""
    rng = np.random.default_rng(seed)
    y = np.arange(samples) % classes
    rng.shuffle(y)
    centres = rng.normal(0.0, 1.0, (classes, latent))
    z = centres[y] + rng.normal(0.0, 1.0, (samples, latent))
    shared = z[:, : latent // 2]
    arrays = {"y": y.astype(np.int64)}
    for name, (width, noise) in VIEWS.items():
        unique = z[:, latent // 2 :] + rng.normal(0.0, 0.5, shared.shape)
        source = np.concatenate([shared, unique], axis=1)
        projection = rng.normal(0.0, 1.0 / np.sqrt(latent), (latent, width))
        view = source @ projection + rng.normal(0.0, noise, (samples, width))
        arrays[f"x_{name}"] = view.astype(np.float32)
    return arrays


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="synthetic.npz")
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    arrays = make(args.samples, args.classes, seed=args.seed)
    np.savez(args.out, **arrays)
    print(
        f"{args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    )


if __name__ == "__main__":
    main()
