"""Writes that an interruption cannot leave half-done: every file is
written under a temporary name in its own folder and renamed into place
(`os.replace`, atomic on POSIX and Windows), so a reader sees either the
previous file or the new one."""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same extension, so writers
    that check it, like `keras.Model.save`, accept it); renames it onto
    `path` when the block ends, removes it if the block raises."""
    path = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(name)[1]
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{name}.", suffix=f".partial{suffix}", dir=directory
        )
    except OSError as error:  # named after the file, not its temporary
        raise type(error)(error.errno, error.strerror, path) from None
    os.close(handle)
    os.remove(temporary)  # writers create it; some refuse an existing file
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_text(path, text):
    """Writes `text` to `path` atomically (flushed to disk first)."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def write_json(path, value, indent=1):
    """Writes `value` as JSON to `path` atomically."""
    return write_text(path, json.dumps(value, indent=indent))


def save_model(model, path):
    """`model.save(path)` atomically."""
    with atomic_path(path) as temporary:
        model.save(temporary)
    return path
