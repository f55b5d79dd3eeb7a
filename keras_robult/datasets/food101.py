"""UPMC Food-101 (Wang et al. 2015): about 90,000 recipe web pages of 101
food classes, each a photo (image) and the page's title (text).

Expected layout (the authors' release, "UPMC Food-101", published at
visiir.isir.upmc.fr; not downloadable from here):

- `images/{train,test}/<class>/<file>.jpg`;
- `texts/train_titles.csv`, `texts/test_titles.csv`: one row per image,
  `file name, text, class name`, no header.

The release has train and test splits; a validation split is carved from
train, stratified by class, with a seed. Classes are the sorted class
names (101 in the release). A row whose image file is absent keeps its
path: the streaming pipeline skips it and counts it.

Paper (Robult, Table 2, 5 % labels), accuracy: see docs/recipes.md.
"""

import csv
import os

from keras_robult.data.image_text_records import ImageTextRecords
from keras_robult.data.splits import train_test_split


def read_titles(path):
    """`[(line, file name, text, class name)]` of a `*_titles.csv`."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No such file: {path} (UPMC Food-101 keeps the titles in "
            "texts/train_titles.csv and texts/test_titles.csv)"
        )
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != 3:
                raise ValueError(
                    f"{path}, line {reader.line_num}: {len(row)} cells; a "
                    "row is 'file name, text, class name'."
                )
            name, text, label = (cell.strip() for cell in row)
            if not name or not label:
                raise ValueError(
                    f"{path}, line {reader.line_num}: empty file name or "
                    "class name."
                )
            rows.append((reader.line_num, name, text, label))
    if not rows:
        raise ValueError(f"{path}: no rows.")
    return rows


def load_records(data_dir, validation_fraction=0.1, seed=0):
    """Loads UPMC Food-101's records (paths, titles, classes).

    Args:
        data_dir: the folder holding `images/` and `texts/`.
        validation_fraction: share of the train split set aside for
            validation, stratified by class, drawn with `seed`; 0 for none.
        seed: int.

    Returns:
        dict `"train"`, `"valid"` (absent when `validation_fraction` is 0),
        `"test"` -> `ImageTextRecords` with class indices into the shared
        sorted `classes`.
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"No such directory: {data_dir}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(
            "validation_fraction must lie in [0, 1); received "
            f"{validation_fraction!r}."
        )
    rows = {
        split: read_titles(
            os.path.join(data_dir, "texts", f"{split}_titles.csv")
        )
        for split in ("train", "test")
    }
    classes = sorted({row[3] for split in rows.values() for row in split})
    lookup = {name: index for index, name in enumerate(classes)}
    records = {}
    for split, split_rows in rows.items():
        records[split] = ImageTextRecords(
            ids=[name for _, name, _, _ in split_rows],
            image_paths=[
                os.path.join(data_dir, "images", split, label, name)
                for _, name, _, label in split_rows
            ],
            texts=[text for _, _, text, _ in split_rows],
            labels=[lookup[label] for _, _, _, label in split_rows],
            classes=classes,
        )
    if validation_fraction > 0:
        train = records["train"]
        keep, valid = train_test_split(
            train.labels, validation_fraction, seed=seed
        )
        records = {
            "train": train.subset(keep),
            "valid": train.subset(valid),
            "test": records["test"],
        }
    return records
