"""The `robult` command's entry point: the backend first, then the
package."""

import os
import sys

from keras_robult_cli import prepare

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130


def main(argv=None):
    """The `robult` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prepare(argv)
    # After `prepare`: importing the package loads Keras, which fixes the
    # backend.
    from keras_robult import cli

    code = cli.main(argv)
    if code == INTERRUPTED:
        # Ctrl-C stopped native threads (XLA's) in the middle of their
        # work, and the interpreter's teardown can then crash ("corrupted
        # size vs. prev_size", SIGABRT) after everything was written: the
        # command ends here with its own exit code instead.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
