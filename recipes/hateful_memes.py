"""Hateful Memes with 5 % labels: Robult against the baselines and
ablations, the paper's Table 2 protocol on meme images and their text.

    python recipes/hateful_memes.py --data-dir ~/data/hateful_memes \
        --text-preset ~/presets/minilm --image-preset ~/presets/resnet18
    python recipes/hateful_memes.py ... --test-split dev_seen

Expected layout in --data-dir (the release; see
`keras_robult.datasets.hateful_memes`): `img/`, `train.jsonl`,
`dev_seen.jsonl`, `test_seen.jsonl` (and the `_unseen` files). The test
file is `--test-split` (default test_seen, recorded in results.json); its
dev file validates (a stratified 10 % of train when the test is a dev
file). Phase 1's `test.jsonl` has no labels and is refused as the test.
Frozen keras-hub backbones, features cached in `--cache-dir`, unreadable
images skipped and counted, as in recipes/food101.py. Metrics: AUROC
(primary, the paper's) and accuracy. Writes the files of the other
recipes to --out (default results/hateful_memes).

Paper (Robult, Table 2, 5 % labels): see docs/recipes.md.
"""

import sys

import keras_robult_cli


def load(args):
    from keras_robult.cli.recipe import image_text_splits
    from keras_robult.datasets import hateful_memes
    from keras_robult.tasks import Classification

    records = hateful_memes.load_records(args.data_dir, args.test_split)
    loaded = image_text_splits(args, records, "hateful_memes")
    loaded["task"] = Classification(2, class_names=list(hateful_memes.CLASSES))
    loaded["extra"]["test_split"] = args.test_split
    return loaded


def add_arguments(parser):
    from keras_robult.cli.options import add_backbone_arguments
    from keras_robult.datasets.hateful_memes import LABELED_SPLITS

    add_backbone_arguments(parser)
    parser.add_argument(
        "--test-split",
        default="test_seen",
        help=f"the labeled file that is the test: one of {LABELED_SPLITS}",
    )


def run(argv=None):
    """Runs the recipe on `argv` (default: the command line)."""
    keras_robult_cli.prepare(argv)  # the backend, before Keras loads
    from keras_robult.cli.recipe import main

    return main(
        __doc__,
        load,
        None,
        "hateful_memes",
        ("auroc", "accuracy"),
        100,
        256,
        add_arguments=add_arguments,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(run())
