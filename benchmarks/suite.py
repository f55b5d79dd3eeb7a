"""The dataset suite: every method on every dataset of
`keras_robult.datasets.suite` (classification and regression, redundant
and complementary views, synthetic and real, gaps in training), against
the simple references `linear` and `mlp`.

    python benchmarks/suite.py --out results/suite            # 3 seeds
    python benchmarks/suite.py --out results/suite-quick --quick
    python benchmarks/suite.py --datasets diabetes additive-regression

Writes each dataset's run folder (resumable) and `suite.md` /
`suite.json`: a table per dataset and, per modality subset, whether
Robult is at least as good as the better reference (within one standard
deviation over the seeds). `--quick`: seed 0, 60 epochs, at most 600
samples a dataset.
"""

import argparse
import sys

import keras_robult_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/suite")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--methods", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    keras_robult_cli.prepare(
        ["--backend", args.backend] if args.backend else []
    )
    from keras_robult.experiments import suite

    settings = suite.quick_settings() if args.quick else {}
    if args.seeds:
        settings["seeds"] = tuple(args.seeds)
    if args.epochs:
        settings["epochs"] = args.epochs
    summary = suite.run_suite(
        args.out,
        datasets=args.datasets,
        methods=tuple(args.methods or suite.SUITE_METHODS),
        verbose=0 if args.quiet else 1,
        **settings,
    )
    print(suite.suite_markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
