"""File-level records of an image+text dataset: paths, texts, labels."""

import csv
import json
import os

import numpy as np

MODALITIES = ("image", "text")


class ImageTextRecords:
    """The samples of an image+text dataset as files and strings, never
    decoded pixels: what the dataset loaders return and the streaming
    pipeline reads.

    A missing image is an empty path, a missing text an empty string; the
    sample's `modality_mask()` row is then 0 for it. An unlabeled sample
    has `is_labeled` False (its label is a placeholder 0).

    Args:
        ids: sequence of N sample identifiers (str).
        image_paths: sequence of N image file paths ("" = no image).
        texts: sequence of N texts ("" = no text).
        labels: None (no labels at all), int `(N,)` class indices, or 0/1
            `(N, K)` for multi-label.
        classes: optional sequence of class (or label) names.
        is_labeled: optional bool `(N,)`; default: every sample labeled
            when `labels` is given, none otherwise.

    Example:

    ```python
    records = keras_robult.data.ImageTextRecords.from_file("memes.csv")
    records.modality_mask()  # (N, 2): image, text present
    ```
    """

    def __init__(
        self,
        ids,
        image_paths,
        texts,
        labels=None,
        classes=None,
        is_labeled=None,
    ):
        self.ids = np.asarray([str(i) for i in ids], dtype=object)
        self.image_paths = np.asarray(
            ["" if p is None else str(p) for p in image_paths], dtype=object
        )
        self.texts = np.asarray(
            ["" if t is None else str(t) for t in texts], dtype=object
        )
        num = len(self.ids)
        if labels is None:
            self.labels = np.zeros(num, "int32")
            default_labeled = False
        else:
            labels = np.asarray(labels)
            # Class indices / label vectors, or regression targets.
            self.labels = labels.astype(
                "float32" if labels.dtype.kind == "f" else "int32"
            )
            default_labeled = True
        self.classes = None if classes is None else tuple(classes)
        if is_labeled is None:
            is_labeled = np.full(num, default_labeled)
        self.is_labeled = np.asarray(is_labeled, bool)
        for name, values in (
            ("image_paths", self.image_paths),
            ("texts", self.texts),
            ("labels", self.labels),
            ("is_labeled", self.is_labeled),
        ):
            if len(values) != num:
                raise ValueError(
                    f"ImageTextRecords: {len(values)} {name} for {num} ids; "
                    "every field needs one entry per sample."
                )
        if num == 0:
            raise ValueError("ImageTextRecords: no sample (0 records).")

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        mask = self.modality_mask()
        return (
            f"ImageTextRecords({len(self)} samples, "
            f"{int(mask[:, 0].sum())} images, {int(mask[:, 1].sum())} texts, "
            f"{int(self.is_labeled.sum())} labeled)"
        )

    def modality_mask(self):
        """float32 `(N, 2)`: 1 where the sample has an image / a text."""
        return np.stack(
            [self.image_paths != "", self.texts != ""], axis=1
        ).astype("float32")

    def subset(self, indices):
        """The records at `indices` (an index array or a boolean mask)."""
        indices = np.asarray(indices)
        return ImageTextRecords(
            self.ids[indices],
            self.image_paths[indices],
            self.texts[indices],
            self.labels[indices],
            self.classes,
            self.is_labeled[indices],
        )

    @classmethod
    def concatenate(cls, parts):
        """One `ImageTextRecords` of several (of the same classes), in
        order."""

        def join(field):
            return np.concatenate([getattr(part, field) for part in parts])

        return cls(
            join("ids"),
            join("image_paths"),
            join("texts"),
            join("labels"),
            parts[0].classes,
            join("is_labeled"),
        )

    @classmethod
    def from_file(
        cls,
        path,
        image_column="image",
        text_column="text",
        label_column="label",
        id_column="id",
        task="classification",
    ):
        """Reads a user's `.csv` (with a header row) or `.jsonl` file.

        Image paths are relative to the file's folder (or absolute); an
        empty cell (or a null / absent key) is a missing modality for that
        sample, an empty label an unlabeled sample. Labels by `task`:
        `"classification"`: class names (sorted into `classes`) or integer
        class indices; `"multilabel"`: the sample's label names, separated
        by `|` in a CSV cell or a JSON list (`[]`: labeled, none applies),
        sorted into `classes`, labels a 0/1 matrix; `"regression"`:
        numbers.

        Raises:
            FileNotFoundError: no such file.
            ValueError: naming the file and line of a malformed row, a
                missing column, or a sample with neither image nor text.
        """
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such records file: {path}")
        rows = _read_rows(path)
        if not rows:
            raise ValueError(f"{path}: no records (the file is empty).")
        columns = (image_column, text_column, label_column)
        found = set().union(*(row.keys() for _, row in rows))
        absent = [c for c in columns if c not in found]
        if absent:
            unknown = sorted(found - set(columns) - {id_column})
            raise ValueError(
                f"{path}: no column "
                + ", ".join(repr(c) for c in absent)
                + f" (its columns: {', '.join(sorted(found))}"
                + (
                    f"; {', '.join(repr(c) for c in unknown)} not read"
                    if unknown
                    else ""
                )
                + "). Every records file has an image, a text and a label "
                "column (an empty cell is a missing modality or an unlabeled "
                "sample); name yours with `image_column` / `text_column` / "
                "`label_column`."
            )
        root = os.path.dirname(os.path.abspath(path))
        ids, images, texts, labels = [], [], [], []
        for line, row in rows:
            image = _cell(row.get(image_column))
            text = _cell(row.get(text_column))
            if not image and not text:
                raise ValueError(
                    f"{path}, line {line}: the sample has neither an image "
                    f"('{image_column}') nor a text ('{text_column}'); every "
                    "sample needs at least one modality."
                )
            ids.append(_cell(row.get(id_column)) or str(len(ids)))
            images.append(os.path.join(root, image) if image else "")
            texts.append(text)
            labels.append(_label_cell(row.get(label_column), task))
            if task == "regression" and labels[-1] != "":
                try:
                    labels[-1] = float(labels[-1])
                except ValueError:
                    raise ValueError(
                        f"{path}, line {line}: label {labels[-1]!r} is not "
                        "a number (a regression target)."
                    ) from None
                if not np.isfinite(labels[-1]):
                    raise ValueError(
                        f"{path}, line {line}: label {labels[-1]} is not a "
                        "finite number."
                    )
        labeled = np.asarray([label != "" for label in labels])
        if not labeled.any():
            return cls(ids, images, texts)
        if task == "regression":
            targets = [v if v != "" else 0.0 for v in labels]
            return cls(ids, images, texts, np.float32(targets), None, labeled)
        if task == "multilabel":
            classes = sorted({n for names in labels if names for n in names})
            matrix = np.zeros((len(labels), max(len(classes), 1)), "int32")
            lookup = {name: index for index, name in enumerate(classes)}
            for row, names in enumerate(labels):
                for name in names or ():
                    matrix[row, lookup[name]] = 1
            return cls(ids, images, texts, matrix, classes, labeled)
        values = [label for label in labels if label != ""]
        if all(_is_integer(v) for v in values):
            indices = [int(float(v)) if v != "" else 0 for v in labels]
            classes = None
        else:
            classes = sorted(set(values))
            lookup = {name: index for index, name in enumerate(classes)}
            indices = [lookup[v] if v != "" else 0 for v in labels]
        return cls(ids, images, texts, indices, classes, labeled)


