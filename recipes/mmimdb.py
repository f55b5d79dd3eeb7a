"""MM-IMDb with 5 % labels: Robult against the baselines and ablations,
the paper's Table 2 protocol on the distributed features.

    python recipes/mmimdb.py --data-dir ~/data/mmimdb            # seeds 0 1 2
    python recipes/mmimdb.py --data-dir ~/data/mmimdb --smoke    # install check

Expected file in --data-dir: `multimodal_imdb.hdf5` (the authors' release;
see `keras_robult.datasets.mmimdb`): `features` (300-d text), `vgg_features`
(4096-d image), `genres` (23 labels), official index splits. Multi-label
task (PU positives: identical genre vectors), an MLP encoder per feature
vector (with training-split standardisation), early stopping on validation
F1-macro, metrics on the test split: F1-macro (primary, the paper's) and
F1-micro at threshold 0.5. Writes results.json, results.md,
missing_rate.png, labeled_indices.json and the models to --out (default
results/mmimdb).

`--raw` reads the raw release instead (`split.json`, `dataset/<id>.json`
plots and `<id>.jpeg` posters; `keras_robult.datasets.mmimdb.load_records`)
through frozen keras-hub backbones (`--text-preset`, `--image-preset`),
their features cached in `--cache-dir`, as in recipes/food101.py.

Time per epoch of Robult here (2-core CPU, JAX, batch 256, synthetic data
of MM-IMDb's size and shape, `python benchmarks/recipes.py`): see
docs/recipes.md.

Paper (Table 2, Robult, 5 % labels), F1-macro: text 0.321, image 0.298,
full 0.332.
"""

import sys

import keras_robult_cli

METRICS = ("f1_macro", "f1_micro")


def load(args):
    from keras_robult.datasets import mmimdb

    if args.raw:
        from keras_robult.cli.recipe import image_text_splits

        records = mmimdb.load_records(args.data_dir)
        return image_text_splits(args, records, "mmimdb")
    return mmimdb.load_data(args.data_dir)


def add_arguments(parser):
    from keras_robult.cli.options import add_backbone_arguments

    parser.add_argument(
        "--raw",
        action="store_true",
        help="the raw release (split.json, <id>.json plots, <id>.jpeg "
        "posters) through keras-hub backbones instead of the HDF5 features",
    )
    add_backbone_arguments(parser)


def make_task():
    from keras_robult.datasets.mmimdb import NUM_GENRES
    from keras_robult.tasks import MultiLabel

    return MultiLabel(NUM_GENRES)


def run(argv=None):
    """Runs the recipe on `argv` (default: the command line)."""
    keras_robult_cli.prepare(argv)  # the backend, before Keras loads
    from keras_robult.cli.recipe import main

    return main(
        __doc__,
        load,
        make_task,
        "mmimdb",
        METRICS,
        100,
        256,
        add_arguments=add_arguments,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(run())
