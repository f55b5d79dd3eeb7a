"""Tiny dataset files in exactly the distributed formats (key names,
dtypes, shapes), for the loader and recipe tests."""

import pickle

import numpy as np

MULT_SHAPES = {
    "mosi": {"text": (50, 300), "audio": (50, 5), "vision": (50, 20)},
    "mosei": {"text": (50, 300), "audio": (50, 74), "vision": (50, 35)},
}
SIZES = {"train": 24, "valid": 8, "test": 10}


def sentiment_split(rng, size, shapes, labels_key="labels", lengths=False):
    y = np.round(rng.uniform(-3, 3, size), 1)
    split = {}
    for name, shape in shapes.items():
        # Features carry the sentiment, so a model can learn something.
        values = rng.normal(size=(size,) + shape) + y[:, None, None] * 0.5
        split[name] = values.astype("float32")
    split[labels_key] = (
        y.reshape(size, 1, 1) if labels_key == "labels" else y
    ).astype("float32")
    split["id"] = np.array([f"clip{i}" for i in range(size)])
    if lengths:
        for name in ("audio", "vision"):
            split[f"{name}_lengths"] = rng.integers(10, 51, size)
    return split


def write_mult(path, dataset="mosi", seed=0, inf_audio=True):
    """A MulT pickle (`mosi_data.pkl` / `mosei_senti_data.pkl`)."""
    rng = np.random.default_rng(seed)
    data = {
        name: sentiment_split(rng, size, MULT_SHAPES[dataset])
        for name, size in SIZES.items()
    }
    if inf_audio:  # the known defect of the released files
        data["train"]["audio"][3, 7, 2] = -np.inf
        data["train"]["audio"][5, 0, :] = -np.inf
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


def write_mmsa(path, seed=0):
    """An MMSA pickle (`aligned_50.pkl`): BERT text, lengths, labels under
    `regression_labels`."""
    rng = np.random.default_rng(seed)
    shapes = {"text": (50, 768), "audio": (50, 5), "vision": (50, 20)}
    data = {
        name: sentiment_split(rng, size, shapes, "regression_labels", True)
        for name, size in SIZES.items()
    }
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


def write_mmimdb(path, num=60, seed=0, missing=(), external_images=True):
    """`multimodal_imdb.hdf5`. `images` is an external dataset whose file
    does not exist: any read of it fails."""
    import h5py

    rng = np.random.default_rng(seed)
    genres = (rng.random((num, 23)) < 0.15).astype("int8")
    genres[:, 0] = 1 - genres[:, 1]  # at least one genre per movie
    with h5py.File(path, "w") as f:
        if "features" not in missing:
            f["features"] = (
                rng.normal(size=(num, 300)) + genres[:, :1]
            ).astype("float32")
        if "vgg_features" not in missing:
            f["vgg_features"] = (
                rng.normal(size=(num, 4096)) + genres[:, :1]
            ).astype("float32")
        if "genres" not in missing:
            f["genres"] = genres
        f["imdb_ids"] = np.array([f"tt{i:07d}" for i in range(num)], "S9")
        if external_images:
            f.create_dataset(
                "images",
                shape=(num, 3, 16, 16),
                dtype="uint8",
                external=[(str(path) + ".images-not-there", 0, 3 * 256 * num)],
            )
    return genres
