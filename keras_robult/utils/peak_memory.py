"""The peak memory of a block of code: host (resident set size, sampled)
and, where the backend runs on a GPU, device memory."""

import os
import resource
import sys
import threading

#: Seconds between two samples of the resident set size.
SAMPLE_INTERVAL = 0.1


def resident_bytes():
    """The process's resident set size now (Linux: `/proc/self/statm`);
    elsewhere its peak so far (`resource.getrusage`)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """Measures the peak memory of the code it wraps.

    The host figure is the largest resident set size of the process seen
    by a thread sampling it every `interval` seconds while the block runs
    (the whole process: the frameworks' own memory included). The device
    figure is the backend's peak of allocated GPU memory during the block
    (JAX: the first GPU's `peak_bytes_in_use` since the process started,
    which JAX does not reset; TensorFlow and torch: reset on entry), or
    None on CPU.

    Args:
        interval: seconds between two host samples.

    Example:

    ```python
    from keras_robult.utils.peak_memory import PeakMemory

    with PeakMemory() as memory:
        buffer = bytearray(50 * 2**20)
    print(memory.host_bytes / 2**20, "MiB")
    ```
    """

    def __init__(self, interval=SAMPLE_INTERVAL):
        self.interval = interval
        self.host_bytes = 0
        self.device_bytes = None
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.host_bytes = max(self.host_bytes, resident_bytes())

    def __enter__(self):
        self.host_bytes = resident_bytes()
        _reset_device_peak()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.host_bytes = max(self.host_bytes, resident_bytes())
        self.device_bytes = _device_peak()
        return False


def _gpu_backend():
    """The Keras backend's name where it computes on a GPU, else None."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return backend if jax.default_backend() == "gpu" else None
        if backend == "torch":
            import torch

            return backend if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            return backend if tf.config.list_logical_devices("GPU") else None
    except Exception:  # a broken driver: no device figure, not a crash
        return None
    return None


def _reset_device_peak():
    backend = _gpu_backend()
    if backend == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")


def _device_peak():
    backend = _gpu_backend()
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    if backend == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated())
    if backend == "tensorflow":
        import tensorflow as tf

        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    return None
