"""Loading pickled datasets without running code from the file."""

import io
import pickle

import numpy as np

#: The globals a NumPy-array dataset pickle may name (NumPy 1 and 2
#: spellings). Containers, strings and numbers need no global.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        # Protocol 2 writes Python 3 bytes as codecs.encode(str, "latin1").
        ("_codecs", "encode"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("__builtin__", "set"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("__builtin__", "object"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds dicts, lists, tuples, strings,
    numbers, NumPy arrays and dtypes.

    `pickle.load` on a file from the internet runs whatever callable the
    file names (`os.system`, ...). This unpickler refuses every global
    outside `ALLOWED_GLOBALS` with an `pickle.UnpicklingError` naming it,
    before anything is called. `copyreg._reconstructor` is allowed for
    Python 2 pickles of NumPy arrays, and only to rebuild an `ndarray`.

    It takes `pickle.Unpickler`'s arguments: a binary file object, then
    keywords such as `encoding="latin1"` for Python 2 pickles.

    Example:

    ```python
    with open("mosi_data.pkl", "rb") as f:
        data = keras_robult.datasets.RestrictedUnpickler(
            f, encoding="latin1"
        ).load()
    ```
    """

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"Refused to load the global '{module}.{name}': a dataset "
                "pickle may only hold dicts, lists, strings, numbers and "
                "NumPy arrays (a pickle that names other callables can run "
                "code when loaded)."
            )
        found = super().find_class(module, name)
        if name == "_reconstructor":
            return _safe_reconstructor(found)
        return found


def _safe_reconstructor(reconstructor):
    def rebuild(cls, base, state):
        if not (isinstance(cls, type) and issubclass(cls, np.ndarray)):
            raise pickle.UnpicklingError(
                f"Refused to rebuild an object of class {cls!r}."
            )
        return reconstructor(cls, base, state)

    return rebuild


def load_pickle(path):
    """Loads a dataset pickle with `RestrictedUnpickler`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, not a pickle, or names a global
            that is not allowed (the message names the file and the cause).
    """
    try:
        with open(path, "rb") as f:
            payload = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"No such dataset file: {path}") from None
    try:
        return RestrictedUnpickler(
            io.BytesIO(payload), encoding="latin1"
        ).load()
    except pickle.UnpicklingError as error:
        if str(error).startswith("Refused"):
            raise ValueError(f"{path}: {error}") from error
        raise ValueError(
            f"{path} is not a complete pickle (truncated or corrupt: {error})."
        ) from error
    except (EOFError, ValueError, TypeError, IndexError, KeyError) as error:
        raise ValueError(
            f"{path} is not a complete pickle (truncated or corrupt: "
            f"{type(error).__name__}: {error})."
        ) from error
