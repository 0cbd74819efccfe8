"""The Bernoulli-Bernoulli RBM (seed section 2).

The seed writes ``p(v, h) = exp(E(v, h)) / Z`` with the *negative* energy
``E`` of eq. 2.3; jrbm's ``energy`` is the physical energy, ``-E``:

    energy(v, h) = -v^T W h - b^T v - c^T h = U(v) - h^T x(v),
    U(v) = -b^T v,   x(v) = c + W^T v   (the hidden logits).

Everything a BB-RBM needs beyond that split is here, in the shape of the
family protocol of :mod:`jrbm.model`: the visible conditional (eq. 2.19), the
marginal over the visible layer for a fixed ``h`` (eq. 2.18), and the
hand-derived derivatives of the two free energies (eqs. 2.11-2.13), which
:func:`jrbm.exact.grad` and the estimators use instead of autodiff.

Visible data need not be binary for the conditionals, the free energy and the
gradient estimators: they are the usual formulas evaluated at real ``v`` (the
mean-field use of greyscale data in ``[0, 1]``). Likelihoods are defined only
for binary ``v``, and :mod:`jrbm.exact` checks it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from jrbm.params import BernoulliRBM

binary_visible = True
visible_name = "Bernoulli"


def check_params(params: BernoulliRBM) -> None:
    """No constraints beyond the shapes checked by :mod:`jrbm.model`."""


def visible_energy(params: BernoulliRBM, v: Array) -> Array:
    """``U(v) = -b^T v``: the part of the energy that does not touch ``h``."""
    return -(v @ params.b)


def hidden_input(params: BernoulliRBM, v: Array) -> Array:
    """Hidden logits ``x_j = c_j + sum_i v_i w_ij`` (eqs. 2.10, 2.13)."""
    return v @ params.W + params.c


def visible_logits(params: BernoulliRBM, h: Array) -> Array:
    """Visible logits ``b_i + sum_j w_ij h_j`` (eq. 2.19)."""
    return h @ params.W.T + params.b


def visible_mean(params: BernoulliRBM, h: Array) -> Array:
    """``P(v_i = 1 | h) = sigmoid(b_i + sum_j w_ij h_j)`` (eq. 2.19)."""
    return jax.nn.sigmoid(visible_logits(params, h))


def visible_noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    """The randomness of a draw of ``v ~ p(v | h)`` for visible states of ``shape``: uniforms in ``[0, 1)``.

    With :func:`visible_given_noise`, it lets a chain draw the noise of many
    sweeps in one call (:func:`jrbm.sampling.negative_phase`).
    """
    return jax.random.uniform(key, shape, dtype)


def visible_given_noise(params: BernoulliRBM, h: Array, noise: Array) -> Array:
    """``v ~ p(v | h)`` from :func:`visible_noise`: ``v_i = 1`` where ``u_i < P(v_i = 1 | h)`` (eq. 2.19)."""
    p = visible_mean(params, h)
    return (noise < p).astype(p.dtype)


def hidden_free_energy(params: BernoulliRBM, h: Array) -> Array:
    """``-log sum_v exp(-energy(v, h)) = -c^T h - sum_i softplus(b_i + (W h)_i)`` (eq. 2.18)."""
    return -(h @ params.c) - jnp.sum(jax.nn.softplus(visible_logits(params, h)), axis=-1)


def softplus_form(params: BernoulliRBM, layer: str) -> tuple[Array, Array, Array]:
    """``(d, e, M)`` with ``log weight(s) = s^T d + sum_k softplus(e_k + (s^T M)_k)`` for a state ``s`` of ``layer``.

    The log-weights that :mod:`jrbm.exact` sums: ``-free_energy(v)`` for the
    visible layer (eq. 2.9: ``d = b``, ``e = c``, ``M = W``) and
    ``-hidden_free_energy(h)`` for the hidden layer (eq. 2.18: ``d = c``,
    ``e = b``, ``M = W^T``). Both are affine in ``s`` inside the softplus, which
    lets the enumeration split a state's index into two halves.
    """
    if layer == "visible":
        return params.b, params.c, params.W
    return params.c, params.b, params.W.T


def visible_log_partition(params: BernoulliRBM) -> Array:
    """``log sum_v exp(-U(v)) = sum_i softplus(b_i)``: log Z of the model with ``W = 0``, ``c = 0``, less ``J log 2``."""
    return jnp.sum(jax.nn.softplus(params.b))


def free_energy_grad(params: BernoulliRBM, v: Array, p_h: Array, weights: Array) -> BernoulliRBM:
    """``sum_n weights_n * d free_energy(v_n) / d params``, by eqs. 2.11-2.13.

    ``free_energy = -E_{h|v}[E_seed]`` differentiated is minus the seed's
    conditional expectations: ``-v_i p_j``, ``-v_i`` and ``-p_j`` with
    ``p = p_h_given_v(v)`` (passed in, so that callers can share the product).
    """
    wv = v * weights[:, None]
    return BernoulliRBM(W=-(wv.T @ p_h), b=-jnp.sum(wv, axis=0), c=-(weights @ p_h))


def hidden_free_energy_grad(params: BernoulliRBM, h: Array, weights: Array) -> BernoulliRBM:
    """``sum_n weights_n * d hidden_free_energy(h_n) / d params``.

    With ``q = P(v = 1 | h)`` (eq. 2.19): ``-q_i h_j``, ``-q_i`` and ``-h_j``.
    """
    q = visible_mean(params, h)
    wq = q * weights[:, None]
    return BernoulliRBM(W=-(wq.T @ h), b=-jnp.sum(wq, axis=0), c=-(weights @ h))


def interpolate(base: BernoulliRBM, params: BernoulliRBM, beta) -> BernoulliRBM:
    """The RBM whose energy is ``(1 - beta) U_base(v) + beta energy(v, h)``.

    ``W' = beta W``, ``b' = (1 - beta) b_base + beta b``, ``c' = beta c``: the
    intermediate distributions of AIS and parallel tempering (``base`` has
    ``W = 0``; ``b_base = 0`` gives plain tempering ``beta * energy``).
    """
    return BernoulliRBM(W=beta * params.W, b=(1 - beta) * base.b + beta * params.b, c=beta * params.c)


def base_rate(params: BernoulliRBM, data: Array | None) -> BernoulliRBM:
    """A visible-only model (``W = 0``, ``c = 0``) with the data's marginals, or uniform without data."""
    if data is None:
        b = jnp.zeros_like(params.b)
    else:
        p = jnp.clip(jnp.mean(jnp.asarray(data, params.b.dtype), axis=0), 1e-3, 1 - 1e-3)
        b = jnp.log(p) - jnp.log1p(-p)
    return BernoulliRBM(W=jnp.zeros_like(params.W), b=b, c=jnp.zeros_like(params.c))
