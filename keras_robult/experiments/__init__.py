"""The evaluation protocol: methods, metrics, runs and reports."""

from keras_robult.experiments.comparison import (
    ComparisonConfig,
    run_comparison,
)
from keras_robult.experiments.comparison_data import ComparisonData
from keras_robult.experiments.compilation_cache import (
    enable_compilation_cache,
)
from keras_robult.experiments.default_encoders import default_encoder
from keras_robult.experiments.method import Method
from keras_robult.experiments.method_options import MethodOptions
from keras_robult.experiments.metrics import PRIMARY, compute_metrics
from keras_robult.experiments.protocol import (
    MISSING_RATES,
    EvaluationOptions,
    ProtocolOptions,
    RunInfo,
    Tally,
    evaluate_model,
    evaluate_predictor,
    missing_rate_auc,
    run_protocol,
    summarise_results,
)
from keras_robult.experiments.redundancy import view_redundancy
from keras_robult.experiments.report import (
    cost_table,
    markdown_table,
    missing_type_table,
    plot_missing_rate,
    validate_results,
    write_results,
)
from keras_robult.experiments.results_schema import Results
from keras_robult.experiments.robult_method import RobultMethod
from keras_robult.experiments.robult_options import RobultOptions
from keras_robult.experiments.robustness import (
    effective_robustness,
    relative_robustness,
)

__all__ = [
    "Method",
    "MethodOptions",
    "RobultMethod",
    "RobultOptions",
    "view_redundancy",
    "default_encoder",
    "PRIMARY",
    "compute_metrics",
    "MISSING_RATES",
    "EvaluationOptions",
    "evaluate_model",
    "evaluate_predictor",
    "missing_rate_auc",
    "run_protocol",
    "ProtocolOptions",
    "summarise_results",
    "RunInfo",
    "Tally",
    "ComparisonConfig",
    "ComparisonData",
    "run_comparison",
    "enable_compilation_cache",
    "markdown_table",
    "missing_type_table",
    "cost_table",
    "relative_robustness",
    "effective_robustness",
    "plot_missing_rate",
    "validate_results",
    "Results",
    "write_results",
]
