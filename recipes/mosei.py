"""CMU-MOSEI with 5 % labels: Robult against the baselines and ablations,
the paper's Table 1 protocol.

    python recipes/mosei.py --data-dir ~/data/MOSEI            # seeds 0 1 2
    python recipes/mosei.py --data-dir ~/data/MOSEI --smoke    # install check

Expected files in --data-dir: `mosei_senti_data.pkl` (MulT release,
word-aligned; `--unaligned` reads `mosei_senti_data_noalign.pkl`) or MMSA's
`aligned_50.pkl` / `unaligned_50.pkl`; see `keras_robult.datasets.mosei`.
Regression in [-3, 3] (PU positives: 7 rounded bins), one SequenceEncoder
per modality, early stopping on validation MAE, metrics on the test split:
MAE
(primary), Pearson correlation, binary accuracy and weighted F1 on
non-zero labels, Acc-7. Writes results.json, results.md (one table per
metric), missing_rate.png, labeled_indices.json and the models to --out
(default results/mosei).

Time per epoch of Robult here (2-core CPU, JAX, batch 256, synthetic data
of MOSEI's size and shape, `python benchmarks/recipes.py`): see docs/recipes.md.

Paper (Table 1, Robult, 5 % labels), MAE / Corr / F1 / Acc: text 0.784 /
0.459 / 0.739 / 0.732; audio 0.825 / 0.221 / 0.679 / 0.650; vision 0.826 /
0.201 / 0.647 / 0.632; full 0.779 / 0.504 / 0.744 / 0.741.
"""

import sys

import keras_robult_cli


def run(argv=None):
    """Runs the recipe on `argv` (default: the command line)."""
    keras_robult_cli.prepare(argv)  # the backend, before Keras loads
    from keras_robult.cli.recipe import sentiment_recipe

    return sentiment_recipe(__doc__, "mosei", argv)


if __name__ == "__main__":
    sys.exit(run())
