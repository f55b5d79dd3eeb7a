"""The top floor: the `robult` command and the recipe scripts' command
line. Only this package (and the scripts) know `keras_robult_cli`, the
start-up module outside the package; the library below takes typed
configurations (`ComparisonConfig`, `BackboneConfig`), never an argparse
namespace."""

from keras_robult.cli.command import main

__all__ = ["main"]
