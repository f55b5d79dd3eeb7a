"""A hand-written JAX training step of the benchmark's Robult, for scale.

Independent of the package: plain `jax.numpy`, one `jax.jit` of
`value_and_grad` and an Adam update, written from the formulas of the
design notes with the same sizes as `benchmarks/train_step.py`'s model
(per-modality MLP encoders with layer normalisation, attention-pooling
fusion, shared / unique / reconstruction heads, one task head; `L_sup` on
the fused and per-modality branches, both soft PU terms, `L_rec`). It is
the straightforward batched formulation, the yardstick the package's
`fit` step is compared with; its loss values are not compared (different
initialisation), only its time.

    python benchmarks/handwritten_step.py --batch-size 1024 --modalities 6
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from shapes import modality_dims

HIDDEN = 256


def dense(key, fan_in, fan_out, batch=()):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    kernel = jax.random.uniform(
        key, batch + (fan_in, fan_out), minval=-limit, maxval=limit
    )
    return {"w": kernel, "b": jnp.zeros(batch + (fan_out,))}


def init(key, dims, latent, classes):
    m, half = len(dims), latent // 2
    keys = iter(jax.random.split(key, 4 * m + 16))
    mlp = lambda i, o: {  # noqa: E731
        "h": dense(next(keys), i, HIDDEN),
        "ln": {"g": jnp.ones(HIDDEN), "b": jnp.zeros(HIDDEN)},
        "o": dense(next(keys), HIDDEN, o),
    }
    return {
        "enc": [mlp(d, latent) for d in dims],
        "tok": dense(next(keys), latent, latent, (m,)),
        "score_h": dense(next(keys), latent, latent),
        "score_o": dense(next(keys), latent, 1),
        "fuse_h": dense(next(keys), latent, latent),
        "fuse_o": dense(next(keys), latent, latent),
        "shared": mlp(latent, half),
        "unique_h": dense(next(keys), latent, latent, (m,)),
        "unique_o": dense(next(keys), latent, latent - half, (m,)),
        "rec_h": dense(next(keys), latent, latent, (m,)),
        "rec_o": dense(next(keys), latent, latent, (m,)),
        "task": dense(next(keys), latent, classes),
    }


def apply_mlp(p, x, normalize=True):
    h = jax.nn.relu(x @ p["h"]["w"] + p["h"]["b"])
    if normalize:
        mean = h.mean(-1, keepdims=True)
        var = h.var(-1, keepdims=True)
        h = (h - mean) * jax.lax.rsqrt(var + 1e-3) * p["ln"]["g"] + p["ln"]["b"]
    return h @ p["o"]["w"] + p["o"]["b"]


def per_modality(p_h, p_o, x):  # x: (B, M, d)
    h = jax.nn.relu(jnp.einsum("bmi,mio->bmo", x, p_h["w"]) + p_h["b"])
    return jnp.einsum("bmi,mio->bmo", h, p_o["w"]) + p_o["b"]


def normalize(x):
    return x * jax.lax.rsqrt(jnp.maximum((x * x).sum(-1, keepdims=True), 1e-12))


def loss_fn(params, xs, mask, labels, labeled, classes, tau=1.0, sigma=0.3):
    latents = jnp.stack(
        [apply_mlp(p, x) for p, x in zip(params["enc"], xs)], axis=1
    )  # (B, M, d)
    tokens = jax.nn.gelu(
        jnp.einsum("bmi,mio->bmo", latents, params["tok"]["w"])
        + params["tok"]["b"]
    )
    h = jax.nn.relu(tokens @ params["score_h"]["w"] + params["score_h"]["b"])
    scores = (h @ params["score_o"]["w"] + params["score_o"]["b"])[..., 0]
    scores = jnp.where(mask > 0, scores, -1e9)
    pooled = jnp.einsum("bm,bmd->bd", jax.nn.softmax(scores, -1), tokens)
    fused = jax.nn.relu(pooled @ params["fuse_h"]["w"] + params["fuse_h"]["b"])
    fused = fused @ params["fuse_o"]["w"] + params["fuse_o"]["b"]

    shared = apply_mlp(params["shared"], fused, normalize=False)  # (B, dz)
    redundant = apply_mlp(params["shared"], latents, normalize=False)
    unique = per_modality(params["unique_h"], params["unique_o"], latents)
    fused_logits = fused @ params["task"]["w"] + params["task"]["b"]
    modality_logits = (
        jnp.concatenate([unique, redundant], -1) @ params["task"]["w"]
        + params["task"]["b"]
    )

    onehot = jax.nn.one_hot(labels, classes)
    logits = jnp.concatenate([fused_logits[:, None], modality_logits], 1)
    ce = -(jax.nn.log_softmax(logits) * onehot[:, None]).sum(-1)  # (B, M+1)
    available = jnp.concatenate([mask.max(-1, keepdims=True), mask], 1)
    weight = labeled[:, None] * available
    sup = (ce * weight).sum(0) / jnp.maximum(weight.sum(0), 1.0)
    loss_sup = sup.mean()

    # Soft PU: anchors S, keys Z^m, all modalities in one (M, B, B) tensor.
    probs = jax.lax.stop_gradient(jax.nn.softmax(fused_logits))
    soft = jnp.where(labeled[:, None] > 0, onehot, probs)
    q = soft @ soft.T
    same = onehot @ onehot.T
    b = labels.shape[0]
    eye = jnp.eye(b)
    both = labeled[:, None] * labeled[None, :]
    sim = jnp.einsum(
        "jd,mkd->mjk",
        normalize(shared),
        normalize(redundant.transpose(1, 0, 2)),
    )
    key = mask.T[:, None, :]
    anchor = mask.max(-1)[None, :, None]
    logits_pu = sim / tau
    log_norm = jax.nn.logsumexp(
        jnp.where(key > 0, logits_pu, -1e9), -1, keepdims=True
    )
    neg_log_v = log_norm - logits_pu
    pos = (eye + (1 - eye) * both * same) * key * anchor
    n_pos = pos.sum(-1)
    has_pos = (n_pos > 0).astype(jnp.float32)
    lb_anchor = (pos * neg_log_v).sum(-1) / jnp.maximum(n_pos, 1e-12)
    loss_lb = ((has_pos * lb_anchor).sum(-1) / has_pos.sum(-1)).mean()
    ref = (pos * sim).sum(-1, keepdims=True) / jnp.maximum(n_pos, 1e-12)[
        ..., None
    ]
    w = jax.lax.stop_gradient(jnp.exp(-((sim - ref) ** 2) / (2 * sigma**2)))
    cand = (1 - eye) * (1 - both) * key * anchor * q
    mass = cand.sum(-1)
    ulb_anchor = (cand * w * neg_log_v).sum(-1) / jnp.maximum(mass, 1e-12)
    valid = (mass > 0) * has_pos
    loss_ulb = (
        (valid * ulb_anchor).sum(-1) / jnp.maximum(valid.sum(-1), 1)
    ).mean()

    # L_rec: recover sg(H^m) from [g^m(sg H^m), sg Z^m].
    frozen = jax.lax.stop_gradient(latents)
    rec_in = jnp.concatenate(
        [
            per_modality(params["unique_h"], params["unique_o"], frozen),
            jax.lax.stop_gradient(redundant),
        ],
        -1,
    )
    rec = per_modality(params["rec_h"], params["rec_o"], rec_in)
    cos = (normalize(rec) * normalize(frozen)).sum(-1)
    loss_rec = ((1 - cos) * mask).sum() / jnp.maximum(mask.sum(), 1.0)
    return loss_lb + loss_ulb + loss_rec + loss_sup


def make_step(classes, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    grad_fn = jax.value_and_grad(loss_fn)

    @jax.jit
    def step(params, m, v, t, xs, mask, labels, labeled):
        loss, grads = grad_fn(params, xs, mask, labels, labeled, classes)
        t = t + 1
        m = jax.tree.map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
        scale = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        params = jax.tree.map(
            lambda p, a, c: p - scale * a / (jnp.sqrt(c) + eps), params, m, v
        )
        return params, m, v, t, loss

    return step


def run(batch_size, dims, latent=128, classes=10, steps=30, repeats=3):
    """`(compile_s, step_s)`: the first call, then the median over
    `repeats` of the mean step time of `steps` steps."""
    rng = np.random.default_rng(0)
    xs = [
        jnp.asarray(rng.normal(size=(batch_size, d)), jnp.float32) for d in dims
    ]
    mask = jnp.ones((batch_size, len(dims)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, classes, batch_size))
    labeled = jnp.asarray(rng.uniform(size=batch_size) < 0.05, jnp.float32)
    params = init(jax.random.PRNGKey(0), dims, latent, classes)
    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    t = jnp.zeros((), jnp.float32)
    step = make_step(classes)
    start = time.perf_counter()
    state = jax.block_until_ready(
        step(params, m, v, t, xs, mask, labels, labeled)
    )
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            state = step(*state[:4], xs, mask, labels, labeled)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - start) / steps)
    return compile_s, float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--modalities", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    compile_s, step_s = run(
        args.batch_size, modality_dims(args.modalities), steps=args.steps
    )
    print(json.dumps({"compile_s": compile_s, "step_ms": 1e3 * step_s}))


if __name__ == "__main__":
    main()
