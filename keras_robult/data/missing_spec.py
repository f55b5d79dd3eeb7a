"""The missing-type protocol of the image+text literature: a missing type
(which modalities go missing) and a missing rate (in how many samples)."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

#: Types that spread the missing samples over every modality.
EVERY_MODALITY = ("both", "all")


@dataclasses.dataclass(frozen=True)
class MissingSpec:
    """A missing type and a missing rate, `TYPE:RATE`, as the missing-aware
    prompts paper (Lee et al., CVPR 2023) and its successors define them.

    `RATE` is the fraction of the samples that are **incomplete** (0.7:
    70 % of the samples lose a modality, 30 % keep every one). Exactly
    `n = floor(N x RATE)` of the `N` samples are drawn uniformly without
    replacement; which modality each of them loses depends on `TYPE`:

    - a modality name (`text:0.7`): all `n` lose that modality;
    - `both` or `all` (`both:0.7`): the `n` are split across the
      modalities, each losing exactly one. With two modalities, as the
      missing-aware prompts code does, `floor(n x both_ratio)` of them
      (drawn uniformly among the `n`) lose the first modality in model
      order (the image in the image+text recipes) and the rest the second;
      with more, they are split evenly (the first `n mod M` modalities one
      sample more);
    - modality names joined by `,` or `+` (`audio,video:0.5`): as `all`,
      among the listed modalities only (split evenly; `both_ratio` with
      exactly two).

    A sample never loses a modality the data does not hold: if a drawn
    sample would be left with no modality, `apply` refuses, naming how
    many. Unlike the per-modality `train_missing_rate` (each present
    modality of each sample dropped independently), a sample loses at
    most one modality here.

    Args:
        kind: the type as written: a modality name, `"both"`, `"all"`, or
            names joined by `,` or `+`.
        rate: float in [0, 1], the fraction of incomplete samples.
        both_ratio: float in [0, 1], the share of the incomplete samples
            that lose the first of exactly two modalities.

    Example:

    ```python
    import numpy as np
    from keras_robult.data import MissingSpec

    spec = MissingSpec.parse("both:0.7")
    mask = spec.apply(np.ones((200, 2)), ["image", "text"], seed=0)
    # 70 rows [0, 1] (image missing), 70 rows [1, 0], 60 rows [1, 1]
    ```
    """

    kind: str
    rate: float
    both_ratio: float = 0.5

    def __post_init__(self):
        if not self.kind or any(not n for n in _names(self.kind)):
            raise ValueError(
                f"Missing type {self.kind!r}: name a modality, 'both', "
                "'all', or modalities joined by ',' or '+'."
            )
        # One spelling per type (its text seeds the draw).
        object.__setattr__(self, "kind", ",".join(_names(self.kind)))
        for name in ("rate", "both_ratio"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"Missing spec {self}: {name} must be in [0, 1]; "
                    f"received {value!r}."
                )

    @classmethod
    def parse(cls, text, both_ratio=0.5):
        """The spec of `"TYPE:RATE"` (e.g. `"text:0.7"`, `"both:0.7"`)."""
        if isinstance(text, cls):
            return text
        kind, colon, rate = str(text).strip().rpartition(":")
        try:
            value = float(rate)
        except ValueError:
            value = None
        if not colon or value is None:
            raise ValueError(
                f"Missing spec {text!r}: expected TYPE:RATE, e.g. text:0.7 "
                "or both:0.7 (TYPE a modality name, both, all, or names "
                "joined by ','; RATE the fraction of incomplete samples)."
            )
        return cls(kind.strip(), value, both_ratio)

    def __str__(self):
        return f"{self.kind}:{self.rate:g}"

    def missing_modalities(self, modalities: Sequence[str]) -> list[str]:
        """The modalities that can go missing, in model order; raises if
        the type names a modality that is not one of `modalities`."""
        modalities = list(modalities)
        if self.kind in EVERY_MODALITY:
            return modalities
        names = _names(self.kind)
        unknown = [n for n in names if n not in modalities]
        if unknown:
            raise ValueError(
                f"Missing spec {self}: unknown modality {unknown[0]!r}; the "
                f"data's modalities are {modalities} (or use 'both' / "
                "'all')."
            )
        return [m for m in modalities if m in names]

    def counts(self, num_samples: int, modalities: Sequence[str]) -> dict:
        """How many of `num_samples` samples lose each modality."""
        losing = self.missing_modalities(modalities)
        total = int(np.floor(num_samples * self.rate + 1e-9))
        if len(losing) == 2:
            first = int(np.floor(total * self.both_ratio + 1e-9))
            sizes = [first, total - first]
        else:
            sizes = [
                total // len(losing) + (i < total % len(losing))
                for i in range(len(losing))
            ]
        return dict(zip(losing, sizes))

    def apply(
        self,
        base_mask: ArrayLike,
        modalities: Sequence[str],
        seed=0,
    ) -> np.ndarray:
        """The mask of the data under this spec.

        Args:
            base_mask: `(samples, M)` mask of the modalities the data holds
                (0 stays 0).
            modalities: the `M` names, in model order.
            seed: int or sequence of ints; the draw also depends on the
                spec's text, so that two specs draw independently and the
                same spec draws the same samples for every method.

        Returns:
            A float32 `(samples, M)` mask, a subset of `base_mask`.
        """
        modalities = list(modalities)
        base = np.asarray(base_mask, "float32")
        if base.ndim != 2 or base.shape[1] != len(modalities):
            raise ValueError(
                f"Missing spec {self}: the mask must be (samples, "
                f"{len(modalities)}); received {base.shape}."
            )
        counts = self.counts(len(base), modalities)
        seed = list(np.atleast_1d(seed).astype("int64"))
        rng = np.random.default_rng(seed + [zlib.crc32(str(self).encode())])
        # In random order: consecutive runs of it are uniform draws among
        # the incomplete samples (the missing-aware prompts code draws the
        # first modality's share among them, the rest lose the second).
        chosen = rng.choice(len(base), sum(counts.values()), replace=False)
        mask = base.copy()
        start = 0
        for name, size in counts.items():
            mask[chosen[start : start + size], modalities.index(name)] = 0.0
            start += size
        emptied = np.flatnonzero((mask.sum(axis=1) == 0) & (base.sum(1) > 0))
        if emptied.size:
            raise ValueError(
                f"Missing spec {self} leaves {emptied.size} sample(s) with "
                f"no modality (first rows {emptied[:5].tolist()}): they "
                "hold only the modality it removes. Lower the rate, choose "
                "another type, or drop those samples."
            )
        return mask


def _names(kind):
    return [n.strip() for n in kind.replace("+", ",").split(",")]


def missing_specs(texts, both_ratio=0.5):
    """`MissingSpec`s of `texts` (strings or specs), duplicates refused."""
    specs = [MissingSpec.parse(t, both_ratio) for t in texts or ()]
    names = [str(s) for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"Missing spec {repeated[0]} is given twice.")
    return specs


def literature_grid(modalities, rate=0.7, both_ratio=0.5):
    """The standard table of the missing-aware prompts literature, as
    `(train spec, [test specs])` pairs: trained and tested at `rate` for
    each single-modality type and for `both` (`all` beyond two
    modalities), and the model trained on `both` also tested at every
    single-modality type."""
    every = "both" if len(modalities) == 2 else "all"
    kinds = list(modalities) + [every]
    specs = [MissingSpec(k, rate, both_ratio) for k in kinds]
    grid = [(spec, [spec]) for spec in specs[:-1]]
    grid.append((specs[-1], specs))
    return grid
