"""CMU-MOSI with 5 % labels: Robult against the baselines and ablations,
the paper's Table 1 protocol.

    python recipes/mosi.py --data-dir ~/data/MOSI            # seeds 0 1 2
    python recipes/mosi.py --data-dir ~/data/MOSI --smoke    # install check

Expected files in --data-dir: `mosi_data.pkl` (MulT release, word-aligned;
`--unaligned` reads `mosi_data_noalign.pkl`) or MMSA's `aligned_50.pkl` /
`unaligned_50.pkl`; see `keras_robult.datasets.mosi`. Regression in
[-3, 3] (PU positives: 7 rounded bins), one SequenceEncoder per modality,
early stopping on validation MAE, metrics on the test split: MAE
(primary), Pearson correlation, binary accuracy and weighted F1 on
non-zero labels, Acc-7. Writes results.json, results.md (one table per
metric), missing_rate.png, labeled_indices.json and the models to --out
(default results/mosi).

Time per epoch of Robult here (2-core CPU, JAX, batch 256, synthetic data
of MOSI's size and shape, `python benchmarks/recipes.py`): see docs/recipes.md.

Paper (Table 1, Robult, 5 % labels), MAE / Corr / F1 / Acc: text 1.397 /
0.144 / 0.578 / 0.569; audio 1.415 / 0.085 / 0.539 / 0.535; vision 1.425 /
0.086 / 0.593 / 0.522; full 1.392 / 0.247 / 0.657 / 0.630.
"""

import sys

import keras_robult_cli


def run(argv=None):
    """Runs the recipe on `argv` (default: the command line)."""
    keras_robult_cli.prepare(argv)  # the backend, before Keras loads
    from keras_robult.cli.recipe import sentiment_recipe

    return sentiment_recipe(__doc__, "mosi", argv)


if __name__ == "__main__":
    sys.exit(run())
