"""An independent NumPy implementation of Robult and GMC, written from
docs/concepts.md (the model, the tasks, the losses; GMC's paper for
GMC), in float64, loop by loop where the formula is a sum over pairs.

It reads the weights from the Keras layers and recomputes everything else:
the forward pass, the soft targets, the PU terms, the reconstruction term,
the supervised and self-training terms, and the total. The tests compare
it with what the model logs, so a term wired to the wrong tensor, mask,
target or hyper-parameter fails.
"""

import itertools

import numpy as np

from tests.conftest import to_numpy

# ------------------------------------------------------------------ layers


def w(variable):
    return np.asarray(to_numpy(variable), "float64")


def dense(x, layer):
    return x @ w(layer.kernel) + w(layer.bias)


def layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * w(layer.gamma) + w(
        layer.beta
    )


def relu(x):
    return np.maximum(x, 0.0)


def gelu_tanh(x):
    # keras.ops.nn.gelu defaults to the tanh approximation.
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def mlp_encoder(x, encoder):
    """`MLPEncoder` (relu hidden layers, optional LayerNorm, no dropout)."""
    for layer in encoder.hidden_layers:
        if hasattr(layer, "gamma"):
            x = layer_norm(x, layer)
        elif hasattr(layer, "kernel"):
            x = relu(dense(x, layer))
    return dense(x, encoder.output_layer)


def projection(x, layer):
    """`LatentProjection`: identity, or a linear map to `latent_dim`."""
    return x if layer.dense is None else dense(x, layer.dense)


def modality_mlp(x, heads):
    """`ModalityMLP`: modality `m` of `(B, M, F)` through its own MLP."""
    params = [w(v) for v in heads.weights]
    kernels, biases = params[0::2], params[1::2]
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        x = np.einsum("bmi,mio->bmo", x, kernel) + bias
        if i < len(kernels) - 1:
            x = relu(x)
    return x


