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


def write_image(path, rng, size=(12, 16), kind=None):
    """A real JPEG / PNG (by extension) of random colours, with Pillow."""
    import os

    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=kind)


FOOD_CLASSES = ("apple_pie", "baby_back_ribs", "caesar_salad")


def write_food101(root, per_class=None, seed=0):
    """UPMC Food-101's layout: `images/{train,test}/<class>/<file>.jpg`
    and `texts/{train,test}_titles.csv` (file, text, class; no header).
    Returns `{split: [(file, text, class)]}`."""
    import csv
    import os

    rng = np.random.default_rng(seed)
    per_class = per_class or {"train": 6, "test": 2}
    os.makedirs(os.path.join(root, "texts"), exist_ok=True)
    written = {}
    for split, count in per_class.items():
        rows = []
        for label in FOOD_CLASSES:
            for index in range(count):
                name = f"{label}_{index}.jpg"
                write_image(
                    os.path.join(root, "images", split, label, name), rng
                )
                rows.append((name, f"Best {label} recipe, no {index}", label))
        path = os.path.join(root, "texts", f"{split}_titles.csv")
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        written[split] = rows
    return written


def write_hateful_memes(root, sizes=None, seed=0, phase1_test=True):
    """Hateful Memes' layout: `img/<id>.png` and `train.jsonl`,
    `dev_seen.jsonl`, `test_seen.jsonl` (labeled) plus phase 1's
    unlabeled `test.jsonl`. Returns `{split: [row dict]}`."""
    import json
    import os

    rng = np.random.default_rng(seed)
    sizes = sizes or {"train": 16, "dev_seen": 6, "test_seen": 6}
    if phase1_test:
        sizes = dict(sizes, test=4)
    written, next_id = {}, 1000
    for split, count in sizes.items():
        rows = []
        for index in range(count):
            next_id += 1
            image = f"img/{next_id:05d}.png"
            write_image(os.path.join(root, image), rng)
            row = {"id": next_id, "img": image, "text": f"meme {next_id}"}
            if split != "test":
                row["label"] = index % 2
            rows.append(row)
        with open(os.path.join(root, f"{split}.jsonl"), "w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        written[split] = rows
    return written


def write_mmimdb_raw(root, sizes=None, seed=0):
    """The raw MM-IMDb release: `split.json` and `dataset/<id>.json`
    (`plot` a list of strings, `genres`) and `dataset/<id>.jpeg`. Genres
    include one outside the 23 (`News`), which the loader drops. Returns
    `{split: [(id, plot list, genres)]}`."""
    import json
    import os

    rng = np.random.default_rng(seed)
    sizes = sizes or {"train": 10, "dev": 4, "test": 4}
    names = ("Drama", "Comedy", "Film-Noir", "News", "Sci-Fi")
    folder = os.path.join(root, "dataset")
    os.makedirs(folder, exist_ok=True)
    split_ids, written, counter = {}, {}, 0
    for split, count in sizes.items():
        rows = []
        for _ in range(count):
            counter += 1
            movie = f"{counter:07d}"
            plot = [f"A story {counter}.", f"It ends {counter}."]
            genres = [names[counter % 5], names[(counter * 2 + 1) % 5]]
            with open(os.path.join(folder, f"{movie}.json"), "w") as handle:
                json.dump({"plot": plot, "genres": genres}, handle)
            write_image(os.path.join(folder, f"{movie}.jpeg"), rng, kind="JPEG")
            rows.append((movie, plot, genres))
        split_ids[split] = [row[0] for row in rows]
        written[split] = rows
    with open(os.path.join(root, "split.json"), "w") as handle:
        json.dump(split_ids, handle)
    return written
