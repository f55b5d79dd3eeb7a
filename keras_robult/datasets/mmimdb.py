"""MM-IMDb (Arevalo et al. 2017): 25,959 movies, 23 genres (multi-label),
plot text and poster image.

Expected file (not downloadable from here; the authors' release,
github.com/johnarevalo/gmu-mmimdb, "multimodal_imdb.hdf5", about 8 GB with
the raw images): an HDF5 file with

- `features` `(N, 300)`: averaged word2vec of the plot (text);
- `vgg_features` `(N, 4096)`: VGG-16 features of the poster (image);
- `genres` `(N, 23)`: 0/1 genre labels;
- `imdb_ids`, and `images` (raw posters, never read unless asked).

Official splits by index: 0:15552 train, 15552:18160 dev, 18160:end test.

The raw release (`load_records`): `split.json` with `train` / `dev` /
`test` lists of movie ids, and per movie `<id>.json` (`plot`, a list of
strings, joined into one text; `genres`, names) and `<id>.jpeg`, in a
`dataset/` folder beside `split.json` (or beside it directly). Labels are
the 23 genres of `GENRES`, in the order of the HDF5 release and the
papers that use it; the release's four rarest genres (Adult, News,
Reality-TV, Talk-Show) are dropped.

Paper (Robult, Table 2, 5 % labels), F1-macro: text 0.321, image 0.298,
full 0.332.
"""

import json
import os

import numpy as np

from keras_robult.data.image_text_records import ImageTextRecords

SPLITS = {"train": (0, 15552), "valid": (15552, 18160), "test": (18160, None)}
KEYS = {"text": "features", "image": "vgg_features"}
WIDTHS = {"features": 300, "vgg_features": 4096}
GENRES = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action",
    "Adventure", "Horror", "Documentary", "Mystery", "Sci-Fi", "Fantasy",
    "Family", "Biography", "War", "History", "Music", "Animation",
    "Musical", "Western", "Sport", "Short", "Film-Noir",
)  # fmt: skip
NUM_GENRES = len(GENRES)
RAW_SPLITS = {"train": "train", "valid": "dev", "test": "test"}


def load_data(path, splits=("train", "valid", "test"), with_images=False):
    """Loads MM-IMDb's official splits from `multimodal_imdb.hdf5`.

    Read with h5py, one split at a time: only the two feature datasets and
    the labels of the requested rows are read (never the 8 GB `images`,
    unless `with_images`).

    A file with fewer rows than the release (a subset you cut yourself, or
    a test file) is split by the same proportions (59.9 / 10.0 / 30.1 %).

    Args:
        path: the HDF5 file, or a directory holding `multimodal_imdb.hdf5`.
        splits: which splits to return, in order.
        with_images: bool, also return the raw `images` rows as modality
            `"poster"` (uint8).

    Returns:
        A tuple with one `(x, y)` per split: `x` a dict `text` -> float32
        `(N, 300)`, `image` -> float32 `(N, 4096)`; `y` int32 `(N, 23)`.
    """
    import h5py  # the HDF5 release only

    if os.path.isdir(path):
        path = os.path.join(path, "multimodal_imdb.hdf5")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such dataset file: {path}")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(
            f"Unknown split(s) {unknown}; choose from {list(SPLITS)}."
        )
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"{path} is not a readable HDF5 file (truncated or corrupt: "
            f"{error})."
        ) from error
    with f:
        needed = ["genres", *KEYS.values()] + (
            ["images"] if with_images else []
        )
        missing = [k for k in needed if k not in f]
        if missing:
            raise ValueError(
                f"{path}: missing dataset(s) {missing}; MM-IMDb's HDF5 has "
                f"'features' (N, 300), 'vgg_features' (N, 4096), 'genres' "
                f"(N, {NUM_GENRES}) (found {sorted(f.keys())})."
            )
        total = f["genres"].shape[0]
        if f["genres"].shape[1:] != (NUM_GENRES,):
            raise ValueError(
                f"{path}: 'genres' has shape {f['genres'].shape}; expected "
                f"(N, {NUM_GENRES})."
            )
        for key, width in WIDTHS.items():
            if f[key].shape != (total, width):
                raise ValueError(
                    f"{path}: '{key}' has shape {f[key].shape}; expected "
                    f"({total}, {width}) (one row per 'genres' row)."
                )
        if total <= SPLITS["test"][0]:
            # Smaller files (tests, subsets) keep the split proportions.
            scale = total / 25959
            bounds = {
                "train": (0, int(15552 * scale)),
                "valid": (int(15552 * scale), int(18160 * scale)),
                "test": (int(18160 * scale), None),
            }
        else:
            bounds = SPLITS
        result = []
        for split in splits:
            start, stop = bounds[split]
            rows = slice(start, stop)
            try:
                x = {
                    name: np.asarray(f[key][rows], "float32")
                    for name, key in KEYS.items()
                }
                if with_images:
                    x["poster"] = np.asarray(f["images"][rows])
                y = np.asarray(f["genres"][rows]).astype("int32")
            except OSError as error:
                raise ValueError(
                    f"{path}: reading split '{split}' failed (truncated "
                    f"file?): {error}"
                ) from error
            for name, values in x.items():
                if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                    raise ValueError(
                        f"{path}: '{KEYS.get(name, name)}' has NaN or inf in "
                        f"split '{split}'."
                    )
            result.append((x, y))
    return tuple(result)


