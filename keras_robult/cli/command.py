"""The `robult` command: train and evaluate on any modality subset."""

import sys

from keras_robult.cli.evaluate import evaluate, export
from keras_robult.cli.options import load_frameworks, reporting_errors
from keras_robult.cli.parser import robult_parser
from keras_robult.cli.train import train
from keras_robult.cli.tune import run_tune
from keras_robult_cli import choose_backend, ensure_backend

COMMANDS = {
    "train": train,
    "tune": run_tune,
    "evaluate": evaluate,
    "export": export,
}


def main(argv=None):
    """Runs `robult` on `argv` (default: the command line); returns the
    exit code (2 with one `robult: error:` line for bad input)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = robult_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return reporting_errors("robult", _run, args, argv, parser=parser)


def _run(args, argv):
    ensure_backend(
        choose_backend(getattr(args, "backend", None)),
        ["-m", "keras_robult_cli", *argv],
    )
    load_frameworks(args.verbose)
    return COMMANDS[args.command](args)
