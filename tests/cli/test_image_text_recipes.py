"""The image+text recipes end to end (`--smoke`) on files written in the
releases' layouts (real JPEG / PNG / CSV / JSONL / JSON), with small
randomly initialised keras-hub backbones saved as local presets (no
download)."""

import json
import os

import keras_hub
import pytest

from tests.cli.test_recipe import check_results, recipe
from tests.conftest import BACKEND, once
from tests.datasets.writers import (
    write_food101,
    write_hateful_memes,
    write_mmimdb_raw,
)
from tests.encoders.test_pooled_backbone import tiny_bert, tiny_resnet

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "best", "recipe"]
WORDS += ["meme", "a", "story", "it", "ends", ".", ","]


def save_tiny_presets(folder):
    """Local keras-hub presets of a tiny BERT (with its tokenizer) and a
    tiny ResNet, randomly initialised: `(text folder, image folder)`."""
    text, image = str(folder / "text"), str(folder / "image")
    tiny_bert().save_to_preset(text)
    keras_hub.models.BertTokenizer(vocabulary=WORDS).save_to_preset(text)
    tiny_resnet().save_to_preset(image)
    return text, image


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    return save_tiny_presets(tmp_path_factory.mktemp("presets"))


def run_smoke(name, data_dir, out, presets, *extra):
    text, image = presets
    return recipe(name)["run"](
        [
            "--data-dir",
            str(data_dir),
            "--smoke",
            "--seeds",
            "0",
            "--labeled-fraction",
            "0.3",
            "--batch-size",
            "16",
            "--quiet",
            "--methods",
            "robult",
            "--image-size",
            "16",
            "--sequence-length",
            "6",
            "--text-preset",
            text,
            "--image-preset",
            image,
            "--cache-dir",
            str(out) + "-cache",
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def food101_run(tmp_path_factory, presets):
    """One food101 smoke run, a corrupt training image among its files,
    with `--raw-models` under TensorFlow (string inputs need it):
    `(data folder, results folder)`."""
    folder = tmp_path_factory.mktemp("food101")
    write_food101(folder / "data", {"train": 8, "test": 3})
    bad = folder / "data" / "images" / "train" / "apple_pie"
    (bad / "apple_pie_1.jpg").write_bytes(b"\xff\xd8 not a JPEG")
    out = folder / "out"
    raw = ["--raw-models"] if BACKEND == "tensorflow" else []
    assert run_smoke("food101", folder / "data", out, presets, *raw) == 0
    return folder / "data", out


def test_food101_recipe_skips_and_counts_a_corrupt_image(food101_run):
    """All three backends: the backend-specific path (backbone features
    through the pipeline, training on them). That a second run reads the
    cache without calling a backbone is pinned in
    tests/experiments/test_backbone_features.py."""
    _, out = food101_run
    results = check_results(
        out,
        ["image", "text", "image+text"],
        ["accuracy", "f1_macro"],
        ["robult"],
    )
    assert results["skipped_images"] == {"train": 1, "valid": 0, "test": 0}
    assert results["classes"] == [
        "apple_pie",
        "baby_back_ribs",
        "caesar_salad",
    ]
    assert results["backbones"]["frozen"] is True
    assert len(os.listdir(str(out) + "-cache")) == 3  # one per split


@once
def test_hateful_memes_recipe_records_its_test_split(tmp_path, presets):
    write_hateful_memes(tmp_path, {"train": 24, "dev_seen": 8, "test_seen": 8})
    out = tmp_path / "out"
    assert run_smoke("hateful_memes", tmp_path, out, presets) == 0
    results = check_results(
        out,
        ["image", "text", "image+text"],
        ["auroc", "accuracy"],
        ["robult"],
    )
    assert results["test_split"] == "test_seen"
    # The missing-rate curve is of the primary metric, AUROC, and its AUC
    # row stands in the AUROC table only.
    (curve,) = results["missing_rate_curves"]
    assert curve["metric"] == "auroc" and len(curve["mean"]) == 10
    tables = (out / "results.md").read_text().split("| subset |")[1:]
    assert ["missing-rate AUC" in table for table in tables] == [True, False]
    assert (
        run_smoke(
            "hateful_memes",
            tmp_path,
            tmp_path / "o2",
            presets,
            "--test-split",
            "test",
        )
        == 2
    )


@once
def test_a_recipe_runs_the_literature_grid(tmp_path, presets):
    """`--grid literature` on an image+text recipe `--smoke`: every cell
    of the literature's table, AUROC first for Hateful Memes."""
    write_hateful_memes(tmp_path, {"train": 24, "dev_seen": 8, "test_seen": 10})
    out = tmp_path / "grid"
    code = run_smoke(
        "hateful_memes", tmp_path, out, presets, "--grid", "literature"
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    cells = [
        (e["train"], e["test"])
        for e in results["missing_type"]
        if e["metric"] == "auroc"
    ]
    assert cells == [
        ("image:0.7", "image:0.7"),
        ("text:0.7", "text:0.7"),
        ("both:0.7", "image:0.7"),
        ("both:0.7", "text:0.7"),
        ("both:0.7", "both:0.7"),
    ]
    # 10 test samples: floor(7) incomplete, 3 lose the image, 4 the text.
    splits = json.loads(
        (out / "train-both-0.7" / "labeled_indices.json").read_text()
    )["seed_0"]
    mask = splits["test_modality_masks"]["both:0.7"]
    assert sorted(map(tuple, mask)).count((0, 1)) == 3
    assert sorted(map(tuple, mask)).count((1, 0)) == 4
    table = (out / "results.md").read_text()
    assert table.startswith("auroc under the missing-type protocol")
    assert "| both:0.7 | text:0.7 |" in table


@once
def test_mmimdb_raw_recipe_trains_the_backbones_with_finetune(
    tmp_path, presets
):
    """Multi-label, end to end: every method's backbones trained
    (tests/experiments/test_finetune.py pins what moves and the
    predictions on all three backends)."""
    import keras

    write_mmimdb_raw(tmp_path, {"train": 24, "dev": 8, "test": 8})
    out = tmp_path / "out"
    assert (
        run_smoke(
            "mmimdb",
            tmp_path,
            out,
            presets,
            "--raw",
            "--finetune",
            "--finetune-learning-rate",
            "0.001",
            "--modality-dropout",
            "0.3",
            "--raw-models",
            "--methods",
            "robult",
            "unimodal",
        )
        == 0
    )
    results = check_results(
        out,
        ["image", "text", "image+text"],
        ["f1_macro", "f1_micro"],
        ["robult", "unimodal"],
    )
    assert results["task"] == "multilabel"
    assert results["backbones"]["frozen"] is False
    assert results["backbones"]["learning_rate"] == 0.001
    assert results["modality_dropout"] == 0.3
    with open(out / "run_config.json") as handle:
        assert json.load(handle)["extra"]["raw"] is True
    model = keras.saving.load_model(out / "models" / "robult-seed0.keras")
    assert model.encoders["image"].input_shape == (None, 16, 16, 3)
    assert model.encoders["text"].input_shape == (None, 6)
    # With its tokenizer in front: strings in (served under TensorFlow).
    for method in ("robult", "unimodal"):
        assert (out / "models" / f"{method}-seed0-raw.keras").exists()


def test_a_missing_preset_is_one_line(tmp_path, presets, capsys):
    write_food101(tmp_path / "data", {"train": 2, "test": 1})
    code = run_smoke(
        "food101",
        tmp_path / "data",
        tmp_path / "out",
        (str(tmp_path / "no-text-preset"), presets[1]),
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "food101 recipe: error: Could not load the text preset" in err


def test_a_sequence_longer_than_the_backbone_is_refused(
    tmp_path, presets, capsys
):
    write_food101(tmp_path / "data", {"train": 2, "test": 1})
    code = run_smoke(
        "food101",
        tmp_path / "data",
        tmp_path / "out",
        presets,
        "--sequence-length",
        "7",
    )
    assert code == 2
    assert "--sequence-length 7 is longer than the text backbone takes (6" in (
        capsys.readouterr().err
    )


@once
def test_robult_train_on_a_users_records_file(
    tmp_path, presets, capsys, monkeypatch
):
    """`robult train --data records.csv`: images relative to the file,
    empty cells as missing modalities, class names, a corrupt image
    skipped and counted, the recipes' backbones and cache."""
    import keras
    import numpy as np

    from keras_robult import cli
    from tests.datasets.writers import write_image

    rng = np.random.default_rng(0)
    lines = ["photo,caption,kind"]
    for index in range(36):
        kind = ("cat", "dog", "owl")[index % 3]
        image = f"pics/{index}.png" if index % 4 != 1 else ""
        write_image(str(tmp_path / f"pics/{index}.png"), rng)
        text = f"a {kind} story" if index % 6 != 2 else ""
        lines.append(f"{image},{text},{kind}")
    (tmp_path / "pics" / "3.png").write_bytes(b"broken")
    path = tmp_path / "records.csv"
    path.write_text("\n".join(lines) + "\n")
    text, image = presets
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    argv = ["train", "--data", str(path), "--methods", "robult"]
    argv += ["--epochs", "1", "--seeds", "0", "--labeled-fraction", "0.5"]
    argv += ["--batch-size", "16", "--quiet", "--out", str(tmp_path / "o")]
    argv += ["--image-column", "photo", "--text-column", "caption"]
    argv += ["--label-column", "kind", "--text-preset", text]
    argv += ["--image-preset", image, "--image-size", "16"]
    argv += ["--sequence-length", "6", "--cache-dir", str(tmp_path / "c")]
    assert cli.main(argv) == 0, capsys.readouterr().err
    with open(tmp_path / "o" / "results.json") as handle:
        results = json.load(handle)
    assert results["classes"] == ["cat", "dog", "owl"]
    assert results["skipped_images"] == 1
    assert {"+".join(r["subset"]) for r in results["results"]} == {
        "image",
        "text",
        "image+text",
    }
    # `evaluate` reads the same records file (the backbones' cached
    # features) and reproduces the run's numbers on every labeled record
    # when the run's split is the whole file's test split.
    model = str(tmp_path / "o" / "models" / "robult-seed0.keras")
    evaluate = ["evaluate", "--model", model, "--data", str(path)]
    evaluate += argv[argv.index("--image-column") :]
    evaluate += ["--out", str(tmp_path / "e")]
    assert cli.main(evaluate) == 0, capsys.readouterr().err
    with open(tmp_path / "e" / "results.json") as handle:
        evaluated = json.load(handle)
    assert evaluated["model"] == "robult-seed0.keras"
    assert {"+".join(r["subset"]) for r in evaluated["results"]} == {
        "image",
        "text",
        "image+text",
    }
    # Genres as `|`-separated names: a multi-label task over them.
    genres = ["", "drama|comedy", "comedy", "war|drama"]
    lines = ["photo,caption,kind"] + [
        f"pics/{i}.png,story {i},{genres[i % 4]}" for i in range(36)
    ]
    path.write_text("\n".join(lines) + "\n")
    argv[argv.index("--out") + 1] = str(tmp_path / "o2")
    assert cli.main(argv + ["--task", "multilabel"]) == 0
    with open(tmp_path / "o2" / "results.json") as handle:
        results = json.load(handle)
    assert results["task"] == "multilabel"
    assert results["classes"] == ["comedy", "drama", "war"]
    # End to end, with the models that take raw images and strings.
    argv[argv.index("--out") + 1] = str(tmp_path / "o3")
    argv += ["--task", "multilabel", "--finetune", "--raw-models"]
    assert cli.main(argv) == 0
    with open(tmp_path / "o3" / "results.json") as handle:
        results = json.load(handle)
    assert results["backbones"]["frozen"] is False
    assert results["classes"] == ["comedy", "drama", "war"]
    assert (tmp_path / "o3" / "models" / "robult-seed0-raw.keras").exists()
    model = keras.saving.load_model(
        tmp_path / "o3" / "models" / "robult-seed0.keras"
    )
    assert model.encoders["image"].input_shape == (None, 16, 16, 3)


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="string inputs (a tokenizer inside the model) need TensorFlow",
)
def test_a_recipe_model_serves_raw_images_and_strings(
    tmp_path, presets, food101_run
):
    """The model trained on cached features, assembled with its backbones
    and tokenizer: raw images + strings give the cached path's
    predictions, in Keras, after a .keras round trip, and from the
    exported SavedModel."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_robult.backbones import (
        BackboneConfig,
        load_backbones,
        raw_input_model,
    )
    from keras_robult.data.image_text_pipeline import decode_image
    from keras_robult.datasets import food101
    from keras_robult.export import export_saved_model

    data, out = food101_run  # trained with --raw-models
    model = keras.saving.load_model(out / "models" / "robult-seed0.keras")
    test = food101.load_records(str(data))["test"]
    backbones = load_backbones(
        BackboneConfig(
            text_preset=presets[0],
            image_preset=presets[1],
            image_size=16,
            sequence_length=6,
        )
    )
    image, text = backbones.image_encoder, backbones.text_encoder
    tokenizer = backbones.tokenizer
    from keras_robult.backbones.features import compute_features

    features = compute_features(test, image, text, tokenizer, (16, 16), 6)
    mask = np.ones((len(test), 2), "float32")
    mask[0, 0] = 0.0  # no image
    mask[1, 1] = 0.0  # no text
    cached = model.predict(
        {
            "image": features["image"] * mask[:, :1],
            "text": features["text"] * mask[:, 1:],
            "modality_mask": mask,
        },
        verbose=0,
    )["prediction"]
    raw = raw_input_model(model, image, text, tokenizer, (16, 16), 6)
    written = keras.saving.load_model(out / "models" / "robult-seed0-raw.keras")
    images = np.stack(
        [decode_image(path, (16, 16)).numpy() for path in test.image_paths]
    )
    images[0] = 0.0
    texts = np.asarray([t if i != 1 else "" for i, t in enumerate(test.texts)])
    inputs = {"image": images, "text": texts, "modality_mask": mask}
    served = raw.predict(inputs, verbose=0)["prediction"]
    np.testing.assert_allclose(served, cached, atol=1e-5)
    # What --raw-models wrote is the same model.
    np.testing.assert_allclose(
        written.predict(inputs, verbose=0)["prediction"], cached, atol=1e-5
    )
    path = str(tmp_path / "raw.keras")
    raw.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(inputs, verbose=0)["prediction"], cached, atol=1e-5
    )
    export_saved_model(raw, str(tmp_path / "saved"))
    signature = tf.saved_model.load(str(tmp_path / "saved")).signatures[
        "serving_default"
    ]
    outputs = signature(
        image=tf.constant(images),
        text=tf.constant(texts),
        modality_mask=tf.constant(mask),
    )
    np.testing.assert_allclose(outputs["prediction"], cached, atol=1e-5)
    # Encoded files as the client has them (an empty string: no image).
    contents = [b""] + [open(p, "rb").read() for p in test.image_paths[1:]]
    by_bytes = tf.saved_model.load(str(tmp_path / "saved")).signatures[
        "serve_image_bytes"
    ](
        image=tf.constant(contents),
        text=tf.constant(texts),
        modality_mask=tf.constant(mask),
    )
    np.testing.assert_allclose(by_bytes["prediction"], cached, atol=1e-5)
    # A file that does not decode is a missing image for its sample only.
    contents[2] = b"\xff\xd8 not a jpeg"
    broken = tf.saved_model.load(str(tmp_path / "saved")).signatures[
        "serve_image_bytes"
    ](
        image=tf.constant(contents),
        text=tf.constant(texts),
        modality_mask=tf.constant(mask),
    )
    without = mask.copy()
    without[2, 0] = 0.0
    expected = model.predict(
        {
            "image": features["image"] * without[:, :1],
            "text": features["text"] * without[:, 1:],
            "modality_mask": without,
        },
        verbose=0,
    )["prediction"]
    np.testing.assert_allclose(broken["prediction"], expected, atol=1e-5)
    np.testing.assert_array_equal(broken["num_modalities"], without.sum(1))
    # A fresh process loads it after `import tensorflow_text`.
    import subprocess
    import sys

    load = (
        "import tensorflow as tf, tensorflow_text; "
        f"s = tf.saved_model.load({str(tmp_path / 'saved')!r}); "
        "print(sorted(s.signatures))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "serve_image_bytes" in loaded.stdout
