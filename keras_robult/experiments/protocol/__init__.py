"""The evaluation protocol (docs/concepts.md), as one function.

Methods side by side on the same split and seeds; every modality subset of
`evaluation_subsets`; a missing-rate curve; mean and standard deviation over
seeds; results in the `results.json` schema the `robult` command writes.

By concern: `splits` (one seed's rows and their checks), `training` (one
method on one split, with its cost), `evaluation` (scoring on the test
split), `results` (the schema: tally and summary) and `run` (the protocol
itself, `run_protocol`).
"""

from keras_robult.experiments.protocol.evaluation import (
    EVALUATION_CHUNK_BYTES,
    EVALUATION_CHUNK_ROWS,
    MISSING_RATES,
    EvaluationOptions,
    evaluate_model,
    evaluate_predictor,
    missing_rate_auc,
)
from keras_robult.experiments.protocol.options import ProtocolOptions
from keras_robult.experiments.protocol.results import (
    RunInfo,
    Tally,
    summarise_results,
)
from keras_robult.experiments.protocol.run import run_protocol

__all__ = [
    "EVALUATION_CHUNK_BYTES",
    "EVALUATION_CHUNK_ROWS",
    "MISSING_RATES",
    "EvaluationOptions",
    "ProtocolOptions",
    "RunInfo",
    "Tally",
    "evaluate_model",
    "evaluate_predictor",
    "missing_rate_auc",
    "run_protocol",
    "summarise_results",
]
