"""Double-ReLU (dReLU) units: real states with a different quadratic on each side of 0.

    U(x) = gamma_pos x_+^2 / 2 + gamma_neg x_-^2 / 2 - theta_pos x_+ - theta_neg x_-,

``x_+ = max(x, 0)``, ``x_- = min(x, 0)``, ``gamma_* = exp(log_gamma_*)`` (Tubiana, Cocco and Monasson,
eLife 2019). With input ``I``, ``p(x | I) ∝ exp(-U(x) + I x)`` is a two-piece mixture: on ``x >= 0``
the :class:`jrbm.layers.relu.ReLU` density of field ``m_pos = theta_pos + I`` and precision
``gamma_pos``, and on ``x <= 0`` the mirror image (``-x`` a ReLU of field ``m_neg = -(theta_neg + I)``
and precision ``gamma_neg``). With ``L(m, gamma) = log int_0^inf exp(-gamma x^2 / 2 + m x) dx``
(:func:`jrbm.layers._truncnorm.log_partition`),

    cgf(I)     = sum logaddexp(L_pos, L_neg),   L_pos = L(m_pos, gamma_pos), L_neg = L(m_neg, gamma_neg),
    P(x > 0)   = exp(L_pos - cgf) = sigmoid(L_pos - L_neg),
    E[x | I]   = P(x > 0) E_ReLU(m_pos, gamma_pos) - P(x < 0) E_ReLU(m_neg, gamma_neg).

The density is continuous at 0 (both pieces equal 1 there before normalisation). With
``theta_pos = theta_neg`` and ``gamma_pos = gamma_neg`` the unit is Gaussian.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import Array

from jrbm.layers import _truncnorm, base


class dReLU(NamedTuple):
    """``n`` real units with fields ``theta_pos``, ``theta_neg`` and log precisions ``log_gamma_pos``, ``log_gamma_neg``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers.drelu import dReLU
      >>> layer = dReLU.init(2)
      >>> [round(v, 6) for v in layer.mean(jnp.array([0.0, 1.0])).tolist()]
      [0.0, 1.0]
    """

    theta_pos: Array
    theta_neg: Array
    log_gamma_pos: Array
    log_gamma_neg: Array

    @classmethod
    def init(cls, n: int, dtype=None) -> "dReLU":
        """``n`` units with zero fields and ``gamma_pos = gamma_neg = 1`` (standard normal)."""
        z = base.zeros((n,), dtype)
        return cls(z, jnp.zeros_like(z), jnp.zeros_like(z), jnp.zeros_like(z))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta_pos.shape)

    def energy(self, x: Array) -> Array:
        xp = jnp.maximum(x, 0)
        xn = jnp.minimum(x, 0)
        u = (0.5 * jnp.exp(self.log_gamma_pos) * xp - self.theta_pos) * xp
        u = u + (0.5 * jnp.exp(self.log_gamma_neg) * xn - self.theta_neg) * xn
        return jnp.sum(u, axis=-1)

    def statistic(self, x: Array) -> Array:
        return x

    def _pieces(self, inputs: Array) -> tuple[Array, Array, Array, Array]:
        """``(m_pos, log_gamma_pos, m_neg, log_gamma_neg)`` broadcast to the inputs' shape."""
        return tuple(jnp.broadcast_arrays(
            self.theta_pos + inputs, self.log_gamma_pos, -(self.theta_neg + inputs), self.log_gamma_neg))

    def _log_partitions(self, inputs: Array) -> tuple[Array, Array]:
        """``(L_pos, L_neg)`` per unit."""
        m_pos, lg_pos, m_neg, lg_neg = self._pieces(inputs)
        return _truncnorm.log_partition(m_pos, lg_pos), _truncnorm.log_partition(m_neg, lg_neg)

    def positive_probability(self, inputs: Array) -> Array:
        """``P(x > 0 | inputs) = sigmoid(L_pos - L_neg)`` per unit."""
        l_pos, l_neg = self._log_partitions(inputs)
        return jax.nn.sigmoid(l_pos - l_neg)

    def cgf(self, inputs: Array) -> Array:
        """``sum logaddexp(L_pos, L_neg)``."""
        l_pos, l_neg = self._log_partitions(inputs)
        return jnp.sum(jnp.logaddexp(l_pos, l_neg), axis=-1)

    def mean(self, inputs: Array) -> Array:
        """``p E_ReLU(m_pos, gamma_pos) - (1 - p) E_ReLU(m_neg, gamma_neg)``, ``p = P(x > 0 | inputs)``."""
        m_pos, lg_pos, m_neg, lg_neg = self._pieces(inputs)
        p = jax.nn.sigmoid(_truncnorm.log_partition(m_pos, lg_pos) - _truncnorm.log_partition(m_neg, lg_neg))
        return p * _truncnorm.mean(m_pos, lg_pos) - (1 - p) * _truncnorm.mean(m_neg, lg_neg)

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """Two uniforms in ``(0, 1)`` per unit (:func:`jrbm.layers._truncnorm.open_uniform`): shape
        ``batch_shape + (n, 2)``; ``[..., 0]`` picks the side, ``[..., 1]`` draws within it."""
        return _truncnorm.open_uniform(key, tuple(batch_shape) + self.shape + (2,), dtype)

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        """``x > 0`` when ``noise[..., 0] <= P(x > 0 | inputs)``, then ``x = +-`` the ReLU draw of that side
        (:meth:`jrbm.layers.relu.ReLU.sample_given_noise`, exact in the tails) at ``noise[..., 1]``."""
        m_pos, lg_pos, m_neg, lg_neg = self._pieces(inputs)
        p = jax.nn.sigmoid(_truncnorm.log_partition(m_pos, lg_pos) - _truncnorm.log_partition(m_neg, lg_neg))
        pos = noise[..., 0] <= p
        draw = _truncnorm.sample(jnp.where(pos, m_pos, m_neg), jnp.where(pos, lg_pos, lg_neg), noise[..., 1])
        return jnp.where(pos, draw, -draw)

    def unit_states(self) -> None:
        return None

    def shifted(self, inputs: Array) -> "dReLU":
        """The layer whose energy is ``U(x) - <inputs, s(x)>``: ``theta_pos + inputs``, ``theta_neg + inputs``."""
        return dReLU(self.theta_pos + inputs, self.theta_neg + inputs, self.log_gamma_pos, self.log_gamma_neg)

    def check(self, name: str) -> None:
        base.check_leaves(self, name)
        base.check_log_scales(self, name, ("log_gamma_pos", "log_gamma_neg"))

    def check_data(self, name: str, x) -> None:
        """Any finite real value (finiteness is checked for every layer)."""

    def from_data(self, data: Optional[Array]) -> "dReLU":
        """The Gaussian with the data's mean and variance (floored at 1e-6) per unit, as a dReLU with equal
        sides: ``gamma_pos = gamma_neg = 1 / var``, ``theta_pos = theta_neg = mean / var``. Without data:
        zero fields and the layer's own ``log_gamma_pos``, ``log_gamma_neg``."""
        if data is None:
            return dReLU(jnp.zeros_like(self.theta_pos), jnp.zeros_like(self.theta_neg), self.log_gamma_pos, self.log_gamma_neg)
        x = jnp.asarray(data, self.theta_pos.dtype).reshape((-1,) + self.shape)
        var = jnp.maximum(jnp.var(x, axis=0), 1e-6)
        theta = jnp.mean(x, axis=0) / var
        log_gamma = -jnp.log(var)
        return dReLU(theta, theta, log_gamma, log_gamma)

    def interpolate(self, base_layer: "dReLU", beta) -> tuple["dReLU", Array]:
        """Each side's energy interpolates on its own: ``gamma_beta = (1 - beta) gamma_base + beta gamma`` (per side,
        the gammas, not their logs) and ``theta_beta = (1 - beta) theta_base + beta theta``; ``scale = 1``."""

        def lin(a, b):
            return (1 - beta) * a + beta * b

        return dReLU(
            lin(base_layer.theta_pos, self.theta_pos),
            lin(base_layer.theta_neg, self.theta_neg),
            jnp.log(lin(jnp.exp(base_layer.log_gamma_pos), jnp.exp(self.log_gamma_pos))),
            jnp.log(lin(jnp.exp(base_layer.log_gamma_neg), jnp.exp(self.log_gamma_neg))),
        ), jnp.ones((), self.theta_pos.dtype)
