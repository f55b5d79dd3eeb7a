import keras
import numpy as np
import pytest

from keras_robult.baselines import ActionMAE
from keras_robult.encoders import MLPEncoder
from keras_robult.layers import TransformerBlock
from keras_robult.tasks import Classification

JIT = keras.backend.backend() != "torch"


def problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4)).astype("float32")
    y = ((z[:, 0] > 0).astype("int32") + (z[:, 1] > 0)).astype("int32")
    x = {
        name: (z @ rng.normal(size=(4, width))).astype("float32")
        for name, width in (("a", 6), ("b", 5), ("c", 3))
    }
    mask = (rng.uniform(size=(n, 3)) > 0.3).astype("float32")
    mask[mask.sum(axis=1) == 0, 0] = 1.0
    x["modality_mask"] = mask
    return x, y


def model(seed=1, **kwargs):
    kwargs.setdefault("num_heads", 4)
    return ActionMAE(
        {m: MLPEncoder(16) for m in "abc"},
        Classification(3),
        latent_dim=16,
        seed=seed,
        **kwargs,
    )


def whole_block_outputs(monkeypatch, positions):
    """Makes every `TransformerBlock` compute all its outputs; a block
    asked for a `query_range` returns its outputs at `positions` (a slice
    the test derives on its own): the reference of the models' shortcut."""
    call = TransformerBlock.call

    def whole(self, tokens, attention_mask=None, training=None, **kwargs):
        out = call(self, tokens, attention_mask, training)
        return out if kwargs.get("query_range") is None else out[:, positions]

    monkeypatch.setattr(TransformerBlock, "call", whole)


def test_training_keep_masks_keep_k_present_modalities():
    x, _ = problem()
    net = model()
    net(x)
    present = (x["modality_mask"] > 0.5).astype("float32")
    counts = set()
    for _ in range(40):
        keep = keras.ops.convert_to_numpy(
            net.keep_mask(keras.ops.convert_to_tensor(present), True)
        )
        assert (keep <= present).all()  # never a missing modality
        kept = keep.sum(axis=1)
        # One k per batch: every sample keeps min(k, its present count).
        k = kept[present.sum(axis=1) == 3].max()
        np.testing.assert_array_equal(kept, np.minimum(k, present.sum(axis=1)))
        counts.add(int(k))
    assert counts == {1, 2, 3}
    inference = net.keep_mask(keras.ops.convert_to_tensor(present), False)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(inference), present
    )


def test_reconstruction_loss_against_numpy():
    rng = np.random.default_rng(3)
    tokens = rng.normal(size=(4, 3, 8)).astype("float32")
    reconstruction = rng.normal(size=(4, 3, 8)).astype("float32")
    keep = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], "float32")
    present = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]], "float32")
    total, count = 0.0, 0
    for b in range(4):
        for m in range(3):
            if present[b, m] and not keep[b, m]:
                t = tokens[b, m].astype("float64")
                target = (t - t.mean()) / np.sqrt(t.var() + 1e-6)
                total += np.mean((reconstruction[b, m] - target) ** 2)
                count += 1
    tensors = [
        keras.ops.convert_to_tensor(v)
        for v in (tokens, reconstruction, keep, present)
    ]
    value = model().reconstruction_loss(*tensors)
    np.testing.assert_allclose(float(value), total / count, rtol=1e-5)
    nothing = model().reconstruction_loss(
        tokens, reconstruction, present, present
    )
    assert float(nothing) == 0.0


def test_heads_read_the_decoder_output_at_every_position():
    """As the released code: each position's head reads the decoder's
    output there (kept or dropped), never the raw token; the logits are
    their sum (NumPy from the model's own weights)."""
    x, _ = problem(n=16)
    net = model()
    out = net(x, training=False)
    reconstruction = keras.ops.convert_to_numpy(out["reconstruction"])
    tokens = keras.ops.convert_to_numpy(out["tokens"])
    expected = 0.0
    for i, head in enumerate(net.classifiers):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in head.weights)
        expected = expected + reconstruction[:, i] @ kernel + bias
    logits = keras.ops.convert_to_numpy(out["logits"])
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    # The kept tokens are not what the heads read.
    assert np.abs(reconstruction - tokens).max() > 1e-2


def test_trains_reconstructs_and_round_trips(tmp_path):
    x, y = problem()
    net = model()
    net.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=JIT)
    labels = {"label": y, "is_labeled": (np.arange(64) < 32).astype("float32")}
    history = net.fit(x, labels, epochs=80, batch_size=16, verbose=0)
    rec = history.history["loss_rec"]
    assert rec[-1] < 0.8 * rec[0]
    # Reconstructions of dropped tokens beat the mask token as a guess of
    # the standardised token (all present, one modality dropped).
    full = dict(x, modality_mask=np.ones((64, 3), "float32"))
    outputs = net(full, training=False)
    tokens = keras.ops.convert_to_numpy(outputs["tokens"])
    dropped = dict(full, modality_mask=np.tile([[1, 1, 0]], (64, 1)))
    rebuilt = keras.ops.convert_to_numpy(
        net(dropped, training=False)["reconstruction"]
    )[:, 2]
    target = keras.ops.convert_to_numpy(net.standardized(tokens))[:, 2]
    mask_token = keras.ops.convert_to_numpy(net.mask_token)
    ours = np.mean((rebuilt - target) ** 2)
    baseline = np.mean((mask_token[None] - target) ** 2)
    assert ours < 0.9 * baseline, (ours, baseline)
    predictions = net.predict(x, verbose=0)
    assert predictions["prediction"].shape == (64, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 5}, "multiple of `num_heads`"),
        ({"depth": 0}, "`depth` must be at least 1"),
        ({"label_smoothing": 1.0}, "`label_smoothing` must be in"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        model(**kwargs)


def test_the_last_decoder_block_computes_the_modality_positions_only(
    monkeypatch,
):
    """The last decoder block computes only the outputs the heads read
    (not the memory tokens'): the same outputs as the whole block."""
    x, _ = problem(n=16)
    net = model(depth=2, num_memory_tokens=3)
    fast = net(x, training=False)
    # The decoder reads the 3 memory tokens, then the 3 modality tokens.
    whole_block_outputs(monkeypatch, slice(3, 6))
    slow = net(x, training=False)
    for key in ("reconstruction", "logits", "prediction"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(fast[key]),
            keras.ops.convert_to_numpy(slow[key]),
            rtol=1e-5,
            atol=1e-6,
        )
    assert fast["reconstruction"].shape == (16, 3, 16)
