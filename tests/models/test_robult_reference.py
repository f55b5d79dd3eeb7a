"""The whole forward pass against an independent NumPy implementation.

Run under each backend, this pins every backend to the same numbers: the
prediction rule, the branch wiring of DESIGN.md section 2 and the layers.
"""

import numpy as np

import keras_robult
from keras_robult import encoders, tasks
from tests.conftest import make_multimodal, to_numpy


def w(variable):
    return np.asarray(to_numpy(variable), "float64")


def dense(x, layer):
    return x @ w(layer.kernel) + w(layer.bias)


def layer_norm(x, layer, eps):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w(layer.gamma) + w(layer.beta)


def mlp_encoder(x, encoder):
    for layer in encoder.hidden_layers:
        if hasattr(layer, "gamma"):
            x = layer_norm(x, layer, layer.epsilon)
        else:
            x = np.maximum(dense(x, layer), 0)
    return dense(x, encoder.output_layer)


def modality_mlp(x, heads):
    k0, b0, k1, b1 = [w(v) for v in heads.weights]
    hidden = np.maximum(np.einsum("bmi,mio->bmo", x, k0) + b0, 0)
    return np.einsum("bmi,mio->bmo", hidden, k1) + b1


def fusion(latents, mask, layer):
    tokens = np.einsum("bmi,mio->bmo", latents, w(layer.token_kernel))
    tokens = tokens + w(layer.token_bias)
    # keras.ops.nn.gelu defaults to the tanh approximation.
    tokens = (
        0.5
        * tokens
        * (1 + np.tanh(np.sqrt(2 / np.pi) * (tokens + 0.044715 * tokens**3)))
    )
    scores = np.tanh(dense(tokens, layer.score_hidden)) @ w(
        layer.score_output.kernel
    )
    scores = np.where(mask > 0, scores[..., 0], -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    x = np.einsum("bm,bmd->bd", weights, tokens)
    for hidden in layer.output_mlp:
        x = np.maximum(dense(x, hidden), 0)
    return dense(x, layer.output_layer)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_forward_pass_matches_numpy():
    model = keras_robult.Robult(
        {f"m{i}": encoders.MLPEncoder(8, hidden_units=(8,)) for i in range(3)},
        tasks.Classification(4),
        latent_dim=8,
        redundant_dim=5,
        unique_dim=3,
        head_units=6,
    )
    x, _ = make_multimodal(num_samples=7, num_classes=4)
    x["modality_mask"] = np.array(
        [
            [1, 1, 1],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [1, 1, 0],
            [0, 1, 1],
            [1, 1, 1],
        ],
        "float32",
    )
    out = to_numpy(model(x))
    mask = x["modality_mask"].astype("float64")
    latents = np.stack(
        [
            mlp_encoder(
                x[f"m{i}"] * mask[:, i : i + 1], model.encoders[f"m{i}"]
            )
            for i in range(3)
        ],
        axis=1,
    )
    fused = fusion(latents, mask, model.fusion)
    shared_head = model.shared_head
    s = mlp_encoder(fused, shared_head)
    z = mlp_encoder(latents, shared_head)
    u = modality_mlp(latents, model.unique_heads)
    fused_p = softmax(dense(fused, model.task_head))
    branch_p = softmax(dense(np.concatenate([u, z], -1), model.task_head))
    late = (mask[..., None] * branch_p).sum(1) / mask.sum(1, keepdims=True)
    prediction = np.where(mask.all(1, keepdims=True), fused_p, late)
    reconstruction = modality_mlp(
        np.concatenate([u, z], -1), model.reconstruction_heads
    )
    for key, expected in [
        ("modality_latents", latents),
        ("fused_latent", fused),
        ("shared", s),
        ("redundant", z),
        ("unique", u),
        ("fused_prediction", fused_p),
        ("modality_predictions", branch_p),
        ("prediction", prediction),
        ("reconstruction", reconstruction),
    ]:
        np.testing.assert_allclose(out[key], expected, rtol=2e-4, atol=2e-5)
