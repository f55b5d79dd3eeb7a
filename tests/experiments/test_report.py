"""The results table says what was run: the labeled fraction the splits
held, the seeds, and no spread where there is one seed."""

import numpy as np

from keras_robult import tasks
from keras_robult.experiments import run_protocol
from keras_robult.experiments.report import markdown_table
from tests.conftest import make_multimodal
from tests.experiments.test_protocol import ClassZero


def results_with(is_labeled, seeds):
    x, y = make_multimodal(num_samples=48, num_classes=3)
    results, _ = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"zero": ClassZero},
        seeds=seeds,
        epochs=1,
        batch_size=16,
        is_labeled=is_labeled,
        test_mask=np.arange(48) >= 40,
        dataset="toy",
        verbose=0,
    )
    return results


def test_a_files_own_labels_title_the_table_and_one_seed_has_no_spread():
    is_labeled = np.zeros(48, bool)
    is_labeled[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]] = True  # 10 of 40 training
    results = results_with(is_labeled, seeds=(0,))
    assert results["labeled_fraction"] == 0.25
    table = markdown_table(results)
    title = table.splitlines()[0]
    assert title == "accuracy on toy, 25% labeled, seed 0"
    assert "±" not in table
    is_labeled[10] = True  # 11 of 40: 27.5 %, not rounded to 28 %
    results = results_with(is_labeled, seeds=(0, 1))
    title = markdown_table(results).splitlines()[0]
    assert title == "accuracy on toy, 27.5% labeled, seeds 0, 1 (mean ± std)"
    assert "± 0.000" in markdown_table(results)  # two equal seeds: shown