def fusion_encoder(latents, mask, layer):
    """`FusionEncoder` with attention or concatenation pooling."""
    tokens = np.einsum("bmi,mio->bmo", latents, w(layer.token_kernel))
    tokens = gelu_tanh(tokens + w(layer.token_bias))
    present = mask > 0.5
    if layer.pooling == "concat":
        flags = present.astype("float64")[..., None]
        x = np.concatenate([tokens * flags, flags], -1)
        x = x.reshape(len(x), -1)
    else:
        scores = np.tanh(dense(tokens, layer.score_hidden)) @ w(
            layer.score_output.kernel
        )
        scores = np.where(present, scores[..., 0], -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        x = np.einsum(
            "bm,bmd->bd", weights / weights.sum(-1, keepdims=True), tokens
        )
    for hidden in layer.output_mlp:
        x = relu(dense(x, hidden))
    return dense(x, layer.output_layer)


def modality_latents(model, x, mask):
    """`H^m = projection(f^m(X^m))`, missing modalities zero-filled."""
    out = []
    for i, name in enumerate(model.modalities):
        values = np.where(mask[:, i : i + 1] > 0.5, x[name], 0.0)
        h = mlp_encoder(values.astype("float64"), model.encoders[name])
        out.append(projection(h, model.projections[name]))
    return np.stack(out, axis=1)


# ------------------------------------------------------------------- tasks


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class NumpyTask:
    """The task rules of docs/concepts.md, one task, written out."""

    def __init__(self, task):
        self.kind = task.name
        self.task = task

    def activation(self, logits):
        if self.kind == "classification":
            return softmax(logits)
        if self.kind == "multilabel":
            return sigmoid(logits)
        return logits

    def loss(self, label, logits):
        """Per-sample task loss of one branch's logits `(O,)`."""
        if self.kind == "classification":
            return -np.log(softmax(logits)[int(label)])
        if self.kind == "multilabel":
            p = sigmoid(logits)
            return -np.mean(label * np.log(p) + (1 - label) * np.log(1 - p))
        return abs(logits[0] - label)

    def bin(self, value):
        low, high = self.task.bins
        return int(np.round(np.clip(value, low, high))) - low

    def label_distribution(self, label):
        if self.kind == "classification":
            return np.eye(self.task.num_classes)[int(label)]
        if self.kind == "multilabel":
            return np.asarray(label, "float64")
        return np.eye(self.task.num_bins)[self.bin(label)]

    def soft_target(self, prediction):
        if self.kind != "regression":
            return np.asarray(prediction, "float64")
        low, high = self.task.bins
        centres = np.arange(low, high + 1)
        value = np.clip(prediction[0], low, high)
        density = np.exp(
            -((centres - value) ** 2) / (2 * self.task.target_std**2)
        )
        return density / density.sum()

    def same(self, label_j, label_k):
        if self.kind == "multilabel":
            return bool(np.array_equal(label_j, label_k))
        if self.kind == "classification":
            return int(label_j) == int(label_k)
        return self.bin(label_j) == self.bin(label_k)

    def pair_probability(self, p, q):
        if self.kind == "multilabel":
            return float(np.prod(p * q + (1 - p) * (1 - q)))
        return float(p @ q)

    def product_of_experts(self, predictions):
        """Normalised geometric mean of branch outputs `(k, O)` in the
        task output space (the mean for regression)."""
        if self.kind == "regression":
            return predictions.mean(0)
        geometric = np.exp(np.log(predictions).mean(0))
        if self.kind == "classification":
            return geometric / geometric.sum()
        # Per label: p vs 1 - p, each a geometric mean over the branches.
        negative = np.exp(np.log(1 - predictions).mean(0))
        return geometric / (geometric + negative)

    def pseudo_label(self, teacher):
        """`(label, confidence)` of a teacher prediction."""
        if self.kind == "classification":
            return int(np.argmax(teacher)), float(np.max(teacher))
        if self.kind == "multilabel":
            label = (teacher > 0.5).astype("float64")
            return label, float(np.min(np.maximum(teacher, 1 - teacher)))
        return float(teacher[0]), 1.0


# ---------------------------------------------------------------- Robult


def robult_forward(model, x):
    """Every tensor of the model (docs/concepts.md), as float64 arrays."""
    task = NumpyTask(model.task)
    mask = np.asarray(x["modality_mask"], "float64")
    h = modality_latents(model, x, mask)
    h0 = fusion_encoder(h, mask, model.fusion)
    s = mlp_encoder(h0, model.shared_head)
    z = mlp_encoder(h, model.shared_head)
    u = modality_mlp(h, model.unique_heads)
    fused_logits = dense(h0, model.task_head)
    branch_logits = dense(np.concatenate([u, z], -1), model.task_head)
    fused = task.activation(fused_logits)
    branch = task.activation(branch_logits)
    present = mask > 0.5
    # Late fusion of the present branches (a row with none: its output
    # is replaced by the label prior).
    rule = {"mean": lambda p: p.mean(0), "product": task.product_of_experts}[
        model.late_fusion
    ]
    late = np.stack(
        [
            rule(branch[j, present[j]])
            if present[j].any()
            else np.zeros(branch.shape[-1])
            for j in range(len(mask))
        ]
    )
    full = {
        "fused": fused,
        "late": late,
        "mean": 0.5 * (fused + late),
    }[model.full_set]
    fewest = model.min_fused_modalities or mask.shape[1]
    prediction = np.where(present.sum(1, keepdims=True) >= fewest, full, late)
    reconstruction = modality_mlp(
        np.concatenate([u, z], -1), model.reconstruction_heads
    )
    return {
        "modality_latents": h,
        "fused_latent": h0,
        "shared": s,
        "redundant": z,
        "unique": u,
        "fused_logits": fused_logits,
        "modality_logits": branch_logits,
        "fused_prediction": fused,
        "modality_predictions": branch,
        "late": late,
        "prediction": prediction,
        "reconstruction": reconstruction,
    }


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def soft_targets(model, f, mask, labels, labeled):
    """p~ of every sample: the label for a labeled sample; for an unlabeled
    one the fused prediction with every modality present, else the late
    fusion of the present branches."""
    task = NumpyTask(model.task)
    present = mask > 0.5
    soft = []
    for j in range(len(mask)):
        if labeled[j]:
            soft.append(task.label_distribution(labels[j]))
        elif present[j].all():
            soft.append(task.soft_target(f["fused_prediction"][j]))
        else:
            soft.append(task.soft_target(f["late"][j]))
    return soft


def candidate_pair_probabilities(model, f, mask, labels, labeled):
    """q_jk of every candidate pair (j != k, not both labeled)."""
    task = NumpyTask(model.task)
    soft = soft_targets(model, f, mask, labels, labeled)
    return [
        task.pair_probability(soft[j], soft[k])
        for j, k in itertools.permutations(range(len(mask)), 2)
        if not (labeled[j] and labeled[k])
    ]


def soft_pu_terms(model, f, mask, labels, labeled):
    """`(mean_m L_lb^m, mean_m L_ulb^m)` of docs/concepts.md."""
    task = NumpyTask(model.task)
    tau, sigma = model.temperature, model.rbf_bandwidth
    min_q = model.min_pair_probability
    present = mask > 0.5
    batch, num_modalities = mask.shape
    soft = soft_targets(model, f, mask, labels, labeled)
    lb_per_modality, ulb_per_modality = [], []
    for m in range(num_modalities):
        anchors = [j for j in range(batch) if present[j].any()]
        keys = [k for k in range(batch) if present[k, m]]
        sim = {
            (j, k): cosine(f["shared"][j], f["redundant"][k, m])
            for j in anchors
            for k in keys
        }
        lb_terms, ulb_terms = [], []
        for j in anchors:
            log_norm = np.log(sum(np.exp(sim[(j, k)] / tau) for k in keys))
            neg_log_v = {k: log_norm - sim[(j, k)] / tau for k in keys}
            positives = [
                k
                for k in keys
                if k == j
                or (
                    labeled[j]
                    and labeled[k]
                    and task.same(labels[j], labels[k])
                )
            ]
            if not positives:
                # r_j is undefined: the anchor has no term (soft_pu_loss).
                continue
            lb_terms.append(np.mean([neg_log_v[k] for k in positives]))
            reference = np.mean([sim[(j, k)] for k in positives])
            numerator = denominator = 0.0
            for k in keys:
                if k == j or (labeled[j] and labeled[k]):
                    continue
                q = task.pair_probability(soft[j], soft[k])
                if q < min_q:
                    q = 0.0
                weight = np.exp(
                    -((sim[(j, k)] - reference) ** 2) / (2 * sigma**2)
                )
                numerator += q * weight * neg_log_v[k]
                denominator += q
            if denominator > 0:
                ulb_terms.append(numerator / denominator)
        lb_per_modality.append(np.mean(lb_terms) if lb_terms else 0.0)
        ulb_per_modality.append(np.mean(ulb_terms) if ulb_terms else 0.0)
    return float(np.mean(lb_per_modality)), float(np.mean(ulb_per_modality))


def reconstruction_term(f, mask):
    terms = [
        1.0
        - cosine(f["reconstruction"][j, m], f["modality_latents"][j, m]) ** 2
        for j, m in itertools.product(*map(range, mask.shape))
        if mask[j, m] > 0.5
    ]
    return float(np.mean(terms)) if terms else 0.0


def branch_mean(per_branch):
    """Mean over branches of `(sum of weighted losses, weight mass)`,
    branches without mass left out."""
    means = [total / mass for total, mass in per_branch if mass > 0]
    return float(np.mean(means)) if means else 0.0


def supervised_term(model, f, mask, labels, labeled, sample_weight=None):
    task = NumpyTask(model.task)
    present = mask > 0.5
    batch, num_modalities = mask.shape
    weight = np.ones(batch) if sample_weight is None else sample_weight
    per_branch = []
    for b in range(num_modalities + 1):
        total = mass = 0.0
        for j in range(batch):
            available = present[j].any() if b == 0 else present[j, b - 1]
            if not (labeled[j] and available):
                continue
            logits = (
                f["fused_logits"][j]
                if b == 0
                else f["modality_logits"][j, b - 1]
            )
            total += weight[j] * task.loss(labels[j], logits)
            mass += weight[j]
        per_branch.append((total, mass))
    return branch_mean(per_branch)


def pseudo_term(model, f, mask, labeled, threshold=None):
    """`L_pseudo`, and how many unlabeled samples the threshold kept and
    dropped."""
    task = NumpyTask(model.task)
    threshold = model.pseudo_threshold if threshold is None else threshold
    present = mask > 0.5
    batch, num_modalities = mask.shape
    per_branch = [[0.0, 0.0] for _ in range(num_modalities)]
    kept = dropped = 0
    for j in range(batch):
        if labeled[j]:
            continue
        late = f["late"][j]
        teacher = (
            0.5 * (f["fused_prediction"][j] + late)
            if present[j].all()
            else late
        )
        target, confidence = task.pseudo_label(teacher)
        if confidence < threshold:
            dropped += 1
            continue
        kept += 1
        for m in range(num_modalities):
            if present[j, m]:
                per_branch[m][0] += task.loss(
                    target, f["modality_logits"][j, m]
                )
                per_branch[m][1] += 1.0
    return branch_mean(per_branch), kept, dropped


def consistency_term(model, f, subset_mask, labels, labeled):
    """`L_cons`: the fused branch on `subset_mask` against the label (a
    labeled row) or the confident hard pseudo-label of the fused branch on
    the row's own modalities; mean over the rows with a target."""
    task = NumpyTask(model.task)
    h0 = fusion_encoder(f["modality_latents"], subset_mask, model.fusion)
    student = dense(h0, model.task_head)
    total = count = 0.0
    for j in range(len(subset_mask)):
        if not (subset_mask[j] > 0.5).any():
            continue
        if labeled[j]:
            target = labels[j]
        else:
            target, confidence = task.pseudo_label(f["fused_prediction"][j])
            if confidence < model.pseudo_threshold:
                continue
        total += task.loss(target, student[j])
        count += 1.0
    return total / count if count else 0.0


def robult_loss(model, x, labels, is_labeled, sample_weight=None):
    """Every logged term of `Robult.compute_loss` and the total."""
    f = robult_forward(model, x)
    mask = np.asarray(x["modality_mask"], "float64")
    labeled = np.asarray(is_labeled) > 0.5
    lb, ulb = soft_pu_terms(model, f, mask, labels, labeled)
    terms = {
        "loss_lb": lb,
        "loss_ulb": ulb,
        "loss_rec": reconstruction_term(f, mask),
        "loss_sup": supervised_term(
            model, f, mask, labels, labeled, sample_weight
        ),
        "loss_pseudo": pseudo_term(model, f, mask, labeled)[0],
    }
    terms["loss"] = sum(
        model.loss_weights[name[5:]] * value for name, value in terms.items()
    )
    return terms


# -------------------------------------------------------------------- GMC


def gmc_forward(model, x):
    task = NumpyTask(model.task)
    mask = np.asarray(x["modality_mask"], "float64")
    present = mask > 0.5
    h = modality_latents(model, x, mask)
    joint = fusion_encoder(h, mask, model.joint_encoder)
    mean_present = np.stack([h[j, present[j]].mean(0) for j in range(len(h))])
    representation = mean_present
    if model.full_set == "joint":
        representation = np.where(
            present.all(1, keepdims=True), joint, mean_present
        )
    g = model.projection_head
    branch = np.concatenate([joint[:, None], h], axis=1)  # joint, then each
    return {
        "branch_projection": mlp_encoder(branch, g),
        "branch_logits": dense(mlp_encoder(branch, g), model.classifier),
        "prediction": task.activation(
            dense(mlp_encoder(representation, g), model.classifier)
        ),
    }


def gmc_loss(model, x, labels, is_labeled, sample_weight=None):
    """`loss_contrastive`, `loss_sup` and the total of `GMC.compute_loss`:
    NT-Xent (Poklukar et al. 2022) between the joint and each modality's
    projection, over the samples that have the modality, summed over
    modalities; the task loss of every branch (of the joint one alone with
    `supervised_branches="joint"`) on the labeled samples (weighted by
    `sample_weight`)."""
    f = gmc_forward(model, x)
    mask = np.asarray(x["modality_mask"], "float64")
    present = mask > 0.5
    labeled = np.asarray(is_labeled) > 0.5
    tau = model.temperature
    contrastive = 0.0
    for m in range(mask.shape[1]):
        rows = [j for j in range(len(mask)) if present[j, m]]
        joint = [f["branch_projection"][j, 0] for j in rows]
        modality = [f["branch_projection"][j, m + 1] for j in rows]
        both = joint + modality  # candidates: 2n representations
        n = len(rows)
        terms = []
        for i in range(2 * n):
            positive = (i + n) % (2 * n)
            log_norm = np.log(
                sum(
                    np.exp(cosine(both[i], both[k]) / tau)
                    for k in range(2 * n)
                    if k != i
                )
            )
            terms.append(log_norm - cosine(both[i], both[positive]) / tau)
        contrastive += np.mean(terms) if terms else 0.0
    task = NumpyTask(model.task)
    weight = np.ones(len(mask)) if sample_weight is None else sample_weight
    per_branch = []
    branches = mask.shape[1] + 1
    if model.supervised_branches == "joint":
        branches = 1
    for b in range(branches):
        rows = [
            j
            for j in range(len(mask))
            if labeled[j]
            and (present[j].any() if b == 0 else present[j, b - 1])
        ]
        per_branch.append(
            (
                sum(
                    weight[j] * task.loss(labels[j], f["branch_logits"][j, b])
                    for j in rows
                ),
                float(sum(weight[j] for j in rows)),
            )
        )
    supervised = branch_mean(per_branch)
    weights = model.loss_weights
    return {
        "loss_contrastive": float(contrastive),
        "loss_sup": supervised,
        "loss": weights["contrastive"] * contrastive
        + weights["sup"] * supervised,
    }
