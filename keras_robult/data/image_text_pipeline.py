"""Streaming `tf.data` pipelines from `ImageTextRecords`: images read and
decoded in parallel from their files, texts tokenised inside the pipeline,
nothing but the records (paths and strings) held in memory."""

import numpy as np

from keras_robult.data.masking import check_rate, drop_modalities
from keras_robult.data.pipeline import epochs_of_draws
from keras_robult.utils.validation import MASK_KEY


def decode_image(path, image_size):
    """Graph op: the image file at `path` as float32 `(height, width, 3)`
    RGB in [0, 255], resized to `image_size` (JPEG, PNG, GIF's first frame,
    BMP; grey images become RGB)."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    return decode_image_bytes(tf.io.read_file(path), image_size)


def decode_image_bytes(contents, image_size):
    """Graph op: encoded image bytes (a JPEG / PNG / GIF / BMP file's
    contents) as `decode_image` returns them."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image = tf.image.resize(image, image_size)
    image.set_shape(tuple(image_size) + (3,))
    return image


def unreadable_images(records, image_size=(32, 32)):
    """Indices of the records whose image is named but cannot be read or
    decoded (absent, truncated beyond repair, not an image).

    One parallel decoding pass; the failures are dropped by
    `Dataset.ignore_errors` and found as the indices that did not come
    through, so a bad file is counted, never a crash.
    """
    import tensorflow as tf  # only where a TF pipeline or export runs

    rows = np.flatnonzero(records.image_paths != "")
    if rows.size == 0:
        return np.zeros(0, "int64")
    paths = records.image_paths[rows].astype(str)
    dataset = (
        tf.data.Dataset.from_tensor_slices((rows, paths))
        .map(
            # A value of the pixels, so that decoding is not optimised away.
            lambda index, path: (
                index,
                tf.reduce_max(decode_image(path, image_size)),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ignore_errors()
    )
    seen = {int(index) for index, _ in dataset.as_numpy_iterator()}
    return np.asarray(sorted(set(rows.tolist()) - seen), "int64")


def image_text_dataset(
    records,
    image_size=(224, 224),
    batch_size=32,
    tokenizer=None,
    sequence_length=None,
    training=False,
    seed=0,
    augmentation=None,
    drop_remainder=False,
    skip=None,
    with_index=False,
    modality_dropout=0.0,
):
    """A streaming `tf.data.Dataset` of `({"image", "text",
    "modality_mask"}, {"label", "is_labeled"})` batches from records.

    Images are read and decoded in parallel (`decode_image`) as the
    dataset is iterated; a sample without an image gets a zero image and
    mask 0 for it, a sample without text an empty text (zero token ids)
    and mask 0. In training the order is reshuffled each epoch with
    `seed` and `augmentation` (e.g. `keras.layers.RandomFlip`) applies to
    the images. A record whose image cannot be decoded would stop an
    epoch: pass the indices from `unreadable_images` as `skip` (the
    recipes do, and report the count); any file that breaks later (removed
    during the run) is dropped by `ignore_errors` instead of crashing.

    Args:
        records: `ImageTextRecords`.
        image_size: `(height, width)` after resizing.
        batch_size: int.
        tokenizer: optional keras-hub tokenizer (or any callable mapping a
            string tensor to token ids); without it `text` stays a string.
            A tokenizer with `cls_token_id` / `sep_token_id` (BERT family)
            gets them around each text, as its backbone was trained.
        sequence_length: pad / truncate the token ids to this length
            (required with a tokenizer: static shapes for XLA).
        training: bool: shuffle and augment.
        seed: int, the shuffle seed.
        augmentation: optional callable on one image, used in training
            only.
        drop_remainder: bool, every batch of `batch_size` samples.
        skip: optional record indices to leave out.
        with_index: bool, also yield each sample's record index in `y`
            (`"index"`): the records whose image could not be decoded are
            the indices that never come through.
        modality_dropout: float in [0, 1), training only: each present
            modality of a sample is dropped with this probability (mask 0,
            zero image / empty text; a dropped image is not even read),
            at least one present modality kept per sample, as
            `keras_robult.data.random_mask` does; new draws each epoch,
            reproducible from `seed`.

    Returns:
        A `tf.data.Dataset`.
    """
    import tensorflow as tf  # only where a TF pipeline or export runs

    if tokenizer is not None and not sequence_length:
        raise ValueError(
            "A tokenizer needs a sequence_length: token ids are padded or "
            "truncated to it so that every batch has one static shape."
        )
    check_rate(modality_dropout, "modality_dropout")
    columns = _columns(records, skip)
    dropping = training and modality_dropout > 0
    if training:
        dataset = _training_draws(columns, seed, dropping, modality_dropout)
    else:
        dataset = tf.data.Dataset.from_tensor_slices(columns)
    load = _loader(
        tuple(image_size),
        tokenizer,
        sequence_length,
        augmentation if training else None,
        dropping,
        with_index,
    )
    dataset = dataset.map(
        load,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,  # the same order for a seed, run after run
    ).ignore_errors()
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE
    )


def _columns(records, skip):
    """The records less `skip`, as the arrays the pipeline slices."""
    keep = np.ones(len(records), bool)
    if skip is not None and len(skip):
        keep[np.asarray(skip, "int64")] = False
    if not keep.any():
        raise ValueError("Every record is skipped: the dataset is empty.")
    indices = np.flatnonzero(keep)
    records = records.subset(indices)
    return {
        "path": records.image_paths.astype(str),
        "text": records.texts.astype(str),
        "mask": records.modality_mask(),
        "label": records.labels,
        "is_labeled": records.is_labeled.astype("float32"),
        "index": indices,
    }


def _training_draws(columns, seed, dropping, modality_dropout):
    """The shuffle and the modality dropout of `make_dataset`: each
    epoch's order and masks a stateless draw from `(seed, epoch)`."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    columns = tf.nest.map_structure(tf.constant, columns)

    def draw(order, uniform):
        element = {k: tf.gather(v, order) for k, v in columns.items()}
        if dropping:
            element["mask"] = drop_modalities(
                element["mask"], uniform, modality_dropout
            )
        return element

    return epochs_of_draws(len(columns["index"]), 2, seed).map(draw)


def _loader(size, tokenizer, sequence_length, augmentation, dropping, index):
    """The function of one element to one `(x, y)` sample: the image read
    and decoded (zeros when absent), augmented, the text tokenized."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    packer = token_packer(tokenizer, sequence_length)

    def load(element):
        image = tf.cond(
            element["mask"][0] > 0,
            lambda: decode_image(element["path"], size),
            lambda: tf.zeros(size + (3,), "float32"),
        )
        if augmentation is not None:
            image = augmentation(image)
        text = element["text"]
        if dropping:
            text = tf.where(element["mask"][1] > 0, text, "")
        if tokenizer is not None:
            ids = packer(tokenizer(text))
            ids.set_shape((sequence_length,))
            text = ids
        x = {"image": image, "text": text, MASK_KEY: element["mask"]}
        y = {"label": element["label"], "is_labeled": element["is_labeled"]}
        if index:
            y["index"] = element["index"]
        return x, y

    return load


def token_packer(tokenizer, sequence_length):
    """Truncates / pads token ids to `sequence_length` (pad id 0), with
    the tokenizer's start and end tokens around them when it has some."""
    if tokenizer is None:
        return None
    import keras_hub  # loads TensorFlow (seconds): text pipelines only

    start = getattr(tokenizer, "cls_token_id", None)
    end = getattr(tokenizer, "sep_token_id", None)
    return keras_hub.layers.StartEndPacker(
        sequence_length,
        start_value=start,
        end_value=end,
        pad_value=0,
        return_padding_mask=False,
    )
