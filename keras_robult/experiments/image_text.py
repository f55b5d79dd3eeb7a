"""Image+text records in the protocol: their splits as cached backbone
features (or, fine-tuning, as record rows), and the raw-input models
written after a run."""

import os

import keras

from keras_robult.backbones.features import records_features, without_images
from keras_robult.backbones.presets import load_backbones
from keras_robult.backbones.surgery import raw_input_model
from keras_robult.data.image_text_records import ImageTextRecords
from keras_robult.data.splits import smoke_classes, smoke_rows
from keras_robult.data.standardization import fit_standardization
from keras_robult.experiments.finetune import FinetuneSource, index_arrays
from keras_robult.utils.atomic import save_model
from keras_robult.utils.validation import MASK_KEY


def feature_splits(config, records, dataset, smoke_samples=None, verbose=1):
    """The train / valid / test splits of `records` as cached backbone
    features; with `config.finetune`, as record rows for end-to-end
    training (`keras_robult.experiments.finetune`).

    Args:
        config: a `keras_robult.backbones.BackboneConfig`.
        records: dict `train`, `valid`, `test` -> `ImageTextRecords`.
        dataset: the name in the log lines.
        smoke_samples: when given, a smoke run's records: at most this
            many of each split, of the training split's `SMOKE_CLASSES`
            most frequent classes (single-label classification), taken in
            turn from each (`keras_robult.data.splits.smoke_rows`).
        verbose: 0 silent, else a line per split.

    Returns:
        dict: `splits` (three `(x, y)` with `x` = `image`, `text`,
        `modality_mask`), `extra` (the unreadable images skipped per split
        and the backbone settings, for `results.json`), `backbones` (the
        loaded `Backbones`) and, when fine-tuning, `finetune` (the
        `FinetuneSource`).
    """
    backbones = load_backbones(config)
    splits, skipped, kept = [], {}, []
    classes = smoke_classes(records["train"].labels) if smoke_samples else None
    for name in ("train", "valid", "test"):
        part = records[name]
        if smoke_samples:
            part = part.subset(
                smoke_rows(part.labels, smoke_samples, classes=classes)
            )
        x, features = records_features(
            config, part, backbones, f"{dataset} {name}", verbose
        )
        skipped[name] = int(len(features["unreadable"]))
        splits.append((x, features["labels"]))
        readable = without_images(part, features["unreadable"])
        kept.append(readable.subset(features["kept"]))
    extra = {"skipped_images": skipped, "backbones": config.summary()}
    loaded = {"splits": splits, "extra": extra, "backbones": backbones}
    if config.finetune:
        records = ImageTextRecords.concatenate(kept)
        loaded["finetune"] = finetune_source(config, records, splits[0][0])
        rows, offset = [], 0
        for x, labels in splits:
            rows.append(
                (index_arrays(len(labels), x[MASK_KEY], offset), labels)
            )
            offset += len(labels)
        loaded["splits"] = rows
    return loaded


def finetune_source(config, records, features):
    """The `FinetuneSource` of a `BackboneConfig` over `records`;
    `features` (frozen backbone features, `image` and `text`, with
    `modality_mask`) give the standardisation statistics and the pooled
    widths."""
    return FinetuneSource(
        records,
        config.text_preset,
        config.image_preset,
        config.image_shape,
        config.sequence_length,
        fit_standardization(features),
        {m: features[m].shape[1] for m in ("image", "text")},
        learning_rate=config.finetune_learning_rate,
        batch_size=config.feature_batch_size,
    )


def write_raw_models(config, backbones, out, verbose=1):
    """Next to each model a run saved (`models/<method>-seed<s>.keras`,
    trained on features or token ids), the model that takes raw images
    and strings (`...-raw.keras`, see `raw_input_model`); returns their
    paths.

    Args:
        config: the run's `BackboneConfig`.
        backbones: its loaded `Backbones`.
        out: the results folder.
        verbose: 0 silent, else a line per model.
    """
    image_encoder, text_encoder = (
        backbones.image_encoder,
        backbones.text_encoder,
    )
    if config.finetune:
        image_encoder = text_encoder = None  # inside the trained models
    folder = os.path.join(out, "models")
    paths = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".keras") or name.endswith("-raw.keras"):
            continue
        model = keras.saving.load_model(os.path.join(folder, name))
        raw = raw_input_model(
            model,
            image_encoder,
            text_encoder,
            backbones.tokenizer,
            config.image_shape,
            config.sequence_length,
        )
        path = os.path.join(folder, name[: -len(".keras")] + "-raw.keras")
        paths.append(save_model(raw, path))
        if verbose:
            print(f"raw-input model (images, strings) -> {path}", flush=True)
    return paths


def record_rows(features, records, x, config):
    """A records file's frozen features `x` as record rows for end-to-end
    training, with its `FinetuneSource`: `(x, source)`. The
    standardisation statistics come from the frozen features of every
    readable sample (no labels are read: as for a feature file)."""
    readable = without_images(records, features["unreadable"])
    source = finetune_source(config, readable.subset(features["kept"]), x)
    return index_arrays(len(features["kept"]), x[MASK_KEY]), source
