"""Start-up of the `robult` command and of the recipe scripts.

Importing `keras_robult` imports Keras, which fixes the backend for the
whole process and, on TensorFlow, lets TensorFlow's C++ runtime write its
start-up lines (absl's "All log messages before absl::InitializeLog()",
"Could not find cuda drivers", CPU-feature notes) straight to file
descriptor 2, where no Python logging setting reaches them. This module is
deliberately outside the package: it reads `--backend` and `--verbose` from
the command line, sets `KERAS_BACKEND`, and loads Keras with those lines
silenced before anything of the package is imported. So the command starts
once, under the right backend, and quietly; `--verbose` shows the lines.

`keras_robult_cli.main` is the `robult` command (`python -m
keras_robult_cli ...`); this module is the leaf under it that both the
command and the package's `cli` use.
"""

import contextlib
import importlib.util
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
# `robult export` loads models with TensorFlow unless told otherwise: a
# .keras file is backend-neutral, and TensorFlow exports it directly.
EXPORT_BACKEND = "tensorflow"
# TensorFlow's C++ logging level of a run without --verbose.
QUIET_TF_LOG_LEVEL = "3"


@contextlib.contextmanager
def native_stderr_silenced(enabled=True):
    """Sends what native libraries write to the stderr file descriptor
    meanwhile to /dev/null. Python exceptions are objects, printed after
    the block ends, so nothing of ours is lost."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def choose_backend(requested=None, command=None):
    """The Keras backend of a run: `requested`, else TensorFlow for
    `export`, else `$KERAS_BACKEND`, else JAX when installed, else
    TensorFlow."""
    if requested:
        return requested
    if command == "export":
        return EXPORT_BACKEND
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    if importlib.util.find_spec("jax") is not None:
        return "jax"
    return "tensorflow"


def ensure_backend(backend, command):
    """Replaces this process by `command` (a Python command line, e.g.
    `["-m", "keras_robult_cli", "train"]`) under the Keras backend
    `backend`, unless the environment already names it: Keras fixes its
    backend when it loads."""
    if os.environ.get("KERAS_BACKEND") == backend:
        return
    if os.environ.get("_ROBULT_REEXEC"):
        raise RuntimeError(f"could not switch the Keras backend to {backend}")
    env = dict(os.environ, KERAS_BACKEND=backend, _ROBULT_REEXEC="1")
    sys.stdout.flush()
    os.execvpe(sys.executable, [sys.executable, *command], env)


def _read(argv):
    """`(command, --backend, --verbose)` from a command line, without the
    full parser (which lives in the package). An invalid --backend is left
    for the parser to report."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    command = options[0] if options else None
    backend = None
    for position, token in enumerate(options):
        if token == "--backend" and position + 1 < len(options):
            backend = options[position + 1]
        elif token.startswith("--backend="):
            backend = token.split("=", 1)[1]
    if backend not in BACKENDS:
        backend = None
    return command, backend, "--verbose" in options


def prepare(argv=None):
    """Sets the Keras backend that the command line `argv` asks for and
    loads Keras, TensorFlow's native start-up lines silenced unless
    `--verbose`. Call it before importing `keras_robult`. When Keras is
    already loaded (a caller in a running program) the backend is left as
    it is; the command re-executes itself if it needs another one.

    Returns the backend Keras runs on."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command, requested, verbose = _read(argv)
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = choose_backend(requested, command)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
    with native_stderr_silenced(not verbose):
        import keras

    return keras.backend.backend()
