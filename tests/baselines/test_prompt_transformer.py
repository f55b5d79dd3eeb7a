import keras
import numpy as np
import pytest

from keras_robult.baselines import PromptTransformer
from keras_robult.encoders import MLPEncoder
from keras_robult.tasks import Classification
from tests.baselines.test_action_mae import problem, whole_block_outputs

JIT = keras.backend.backend() != "torch"


def model(modalities="abc", **kwargs):
    kwargs.setdefault("num_heads", 4)
    kwargs.setdefault("depth", 2)
    kwargs.setdefault("prompt_length", 4)
    return PromptTransformer(
        {m: MLPEncoder(16) for m in modalities},
        Classification(3),
        latent_dim=16,
        seed=0,
        **kwargs,
    )


def numpy(value):
    return keras.ops.convert_to_numpy(value)


def test_each_presence_pattern_selects_its_own_prompt():
    x, _ = problem(8)
    net = model()
    net(x)
    assert net.prompts.shape == (7, 1, 4, 16)
    # Initialisation: zeros with one row of ones, at another row per set.
    rows = [
        tuple(np.flatnonzero(p[0].sum(axis=-1))) for p in numpy(net.prompts)
    ]
    assert all(len(r) == 1 for r in rows) and len(set(rows)) == 4
    present = np.array(
        [[1, 1, 1], [1, 0, 0], [0, 1, 1], [1, 0, 0], [1, 1, 1]], "float32"
    )
    prompts = numpy(net.sample_prompts(keras.ops.convert_to_tensor(present)))
    np.testing.assert_array_equal(prompts[1], prompts[3])  # same pattern
    np.testing.assert_array_equal(prompts[0], prompts[4])
    assert not np.array_equal(prompts[0], prompts[1])
    assert not np.array_equal(prompts[1], prompts[2])
    index = numpy(net.pattern_index(keras.ops.convert_to_tensor(present)))
    np.testing.assert_array_equal(index, [6, 0, 5, 0, 6])


def test_per_modality_prompts_grow_linearly():
    sizes = {}
    for count in (2, 3, 5, 6):
        names = "abcdef"[:count]
        net = model(names, prompt_mode=None if count > 4 else "per_modality")
        assert net.prompt_mode == "per_modality"
        x = {m: np.zeros((2, 4), "float32") for m in names}
        x["modality_mask"] = np.ones((2, count), "float32")
        net(x)
        sizes[count] = int(np.prod(net.prompts.shape))
    step = sizes[3] - sizes[2]
    assert sizes[5] - sizes[3] == 2 * step and sizes[6] - sizes[5] == step
    assert model("abcd").prompt_mode == "pattern"


def test_simulated_missingness_keeps_a_present_modality():
    net = model(missing_rate=0.5)
    x, _ = problem(256)
    net(x)
    present = (x["modality_mask"] > 0.5).astype("float32")
    seen = numpy(net.simulate_missing(keras.ops.convert_to_tensor(present)))
    assert (seen <= present).all() and (seen.sum(axis=1) >= 1).all()
    several = present.sum(axis=1) > 1
    changed = (seen != present).any(axis=1)
    assert 0.35 < changed[several].mean() < 0.65
    assert not changed[~several].any()


def test_trains_predicts_and_round_trips(tmp_path):
    x, y = problem()
    net = model()
    net.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=JIT)
    labels = {"label": y, "is_labeled": np.ones(64, "float32")}
    history = net.fit(x, labels, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    # Per-modality predictions (what the export serves) are the model's
    # predictions with that modality alone.
    single = numpy(net.modality_predictions(x))
    assert single.shape == (64, 3, 3)
    for index in range(3):
        alone = x["modality_mask"] * np.eye(3, dtype="float32")[index]
        alone_pred = net.predict({**x, "modality_mask": alone}, verbose=0)
        np.testing.assert_allclose(
            single[:, index], alone_pred["prediction"], atol=1e-5
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt_mode": "both"}, "`prompt_mode` must be"),
        ({"num_prompt_layers": 3}, "`num_prompt_layers` must be in"),
        ({"missing_rate": 1.0}, "`missing_rate` must be in"),
        ({"prompt_length": 0}, "`prompt_length` must be positive"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        model(**kwargs)


@pytest.mark.parametrize("num_prompt_layers", [1, 2])
def test_the_last_block_computes_the_cls_output_only(
    monkeypatch, num_prompt_layers
):
    """Only the CLS output (after every prompted block's prompts) reaches
    the pooler: the last block computes it alone, with the same values as
    the whole block (also when the last block is a prompted one)."""
    x, _ = problem(8)
    net = model(num_prompt_layers=num_prompt_layers)
    fast = numpy(net(x, training=False)["logits"])
    # Before the CLS token: 4 prompts per prompted block.
    first = 4 * num_prompt_layers
    whole_block_outputs(monkeypatch, slice(first, first + 1))
    slow = numpy(net(x, training=False)["logits"])
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
