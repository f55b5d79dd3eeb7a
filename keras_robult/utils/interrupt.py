"""Ctrl-C that stops a Keras loop on every backend.

Keras' JAX trainer waits for each step's result inside
`keras.src.utils.python_utils.pythonify_logs`, whose bare `except:` turns
a `KeyboardInterrupt` raised there into a silently skipped log value: a
Ctrl-C during `fit` on JAX was lost and the run trained to its last
epoch. `interruptible()` records the interruption in a flag of its own as
well, and `InterruptCheck`, a callback, raises it again at the next batch
or epoch boundary, outside Keras' `except`. The last finished epoch's
backup (if any) is what remains, as after a Ctrl-C on TensorFlow.
"""

import contextlib
import signal
import threading

import keras


class InterruptCheck(keras.callbacks.Callback):
    """Raises `KeyboardInterrupt` at the first batch or epoch boundary
    after a SIGINT that `interruptible()` recorded."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def _check(self, *args, **kwargs):
        if self.state["interrupted"]:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = _check
    on_epoch_begin = on_epoch_end = _check


@contextlib.contextmanager
def interruptible():
    """A context in which a SIGINT both raises `KeyboardInterrupt` (as
    Python's default handler does) and is recorded, so that the
    `InterruptCheck` callback it yields raises it again if Keras swallowed
    it. Yields None (nothing to add) off the main thread or where the
    program installed a SIGINT handler of its own, which is left alone."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield None
        return
    state = {"interrupted": False}

    def handler(signum, frame):
        state["interrupted"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield InterruptCheck(state)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
