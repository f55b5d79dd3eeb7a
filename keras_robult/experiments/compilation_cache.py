"""A disk cache of the compiled training and prediction steps (JAX)."""

import os

import keras


def default_cache_dir():
    """`$XDG_CACHE_HOME/keras_robult/jax` (default `~/.cache/...`)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(root, "keras_robult", "jax")


def enable_compilation_cache(
    directory=None, min_compile_seconds=0.5, max_bytes=2 * 2**30
):
    """Keeps the XLA programs JAX compiles in a folder on disk, so that a
    step compiled once is loaded, not compiled again, wherever the same
    program comes back: the next seed of a method (the same model, other
    initial weights: the same program), the next run of the same command.
    On mfeat's default comparison, compiling is about 15 s of a Robult
    (method, seed) pair's 45 s on a 2-core CPU. A cached program is the
    one compilation would produce, so results do not change.

    JAX's own settings win: with `JAX_COMPILATION_CACHE_DIR` set, that
    folder is used; with `JAX_ENABLE_COMPILATION_CACHE=false`, nothing is
    cached. Other backends: nothing is done (TensorFlow and PyTorch keep
    no such cache of Keras' steps).

    Args:
        directory: the folder (default `default_cache_dir()`).
        min_compile_seconds: programs that compile faster are not kept.
        max_bytes: the folder's size limit; beyond it the least recently
            used programs are removed.

    Returns:
        The cache folder, or None where no cache is used.
    """
    if keras.backend.backend() != "jax":
        return None
    import jax

    if not jax.config.jax_enable_compilation_cache:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    directory = os.fspath(directory or default_cache_dir())
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds)
    )
    jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    return directory
