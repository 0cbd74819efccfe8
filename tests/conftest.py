"""Strict numerics for the whole suite.

float64 is enabled (the exactness tests need it; float32 is tested by passing
``dtype=jnp.float32`` explicitly), and dtype promotion is strict so that a
silent float32/float64 mix anywhere in the library fails a test. Rank promotion
stays allowed: the model functions broadcast the biases over any leading batch
shape by design.

float32 matrix products run at full float32 precision on every backend: on
recent GPUs JAX's default may use TF32 (a 10-bit mantissa) for them, and the
float32 tolerances here assume IEEE float32 arithmetic (the README states what
the library promises across backends).
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_default_matmul_precision", "highest")


def pytest_report_header(config):
    import jrbm

    return f"jrbm {jrbm.__version__} from {jrbm.__file__}; jax {jax.__version__} on {jax.default_backend()}"
