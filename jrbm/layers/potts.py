"""Potts units: each of ``n`` units takes one of ``q`` states, stored one-hot.

A state is an ``(n, q)`` array ``x`` with ``x_ik = 1`` when unit ``i`` is in
state ``k`` (one 1 per row), ``U(x) = -sum_{i,k} theta_ik x_ik`` and the
coupling statistic is ``x`` itself, so ``W`` has shape ``(n, q) + other.shape``
on the visible side (as in the Potts RBMs of Tubiana, Cocco and Monasson,
eLife 2019). With input ``I`` (shape ``(n, q)``) the units are independent with

    P(x_i = k | I) = softmax_k(theta_ik + I_ik),
    cgf(I) = sum_i logsumexp_k(theta_ik + I_ik).

Because ``sum_k x_ik = 1``, adding ``c_i`` to every ``theta_ik`` of unit ``i``
only adds a constant to the energy: the parameters have a gauge freedom, which
:func:`zero_sum_gauge` fixes (``sum_k theta_ik = 0`` and likewise for ``W``)
without changing the model's distribution. :func:`one_hot` turns integer codes
into states.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jrbm import _checks
from jrbm.layers import base


def _default_dtype(dtype):
    return jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)


def one_hot(codes, q: int, dtype=None) -> Array:
    """One-hot Potts states from integer codes: ``(..., n)`` with values in ``[0, q)`` -> ``(..., n, q)``.

    ``dtype`` is the float dtype of the result (the default float dtype when ``None``).
    The range of concrete ``codes`` is checked; under ``jit`` only the dtype is.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers.potts import one_hot
      >>> one_hot(jnp.array([2, 0]), 3).tolist()
      [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    q = _checks.positive_int("q", q)
    if not hasattr(codes, "dtype"):
        codes = np.asarray(codes)
    if not jnp.issubdtype(codes.dtype, jnp.integer):
        raise TypeError(f"codes: expected an integer array of state indices in [0, {q}), got dtype {codes.dtype}")
    if jnp.ndim(codes) < 1:
        raise ValueError(f"codes: expected shape (..., n) with at least one dimension, got shape {tuple(jnp.shape(codes))}")
    if _checks.is_concrete(codes):
        a = np.asarray(codes)
        bad = (a < 0) | (a >= q)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"codes: expected state indices in [0, q) = [0, {q}), got {a[idx]} at index {idx}")
    dtype = _default_dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
    codes = jnp.asarray(codes)
    return (codes[..., None] == jnp.arange(q, dtype=codes.dtype)).astype(dtype)


class Potts(NamedTuple):
    """``n`` Potts units of ``q`` states with fields ``theta`` of shape ``(n, q)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers import Potts
      >>> layer = Potts.init(2, 4)
      >>> layer.shape, layer.mean(jnp.zeros((2, 4)))[0].tolist()
      ((2, 4), [0.25, 0.25, 0.25, 0.25])
    """

    theta: Array

    @classmethod
    def init(cls, n: int, q: int, dtype=None) -> "Potts":
        """``n`` units of ``q`` states with ``theta = 0`` (uniform over the states)."""
        return cls(base.zeros((n, q), dtype))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape)

    @property
    def q(self) -> int:
        """The number of states per unit."""
        return int(self.theta.shape[-1])

    def energy(self, x: Array) -> Array:
        return base.linear_energy(x, self.theta)

    def statistic(self, x: Array) -> Array:
        return x

    def logits(self, inputs: Array) -> Array:
        """``theta + inputs``: ``P(x_i = k | inputs) = softmax_k`` of these."""
        return self.theta + inputs

    def cgf(self, inputs: Array) -> Array:
        """``sum_i logsumexp_k(theta_ik + inputs_ik)``."""
        return jnp.sum(jax.nn.logsumexp(self.theta + inputs, axis=-1), axis=-1)

    def cgf_difference(self, inputs0: Array, inputs1: Array) -> Array:
        """``cgf(inputs1) - cgf(inputs0)``; per unit ``log sum_k p_k exp(d_k) = log1p(sum_k p_k expm1(d_k))``
        (``p = softmax(theta + inputs0)``, ``d = inputs1 - inputs0``) when every ``|d_k| < 1``, accurate to
        rounding of ``d`` itself, and the plain difference otherwise."""
        z0 = self.theta + inputs0
        d = inputs1 - inputs0
        small = jnp.all(jnp.abs(d) < 1, axis=-1)

        def accurate():
            p = jax.nn.softmax(z0, axis=-1)
            return jnp.log1p(jnp.sum(p * jnp.expm1(jnp.where(small[..., None], d, 0)), axis=-1))

        def plain():
            return jax.nn.logsumexp(z0 + d, axis=-1) - jax.nn.logsumexp(z0, axis=-1)

        return jnp.sum(base.where_small(small, accurate, plain), axis=-1)

    def mean(self, inputs: Array) -> Array:
        """``E[x_ik | inputs] = softmax_k(theta_ik + inputs_ik)``."""
        return jax.nn.softmax(self.theta + inputs, axis=-1)

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """One uniform in ``[0, 1)`` per unit: shape ``batch_shape + (n,)``."""
        return jax.random.uniform(key, tuple(batch_shape) + self.shape[:1], dtype)

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        """Inverse CDF per unit: state ``k`` = the number of cumulative probabilities ``<= u * total``
        (``total`` the last one, about 1), so state ``k`` takes ``u * total`` in ``[cdf_{k-1}, cdf_k)``.
        ``k`` is clipped to the last state of nonzero probability (a safeguard: ``u < 1`` keeps
        ``u * total < total`` under round-to-nearest, so a trailing state whose probability underflowed
        to 0 is never drawn); the result is exactly one-hot, in the inputs' dtype."""
        p = self.mean(inputs)
        cdf = jnp.cumsum(p, axis=-1)
        u = noise[..., None] * cdf[..., -1:]
        last = self.q - 1 - jnp.argmax(p[..., ::-1] > 0, axis=-1)
        k = jnp.minimum(jnp.sum(cdf <= u, axis=-1), last)
        return (k[..., None] == jnp.arange(self.q, dtype=k.dtype)).astype(p.dtype)

    def unit_states(self) -> Array:
        """The ``q`` one-hot states of one unit: ``eye(q)``."""
        return jnp.eye(self.q)

    def shifted(self, inputs: Array) -> "Potts":
        """The layer whose energy is ``U(x) - <inputs, s(x)>``: ``theta + inputs``."""
        return Potts(self.theta + inputs)

    def check(self, name: str) -> None:
        base.check_leaves(self, name, ndim=2)

    def check_data(self, name: str, x) -> None:
        hint = "; encode integer codes (..., n) with jrbm.layers.potts.one_hot(codes, q)"
        base.check_values(name, x, lambda a: (a == 0) | (a == 1), "one-hot entries (0 or 1)", "Potts", hint)
        if _checks.is_concrete(x):
            sums = np.sum(np.asarray(x), axis=-1)
            base.check_values(
                name, sums, lambda s: s == 1, "one 1 per unit (each row of q entries summing to 1)", "Potts",
                f"{hint}; the index is that of the unit (row), the value its row sum",
            )

    def from_data(self, data: Optional[Array]) -> "Potts":
        """``theta_ik = log f_ik - mean_k log f_ik`` with ``f`` the data's state frequencies clipped at 1e-3
        and renormalised (the zero-sum gauge); ``theta = 0`` without data."""
        if data is None:
            return Potts(jnp.zeros_like(self.theta))
        f = jnp.maximum(base.data_mean(self, data), 1e-3)
        logf = jnp.log(f / jnp.sum(f, axis=-1, keepdims=True))
        return Potts(logf - jnp.mean(logf, axis=-1, keepdims=True))

    def interpolate(self, base_layer: "Potts", beta) -> tuple["Potts", Array]:
        """``theta_beta = (1 - beta) theta_base + beta theta``, ``scale = 1``."""
        return Potts((1 - beta) * base_layer.theta + beta * self.theta), jnp.ones((), self.theta.dtype)


