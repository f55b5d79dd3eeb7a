import numpy as np
import pytest

from keras_robult.data import ImageTextRecords
from keras_robult.data.image_text_pipeline import (
    image_text_dataset,
    unreadable_images,
)
from keras_robult.datasets import food101, hateful_memes
from tests.datasets.writers import (
    write_food101,
    write_hateful_memes,
    write_image,
)


def test_bad_images_are_found_skipped_and_counted(tmp_path):
    write_food101(tmp_path, {"train": 4, "test": 1})
    train = food101.load_records(str(tmp_path), validation_fraction=0)["train"]
    # A corrupt JPEG and a file that is not there, among good ones.
    with open(train.image_paths[2], "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
    import os

    os.remove(train.image_paths[7])
    bad = unreadable_images(train)
    np.testing.assert_array_equal(bad, [2, 7])
    dataset = image_text_dataset(
        train, image_size=(8, 10), batch_size=5, skip=bad
    )
    seen_texts, count = [], 0
    for x, y in dataset:
        assert x["image"].shape[1:] == (8, 10, 3)
        assert x["modality_mask"].shape[1:] == (2,)
        count += x["image"].shape[0]
        seen_texts += [t.decode() for t in x["text"].numpy()]
    assert count == len(train) - 2
    expected = [t for i, t in enumerate(train.texts) if i not in (2, 7)]
    assert seen_texts == expected  # in order outside training
    # Without `skip`, the broken files are dropped instead of crashing.
    rows = sum(x["image"].shape[0] for x, _ in image_text_dataset(train))
    assert rows == len(train) - 2


def test_images_texts_masks_and_labels_by_value(tmp_path):
    import keras_hub
    import tensorflow as tf
    from PIL import Image

    written = write_hateful_memes(tmp_path, {"train": 4}, phase1_test=False)
    records = hateful_memes.read_jsonl(str(tmp_path / "train.jsonl"))
    # The second sample has no image, the third no text.
    records = ImageTextRecords(
        records.ids,
        [p if i != 1 else "" for i, p in enumerate(records.image_paths)],
        [t if i != 2 else "" for i, t in enumerate(records.texts)],
        records.labels,
        records.classes,
    )
    words = ["[PAD]", "[UNK]", "meme"] + [
        str(r["id"]) for r in written["train"]
    ]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=words)
    dataset = image_text_dataset(
        records,
        image_size=(6, 8),
        batch_size=4,
        tokenizer=tokenizer,
        sequence_length=5,
    )
    ((x, y),) = list(dataset)
    np.testing.assert_array_equal(
        x["modality_mask"], [[1, 1], [0, 1], [1, 0], [1, 1]]
    )
    np.testing.assert_array_equal(y["label"], records.labels)
    np.testing.assert_array_equal(y["is_labeled"], 1.0)
    # PNG is lossless: the pixels are the file's, resized bilinearly.
    pixels = np.asarray(Image.open(records.image_paths[0]), "float32")
    reference = tf.image.resize(pixels, (6, 8)).numpy()
    np.testing.assert_allclose(x["image"][0], reference, atol=1e-3)
    np.testing.assert_array_equal(x["image"][1], 0.0)
    # "meme <id>": two known words, then padding; no text: all padding.
    ids = x["text"].numpy()
    assert ids.shape == (4, 5) and ids.dtype == np.int32
    np.testing.assert_array_equal(ids[0], [2, 3, 0, 0, 0])
    np.testing.assert_array_equal(ids[2], 0)


def test_training_order_is_seeded_and_reshuffled(tmp_path):
    write_food101(tmp_path, {"train": 4, "test": 1})
    train = food101.load_records(str(tmp_path), validation_fraction=0)["train"]

    def order(seed):
        dataset = image_text_dataset(
            train, (4, 4), batch_size=12, training=True, seed=seed
        )
        return [
            [t.decode() for t in x["text"].numpy()]
            for _, (x, _) in zip(range(2), dataset.repeat())
        ]

    first, again = order(0), order(0)
    assert first == again  # seeded
    assert first[0] != first[1]  # a new order each epoch
    assert sorted(first[0]) == sorted(train.texts)


def test_modality_dropout_in_training(tmp_path):
    """Each present modality dropped at the rate (image: 0.5 - 0.25 / 2
    with one of two restored when both go), never a sample left with
    none, the dropped data blanked; new draws per epoch, seeded; nothing
    dropped outside training."""
    rng = np.random.default_rng(0)
    paths = []
    for index in range(4):
        paths.append(str(tmp_path / f"{index}.png"))
        write_image(paths[-1], rng, (6, 6))
    count = 240
    records = ImageTextRecords(
        [str(i) for i in range(count)],
        [paths[i % 4] if i % 10 else "" for i in range(count)],
        [f"text {i}" for i in range(count)],
        np.arange(count) % 2,
    )
    before = records.modality_mask()

    def epochs(seed, training=True, rate=0.5):
        dataset = image_text_dataset(
            records,
            (4, 4),
            batch_size=count,
            training=training,
            seed=seed,
            with_index=True,
            modality_dropout=rate,
        )
        out = []
        for _, (x, y) in zip(range(2), dataset.repeat()):
            order = np.argsort(y["index"].numpy())
            out.append({k: v.numpy()[order] for k, v in x.items()})
        return out

    first, second = epochs(0)
    for epoch in (first, second):
        mask = epoch["modality_mask"]
        assert (mask <= before).all() and (mask.sum(axis=1) >= 1).all()
        # Samples with a text only keep it.
        np.testing.assert_array_equal(mask[before[:, 0] == 0], [[0, 1]] * 24)
        both = before[:, 0] > 0
        for column in (0, 1):
            dropped = 1.0 - mask[both, column].mean()
            assert 0.25 < dropped < 0.5, (column, dropped)
        gone = mask[:, 0] == 0
        assert not epoch["image"][gone].any()
        assert epoch["image"][~gone].reshape(-1, 48).max(axis=1).min() > 0
        texts = epoch["text"]
        assert (texts[mask[:, 1] == 0] == b"").all()
        assert (texts[mask[:, 1] > 0] != b"").all()
    assert (first["modality_mask"] != second["modality_mask"]).any()
    again = epochs(0)[0]
    np.testing.assert_array_equal(
        again["modality_mask"], first["modality_mask"]
    )
    for x in epochs(0, training=False):
        np.testing.assert_array_equal(x["modality_mask"], before)
    with pytest.raises(ValueError, match="modality_dropout"):
        image_text_dataset(records, modality_dropout=1.0)


def test_arguments_are_checked(tmp_path):
    write_food101(tmp_path, {"train": 1, "test": 1})
    train = food101.load_records(str(tmp_path), validation_fraction=0)["train"]
    with pytest.raises(ValueError, match="needs a sequence_length"):
        image_text_dataset(train, tokenizer=str.split)
    with pytest.raises(ValueError, match="Every record is skipped"):
        image_text_dataset(train, skip=np.arange(len(train)))
