"""How much each suite dataset's modalities tell about each other.

Prints `keras_robult.experiments.view_redundancy` of every dataset of
`keras_robult.datasets.suite` on each seed's training rows (the
protocol's split, with the dataset's training gaps): what
`RobultMethod(view_alignment="auto")` reads before training.

    python benchmarks/view_redundancy.py --seeds 0 1 2
"""

import argparse

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    from keras_robult.data.masking import training_mask
    from keras_robult.data.splits import protocol_split
    from keras_robult.datasets.suite import DATASETS
    from keras_robult.experiments import view_redundancy
    from keras_robult.experiments.redundancy import shares_information
    from keras_robult.experiments.user_data import make_task

    print(f"| dataset | seeds {' '.join(map(str, args.seeds))} | aligned |")
    print("|---|---|---|")
    for name, spec in DATASETS.items():
        x, y = spec.load()
        task = make_task(spec.task, y)
        values = []
        for seed in args.seeds:
            train, _ = protocol_split(y, seed, task)
            rows = {m: v[train] for m, v in x.items()}
            if spec.train_missing_rate:
                full = np.ones((len(train), len(x)), "float32")
                rows["modality_mask"] = training_mask(
                    full, spec.train_missing_rate, seed=[seed, 1]
                )
            values.append(view_redundancy(rows, list(x)))
        aligned = spec.task != "classification" or all(
            shares_information(v) for v in values
        )
        print(
            f"| {name} | {' '.join(f'{v:.3f}' for v in values)} | "
            f"{'yes' if aligned else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