def load_records(data_dir):
    """Loads the raw MM-IMDb release's records (poster paths, plots,
    genres) on its official splits.

    Args:
        data_dir: the folder holding `split.json` (and `dataset/`).

    Returns:
        dict `"train"`, `"valid"` (the release's `dev`), `"test"` ->
        `ImageTextRecords` with 0/1 labels `(N, 23)` over `GENRES`.
    """
    split_path = os.path.join(data_dir, "split.json")
    if not os.path.exists(split_path):
        raise FileNotFoundError(
            f"No such file: {split_path} (the raw MM-IMDb release lists "
            "its train / dev / test movie ids there)"
        )
    with open(split_path, encoding="utf-8") as handle:
        try:
            split_ids = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{split_path}: not JSON ({error.msg}).") from None
    absent = [s for s in RAW_SPLITS.values() if s not in split_ids]
    if absent:
        raise ValueError(f"{split_path}: no {absent} list of movie ids.")
    movies = os.path.join(data_dir, "dataset")
    if not os.path.isdir(movies):
        movies = data_dir
    lookup = {genre: index for index, genre in enumerate(GENRES)}
    records = {}
    for split, name in RAW_SPLITS.items():
        ids, images, texts, labels = [], [], [], []
        for movie in split_ids[name]:
            movie = str(movie)
            path = os.path.join(movies, f"{movie}.json")
            if not os.path.exists(path):
                raise FileNotFoundError(
                    f"No such file: {path} (movie {movie} of split "
                    f"'{name}' in {split_path})"
                )
            with open(path, encoding="utf-8") as handle:
                try:
                    meta = json.load(handle)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}: not JSON ({error.msg})."
                    ) from None
            if not isinstance(meta, dict) or "genres" not in meta:
                raise ValueError(f"{path}: no 'genres' list.")
            plot = meta.get("plot") or []
            if isinstance(plot, str):
                plot = [plot]
            row = np.zeros(NUM_GENRES, "int32")
            for genre in meta["genres"]:
                if genre in lookup:
                    row[lookup[genre]] = 1
            ids.append(movie)
            images.append(os.path.join(movies, f"{movie}.jpeg"))
            texts.append(" ".join(str(p).strip() for p in plot).strip())
            labels.append(row)
        if not ids:
            raise ValueError(f"{split_path}: the '{name}' list is empty.")
        records[split] = ImageTextRecords(
            ids, images, texts, np.stack(labels), GENRES
        )
    return records
