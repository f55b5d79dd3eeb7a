"""Hateful Memes (Kiela et al. 2020): about 10,000 memes, each an image
and the text written on it, labeled hateful (1) or not (0); the metric is
AUROC.

Expected layout (Facebook AI's release; not downloadable from here):
`img/<id>.png` and one JSON object per line in `train.jsonl`,
`dev_seen.jsonl`, `test_seen.jsonl` (and `dev_unseen.jsonl`,
`test_unseen.jsonl` when present): `{"id", "img", "text", "label"}`, `img`
relative to the folder (`"img/01235.png"`). Phase 1's `test.jsonl` has no
`label`: it can be predicted on, never evaluated.

Paper (Robult, Table 2, 5 % labels), AUROC: see docs/recipes.md.
"""

import json
import os

from keras_robult.data.image_text_records import ImageTextRecords
from keras_robult.data.splits import train_test_split

LABELED_SPLITS = ("dev_seen", "test_seen", "dev_unseen", "test_unseen")
CLASSES = ("not hateful", "hateful")


def read_jsonl(path, require_label=True):
    """`ImageTextRecords` of one Hateful Memes `.jsonl` file.

    Args:
        path: the file.
        require_label: bool; False reads an unlabeled file (phase 1's
            `test.jsonl`) for prediction, every record unlabeled.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    root = os.path.dirname(os.path.abspath(path))
    ids, images, texts, labels = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}, line {line}: not JSON ({error.msg})."
                ) from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {line}: not a JSON object.")
            needed = ("id", "img", "text") + (
                ("label",) if require_label else ()
            )
            absent = [key for key in needed if key not in row]
            if absent:
                raise ValueError(
                    f"{path}, line {line}: no {', '.join(absent)}; each line "
                    'is {"id", "img", "text", "label"}.'
                )
            if require_label and row["label"] not in (0, 1):
                raise ValueError(
                    f"{path}, line {line}: label {row['label']!r}; Hateful "
                    "Memes labels are 0 (not hateful) or 1 (hateful)."
                )
            ids.append(row["id"])
            image = str(row["img"] or "")
            images.append(os.path.join(root, image) if image else "")
            texts.append(str(row["text"] or ""))
            labels.append(int(row["label"]) if require_label else 0)
    if not ids:
        raise ValueError(f"{path}: no records.")
    return ImageTextRecords(
        ids,
        images,
        texts,
        labels if require_label else None,
        CLASSES,
    )


def load_records(
    data_dir, test_split="test_seen", validation_fraction=0.1, seed=0
):
    """Loads Hateful Memes' records: train, validation and test.

    Args:
        data_dir: the folder holding the `.jsonl` files and `img/`.
        test_split: the labeled file that serves as test, one of
            `dev_seen`, `test_seen`, `dev_unseen`, `test_unseen`
            (recorded in the results by the recipe).
        validation_fraction: when `test_split` is a dev file, the share of
            train set aside for validation (stratified, `seed`); otherwise
            the matching dev file (`dev_seen` for `test_seen`) validates.
        seed: int.

    Returns:
        dict `"train"`, `"valid"`, `"test"` -> `ImageTextRecords`.
    """
    if test_split == "test":
        raise ValueError(
            "test.jsonl (phase 1) has no labels, so it cannot be the "
            "evaluation split; use test_split='dev_seen' or 'test_seen' "
            "(phase 2, labeled). read_jsonl(path, require_label=False) "
            "reads it for prediction."
        )
    if test_split not in LABELED_SPLITS:
        raise ValueError(
            f"Unknown test split {test_split!r}; choose one of "
            f"{list(LABELED_SPLITS)}."
        )
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"No such directory: {data_dir}")
    path = os.path.join(data_dir, f"{test_split}.jsonl")
    if not os.path.exists(path):
        present = sorted(
            f for f in os.listdir(data_dir) if f.endswith(".jsonl")
        )
        raise FileNotFoundError(
            f"No such file: {path} (the folder holds {present})."
        )
    train = read_jsonl(os.path.join(data_dir, "train.jsonl"))
    test = read_jsonl(path)
    dev = test_split.replace("test", "dev")
    if dev != test_split and os.path.exists(
        os.path.join(data_dir, f"{dev}.jsonl")
    ):
        valid = read_jsonl(os.path.join(data_dir, f"{dev}.jsonl"))
    else:
        keep, held = train_test_split(
            train.labels, validation_fraction, seed=seed
        )
        train, valid = train.subset(keep), train.subset(held)
    return {"train": train, "valid": valid, "test": test}
