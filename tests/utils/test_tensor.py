import keras
import numpy as np
from scipy.stats import norm

from keras_robult.utils.tensor import gelu
from tests.conftest import to_numpy


def test_gelu_is_the_exact_gelu():
    """`x * Phi(x)` (SciPy's normal CDF, float64) to float32 rounding, the
    values of Keras' exact GELU, and its derivative
    `Phi(x) + x * phi(x)`."""
    x = np.concatenate(
        [np.linspace(-8, 8, 401), [-30.0, -1e-3, 0.0, 1e-3, 30.0]]
    ).astype("float32")
    expected = x.astype("float64") * norm.cdf(x.astype("float64"))
    got = to_numpy(gelu(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        got,
        to_numpy(keras.activations.gelu(x, approximate=False)),
        rtol=1e-5,
        atol=1e-6,
    )
    slope = norm.cdf(x) + x * norm.pdf(x)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad = jax.vmap(jax.grad(lambda v: gelu(v)))(x)
    elif backend == "tensorflow":
        import tensorflow as tf

        variable = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(variable)
            value = tf.reduce_sum(gelu(variable))
        grad = tape.gradient(value, variable)
    else:
        import torch

        variable = torch.tensor(x, requires_grad=True)
        gelu(variable).sum().backward()
        grad = variable.grad
    np.testing.assert_allclose(to_numpy(grad), slope, rtol=1e-4, atol=1e-5)