def _read_rows(path):
    """`[(line number, dict)]` of a CSV (header row) or JSONL file."""
    rows = []
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}, line {line}: not a JSON object ({error.msg})."
                    ) from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}, line {line}: not a JSON object.")
                rows.append((line, row))
        return rows
    if not path.endswith(".csv"):
        raise ValueError(
            f"{path}: records are read from a .csv (with a header row) or a "
            ".jsonl file."
        )
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if None in row:
                raise ValueError(
                    f"{path}, line {reader.line_num}: more cells than the "
                    f"header's {len(reader.fieldnames)} columns."
                )
            rows.append((reader.line_num, row))
    return rows


def _label_cell(value, task):
    """A label cell: `""` when unlabeled; for multi-label tasks the list of
    label names (a JSON list, or `|`-separated in a CSV cell)."""
    if task not in ("classification", "multilabel", "regression"):
        raise ValueError(
            "`task` must be 'classification', 'multilabel' or 'regression'; "
            f"received {task!r}."
        )
    if task != "multilabel":
        return _cell(value)
    if isinstance(value, list):
        return [_cell(v) for v in value if _cell(v)]
    text = _cell(value)
    if not text:
        return ""
    return [name.strip() for name in text.split("|") if name.strip()]


def _cell(value):
    if value is None:
        return ""
    return str(value).strip()


def _is_integer(value):
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError, OverflowError):
        return False
