"""Parameter pytrees of the two model families and their initialisers.

The Bernoulli-Bernoulli RBM (BB-RBM) is section 2 of Cheng, "A Beginner's
Tutorial of Restricted Boltzmann Machines" (the seed tutorial); the
Gaussian-Bernoulli RBM (GB-RBM) is its section 3, with one inverse standard
deviation ``a_i = exp(-log_sigma_i)`` per visible unit in place of the seed's
single ``a`` of eq. 3.3 (equal entries give the seed's model exactly).

Parameters are ``NamedTuple``s, so they are pytrees: ``jax.tree.map``,
``jax.vmap`` over a stack of models and ``optax`` work on them unchanged.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks

PRNGKey = Array


class BernoulliRBM(NamedTuple):
    """BB-RBM parameters (seed section 2, eq. 2.3).

    Attributes:
      W: ``(n_visible, n_hidden)`` weights, the seed's ``w_ij``.
      b: ``(n_visible,)`` visible bias.
      c: ``(n_hidden,)`` hidden bias.
    """

    W: Array
    b: Array
    c: Array


class GaussianRBM(NamedTuple):
    """GB-RBM parameters (seed section 3, eq. 3.3 with one ``a_i`` per unit).

    Attributes:
      W: ``(n_visible, n_hidden)`` weights.
      b: ``(n_visible,)`` visible bias: the mean of ``v`` when ``h = 0``.
      c: ``(n_hidden,)`` hidden bias.
      log_sigma: ``(n_visible,)`` log standard deviation of ``v_i | h``; the
        seed's ``a`` is ``exp(-log_sigma)``.
    """

    W: Array
    b: Array
    c: Array
    log_sigma: Array


RBM = BernoulliRBM | GaussianRBM


def shape_of(params: RBM) -> tuple[int, int]:
    """Returns ``(n_visible, n_hidden)`` of a model (or of a stack of models)."""
    return int(params.W.shape[-2]), int(params.W.shape[-1])


def _init_common(key, n_visible, n_hidden, data, weight_std, dtype):
    """Checked sizes, dtype, ``W ~ N(0, weight_std^2)``, ``c = 0``, and the data's column means (or None)."""
    n_visible = _checks.positive_int("n_visible", n_visible)
    n_hidden = _checks.positive_int("n_hidden", n_hidden)
    dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)  # float32, or float64 under x64
    W = weight_std * jax.random.normal(key, (n_visible, n_hidden), dtype)
    mean = None if data is None else np.asarray(_checks.data_matrix("data", data, n_visible), np.float64).mean(axis=0)
    return n_visible, dtype, W, jnp.zeros((n_hidden,), dtype), mean


def init_bernoulli(
    key: PRNGKey,
    n_visible: int,
    n_hidden: int,
    *,
    data: Optional[ArrayLike] = None,
    weight_std: float = 0.01,
    dtype=None,
) -> BernoulliRBM:
    """Initialises a BB-RBM as Hinton's practical guide (section 8) advises.

    ``W ~ Normal(0, weight_std^2)``, ``c = 0``, and ``b = log(p / (1 - p))``
    where ``p`` is the mean of ``data`` clipped to ``[1e-3, 1 - 1e-3]``
    (``b = 0`` without data), so that the initial model already has the
    data's marginals.

    Example:
      >>> import jax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 16, 8)
      >>> params.W.shape
      (16, 8)
    """
    n_visible, dtype, W, c, mean = _init_common(key, n_visible, n_hidden, data, weight_std, dtype)
    if mean is None:
        b = jnp.zeros((n_visible,), dtype)
    else:
        p = np.clip(mean, 1e-3, 1 - 1e-3)
        b = jnp.asarray(np.log(p) - np.log1p(-p), dtype)
    return BernoulliRBM(W, b, c)


def init_gaussian(
    key: PRNGKey,
    n_visible: int,
    n_hidden: int,
    *,
    data: Optional[ArrayLike] = None,
    sigma: float | ArrayLike = 1.0,
    weight_std: float = 0.01,
    dtype=None,
) -> GaussianRBM:
    """Initialises a GB-RBM.

    ``W ~ Normal(0, weight_std^2)``, ``c = 0``, ``b`` the mean of ``data``
    (0 without data) and ``log_sigma = log(sigma)`` (a scalar or one value per
    visible unit). With standardised data, ``sigma = 1`` is the usual choice
    and is kept fixed during training (the seed's "a as a hyper-parameter").

    Example:
      >>> import jax, jrbm
      >>> params = jrbm.init_gaussian(jax.random.key(0), 2, 4, sigma=0.5)
      >>> params.log_sigma.shape
      (2,)
    """
    n_visible, dtype, W, c, mean = _init_common(key, n_visible, n_hidden, data, weight_std, dtype)
    sigma = np.broadcast_to(np.asarray(sigma, np.float64), (n_visible,))
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError(f"sigma: expected positive finite values, got {sigma}")
    b = jnp.zeros((n_visible,), dtype) if mean is None else jnp.asarray(mean, dtype)
    return GaussianRBM(W, b, c, jnp.asarray(np.log(sigma), dtype))
