"""Ising spins: states ``{-1, +1}``, ``U(x) = -theta x``, coupling statistic ``x``.

With input ``I`` the units are independent, with field ``z = theta + I``:

    p(x | I) = exp(z x) / (2 cosh z),    P(x = +1 | I) = sigmoid(2 z),
    E[x | I] = tanh(z),                  cgf(I) = sum log(2 cosh z).

``log(2 cosh z)`` is computed as ``|z| + softplus(-2 |z|)`` (no overflow of
``cosh``, no cancellation). A spin is a Bernoulli unit ``b`` in disguise,
``x = 2 b - 1``: a Spin layer with fields ``theta`` is the Bernoulli layer with
fields ``2 theta`` up to the constant ``sum theta`` in the energy, and a weight
array ``W`` on spins is ``2 W`` on bits (with a shift of the other layer).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import Array

from jrbm.layers import base


def _log_2cosh(z: Array) -> Array:
    """``log(2 cosh z) = |z| + log(1 + exp(-2 |z|))``, finite for every finite ``z``."""
    a = jnp.abs(z)
    return a + jnp.log1p(jnp.exp(-2 * a))


class Spin(NamedTuple):
    """``n`` Ising units ``x in {-1, +1}`` with fields ``theta``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers import Spin
      >>> layer = Spin(jnp.zeros(3))
      >>> layer.mean(jnp.zeros(3)).tolist()
      [0.0, 0.0, 0.0]
    """

    theta: Array

    @classmethod
    def init(cls, n: int, dtype=None) -> "Spin":
        """``n`` units with ``theta = 0`` (each spin up or down with probability 1/2)."""
        return cls(base.zeros((n,), dtype))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape)

    def energy(self, x: Array) -> Array:
        return base.linear_energy(x, self.theta)

    def statistic(self, x: Array) -> Array:
        return x

    def cgf(self, inputs: Array) -> Array:
        """``sum log(2 cosh(theta + inputs))``."""
        return jnp.sum(_log_2cosh(self.theta + inputs), axis=-1)

    def cgf_difference(self, inputs0: Array, inputs1: Array) -> Array:
        """``cgf(inputs1) - cgf(inputs0)``; per unit ``log(cosh(z0 + d) / cosh z0)
        = log1p(2 sinh(d / 2)^2 + tanh(z0) sinh d)`` for ``|d| < 1`` (``d = inputs1 - inputs0``),
        accurate to rounding of ``d`` itself, and the plain difference otherwise."""
        z0 = self.theta + inputs0
        d = inputs1 - inputs0
        small = jnp.abs(d) < 1

        def accurate():
            ds = jnp.where(small, d, 0)
            half = jnp.sinh(ds / 2)
            return jnp.log1p(2 * half * half + jnp.tanh(z0) * jnp.sinh(ds))

        def plain():
            return _log_2cosh(z0 + d) - _log_2cosh(z0)

        return jnp.sum(base.where_small(small, accurate, plain), axis=-1)

    def mean(self, inputs: Array) -> Array:
        """``E[x | inputs] = tanh(theta + inputs)``."""
        return jnp.tanh(self.theta + inputs)

    def prob_up(self, inputs: Array) -> Array:
        """``P(x = +1 | inputs) = sigmoid(2 (theta + inputs))``."""
        return jax.nn.sigmoid(2 * (self.theta + inputs))

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """Uniforms in ``[0, 1)``."""
        return jax.random.uniform(key, tuple(batch_shape) + self.shape, dtype)

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        """``+1`` where ``noise < P(x = +1 | inputs)``, else ``-1``."""
        p = self.prob_up(inputs)
        return 2 * (noise < p).astype(p.dtype) - 1

    def unit_states(self) -> Array:
        return jnp.array([-1.0, 1.0])

    def affine_bits(self):
        """States are ``offset + scale * bits`` with ``U`` linear in the state: ``(-1, 2)``.

        Lets :mod:`jrbm.exact` enumerate by meeting in the middle (no matrix product per state).
        """
        return -1.0, 2.0

    def shifted(self, inputs: Array) -> "Spin":
        """The layer whose energy is ``U(x) - <inputs, s(x)>``: ``theta + inputs``."""
        return Spin(self.theta + inputs)

    def check(self, name: str) -> None:
        base.check_leaves(self, name)

    def check_data(self, name: str, x) -> None:
        base.check_values(
            name, x, lambda a: (a == -1) | (a == 1), "spin values (-1 or +1)", "Spin",
            "; map binary data b in {0, 1} to spins with 2 * b - 1",
        )

    def from_data(self, data: Optional[Array]) -> "Spin":
        """``theta = atanh(m)`` with ``m`` the data's mean clipped to ``[-1 + 2e-3, 1 - 2e-3]``
        (``P(x = +1)`` in ``[1e-3, 1 - 1e-3]``, as for :class:`Bernoulli`); ``theta = 0`` without data."""
        if data is None:
            return Spin(jnp.zeros_like(self.theta))
        m = jnp.clip(base.data_mean(self, data), -1 + 2e-3, 1 - 2e-3)
        return Spin(jnp.arctanh(m))

    def interpolate(self, base_layer: "Spin", beta) -> tuple["Spin", Array]:
        """``theta_beta = (1 - beta) theta_base + beta theta``, ``scale = 1``."""
        return Spin((1 - beta) * base_layer.theta + beta * self.theta), jnp.ones((), self.theta.dtype)
