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

import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_default_matmul_precision", "highest")


def pytest_report_header(config):
    import jrbm

    return f"jrbm {jrbm.__version__} from {jrbm.__file__}; jax {jax.__version__} on {jax.default_backend()}"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Plain ``pytest`` runs on every core (pytest-xdist's ``-n auto``) without putting ``-n`` in addopts,
    so that ``pytest -p no:xdist`` and ``pytest -n 0`` (or ``-n 4``) work as pytest users expect."""
    if hasattr(config, "workerinput") or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # an xdist worker: never start workers of its own
    if config.pluginmanager.has_plugin("xdist") and getattr(config.option, "numprocesses", None) is None \
            and getattr(config.option, "dist", "no") == "no" and not getattr(config.option, "collectonly", False):
        config.option.numprocesses = "auto"
