"""The `robult` command's entry point: the backend first, then the
package."""

import sys

from keras_robult_cli import prepare


def main(argv=None):
    """The `robult` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prepare(argv)
    # After `prepare`: importing the package loads Keras, which fixes the
    # backend.
    from keras_robult import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