def zero_sum_gauge(params):
    """The same model (the same ``p(v, h)``) with every Potts layer and ``W``'s Potts axes in the zero-sum gauge.

    ``params`` is a model with ``visible``, ``hidden`` and ``W`` (:class:`jrbm.RBM`); the energy is
    ``U_vis(v) + U_hid(h) - <s_vis(v), W, s_hid(h)>``. For a Potts visible layer (``W`` of shape
    ``(n, q) + hidden.shape``) write ``W_ik. = W'_ik. + m_i.`` with ``m_i. = mean_k W_ik.``; since
    ``sum_k v_ik = 1``,

        <v, W, s(h)> = <v, W', s(h)> + <c, s(h)>,    c = sum_i m_i.  (shape hidden.shape),

    so the centred ``W'`` with the hidden layer ``hidden.shifted(c)`` (energy ``U_hid(h) - <c, s(h)>``)
    gives the same energy. Likewise a Potts hidden layer (``W`` of shape ``visible.shape + (m, q)``):
    centre ``W`` over its last axis and shift the visible layer by ``d = sum_mu mean_l W_..mu l``.
    When both layers are Potts the two steps run in turn (the second keeps the first's centring,
    since ``mean_k mean_l W' = 0``). Finally each Potts ``theta_ik`` becomes ``theta_ik - mean_k theta_ik``,
    which changes the energy by a constant only. Models without Potts layers are returned as they are.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers import Bernoulli, Potts
      >>> from jrbm.layers.potts import zero_sum_gauge
      >>> from jrbm.params import RBM
      >>> params = RBM(Potts(jnp.ones((2, 3))), Bernoulli.init(2), jnp.arange(12.0).reshape(2, 3, 2))
      >>> gauged = zero_sum_gauge(params)
      >>> gauged.visible.theta.tolist()[0], gauged.W[0, :, 0].tolist(), gauged.hidden.theta.tolist()
      ([0.0, 0.0, 0.0], [-2.0, 0.0, 2.0], [10.0, 12.0])
    """
    visible, hidden, W = params.visible, params.hidden, params.W
    vis_potts, hid_potts = isinstance(visible, Potts), isinstance(hidden, Potts)
    if not (vis_potts or hid_potts):
        return params
    if vis_potts:
        m = jnp.mean(W, axis=1, keepdims=True)  # (n, 1) + hidden.shape
        W = W - m
        hidden = hidden.shifted(jnp.sum(m, axis=(0, 1)))
    if hid_potts:
        m = jnp.mean(W, axis=-1, keepdims=True)  # visible.shape + (m, 1)
        W = W - m
        visible = visible.shifted(jnp.sum(m, axis=(-2, -1)))
    if vis_potts:
        visible = Potts(visible.theta - jnp.mean(visible.theta, axis=-1, keepdims=True))
    if hid_potts:
        hidden = Potts(hidden.theta - jnp.mean(hidden.theta, axis=-1, keepdims=True))
    assemble = getattr(params, "assemble", None)
    if callable(assemble):
        return assemble(visible, hidden, W)
    return params._replace(visible=visible, hidden=hidden, W=W)


__all__ = ["Potts", "one_hot", "zero_sum_gauge"]
