"""The Gaussian-Bernoulli RBM (seed section 3), one ``a_i`` per visible unit.

The seed's negative energy (eq. 3.3) with ``a_i = exp(-log_sigma_i)``:

    E_seed(v, h) = sum_ij a_i v_i w_ij h_j - sum_i a_i^2 / 2 (v_i - b_i)^2 + c^T h,

and jrbm's ``energy`` is ``-E_seed = U(v) - h^T x(v)`` with

    U(v) = sum_i a_i^2 / 2 (v_i - b_i)^2,   x_j(v) = c_j + sum_i a_i v_i w_ij.

So ``P(h_j = 1 | v) = sigmoid(x_j)`` (eq. 3.10) and
``v_i | h ~ Normal(b_i + (W h)_i / a_i, std = 1 / a_i)`` (eq. 3.19). The
integral over ``v`` for fixed ``h`` (eq. 3.18) is Gaussian:

    log integral exp(-energy(v, h)) dv = c^T h + sum_i [a_i b_i m_i + m_i^2 / 2
                                         + log(sqrt(2 pi) / a_i)],  m = W h.

Printed typos of the seed this module corrects: eq. 3.10's product runs over
``j = 1..J`` (printed ``i``); the exponent of eq. 3.18 is
``(2 a b_i + m_i) m_i / 2`` (printed with ``m_i`` repeated); and eq. 3.15 is
the difference of the two expectations of ``a^2 (v_i - b_i)``, where the
``a^2 b_i`` terms cancel, so it equals ``a^2 v_i - E[a^2 u_i]``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import Array

from jrbm.params import GaussianRBM

binary_visible = False
visible_name = "Gaussian"
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def check_params(params: GaussianRBM) -> None:
    """``log_sigma`` must have one entry per visible unit (checked by :mod:`jrbm.model`)."""


def _a(params: GaussianRBM) -> Array:
    return jnp.exp(-params.log_sigma)


def visible_energy(params: GaussianRBM, v: Array) -> Array:
    """``U(v) = sum_i a_i^2 / 2 (v_i - b_i)^2`` (the quadratic term of eq. 3.3)."""
    z = (v - params.b) * _a(params)
    return 0.5 * jnp.sum(z * z, axis=-1)


def hidden_input(params: GaussianRBM, v: Array) -> Array:
    """Hidden logits ``x_j = c_j + sum_i a_i v_i w_ij`` (eqs. 3.10, 3.13)."""
    return (v * _a(params)) @ params.W + params.c


def visible_mean(params: GaussianRBM, h: Array) -> Array:
    """``E[v_i | h] = b_i + (W h)_i / a_i`` (eq. 3.19)."""
    return params.b + (h @ params.W.T) * jnp.exp(params.log_sigma)


def visible_noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    """The randomness of a draw of ``v ~ p(v | h)`` for visible states of ``shape``: standard normals."""
    return jax.random.normal(key, shape, dtype)


def visible_given_noise(params: GaussianRBM, h: Array, noise: Array) -> Array:
    """``v ~ p(v | h)`` from :func:`visible_noise`: ``v_i = E[v_i | h] + sigma_i z_i`` (eq. 3.19)."""
    return visible_mean(params, h) + jnp.exp(params.log_sigma) * noise


def hidden_free_energy(params: GaussianRBM, h: Array) -> Array:
    """``-log integral exp(-energy(v, h)) dv`` by eq. 3.18 (corrected exponent)."""
    m = h @ params.W.T
    quad = jnp.sum(_a(params) * params.b * m + 0.5 * m * m, axis=-1)
    return -(h @ params.c) - quad - jnp.sum(_HALF_LOG_2PI + params.log_sigma)


def visible_log_partition(params: GaussianRBM) -> Array:
    """``log integral exp(-U(v)) dv = sum_i log(sqrt(2 pi) sigma_i)``."""
    return jnp.sum(_HALF_LOG_2PI + params.log_sigma)


def free_energy_grad(params: GaussianRBM, v: Array, p_h: Array, weights: Array) -> GaussianRBM:
    """``sum_n weights_n * d free_energy(v_n) / d params`` (eqs. 3.11-3.13, and ``log_sigma``).

    With ``a = exp(-log_sigma)`` and ``p = p_h_given_v(v)``: ``-a_i v_i p_j``,
    ``-a_i^2 (v_i - b_i)``, ``-p_j`` and, for ``log_sigma_i``,
    ``-a_i^2 (v_i - b_i)^2 + a_i v_i (W p)_i``.
    """
    a = _a(params)
    av = v * a
    d = v - params.b
    wav = av * weights[:, None]
    W = -(wav.T @ p_h)
    b = -(a * a) * (weights @ d)
    c = -(weights @ p_h)
    log_sigma = weights @ (-(a * a) * d * d + av * (p_h @ params.W.T))
    return GaussianRBM(W=W, b=b, c=c, log_sigma=log_sigma)


def hidden_free_energy_grad(params: GaussianRBM, h: Array, weights: Array) -> GaussianRBM:
    """``sum_n weights_n * d hidden_free_energy(h_n) / d params``.

    With ``m = W h``: ``-(a_i b_i + m_i) h_j``, ``-a_i m_i``, ``-h_j`` and
    ``a_i b_i m_i - 1`` for ``log_sigma_i``. These are the model expectations of
    eqs. 3.14-3.16 with ``E[v_i | h]`` and ``E[(v_i - b_i)^2 | h]`` of eq. 3.19
    done analytically.
    """
    a = _a(params)
    m = h @ params.W.T
    wm = m * weights[:, None]
    W = -(((a * params.b) * weights[:, None] + wm).T @ h)
    b = -a * jnp.sum(wm, axis=0)
    c = -(weights @ h)
    log_sigma = a * params.b * jnp.sum(wm, axis=0) - jnp.sum(weights)
    return GaussianRBM(W=W, b=b, c=c, log_sigma=log_sigma)


def interpolate(base: GaussianRBM, params: GaussianRBM, beta) -> GaussianRBM:
    """The GB-RBM whose energy is ``(1 - beta) U_base(v) + beta energy(v, h)`` up to a constant.

    The two quadratics add to one with precision
    ``alpha = (1 - beta) a_base^2 + beta a^2`` and centre
    ``((1 - beta) a_base^2 b_base + beta a^2 b) / alpha``; the interaction
    ``beta a_i v_i w_ij h_j`` is kept by ``W'_ij = beta a_i w_ij / sqrt(alpha_i)``.
    Proper for every ``beta`` in ``[0, 1]`` because the base is.
    """
    a2_base = jnp.exp(-2 * base.log_sigma)
    a2 = jnp.exp(-2 * params.log_sigma)
    alpha = (1 - beta) * a2_base + beta * a2
    b = ((1 - beta) * a2_base * base.b + beta * a2 * params.b) / alpha
    W = (beta * jnp.sqrt(a2 / alpha))[:, None] * params.W
    return GaussianRBM(W=W, b=b, c=beta * params.c, log_sigma=-0.5 * jnp.log(alpha))


def base_rate(params: GaussianRBM, data: Array | None) -> GaussianRBM:
    """A visible-only model (``W = 0``, ``c = 0``) with the data's mean and std (or the model's own ``b``, ``sigma``)."""
    if data is None:
        b, log_sigma = params.b, params.log_sigma
    else:
        data = jnp.asarray(data, params.b.dtype)
        b = jnp.mean(data, axis=0)
        log_sigma = jnp.log(jnp.maximum(jnp.std(data, axis=0), 1e-3))
    return GaussianRBM(W=jnp.zeros_like(params.W), b=b, c=jnp.zeros_like(params.c), log_sigma=log_sigma)
