"""The package's leaf: tensor helpers, eager input checks and atomic file
writes. It imports nothing else of keras_robult."""
