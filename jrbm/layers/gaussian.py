"""The tutorial's Gaussian units (section 3): one inverse standard deviation ``a_i = exp(-log_sigma_i)`` per unit (precision ``a_i^2``).

``U(x) = sum_i a_i^2 (x_i - b_i)^2 / 2`` with coupling statistic ``s(x) = a x``, so
that ``-energy`` is the tutorial's eq. 3.3 (``E_tutorial = -energy``) with one
``a_i`` per unit. Given the input ``I``, ``x_i`` is normal with mean ``b_i + I_i / a_i`` and
standard deviation ``1 / a_i`` (Cheng eq. 3.19, where ``I = W h``), and the Gaussian integral of eq. 3.18 is

    cgf(I) = sum_i [a_i b_i I_i + I_i^2 / 2 + log(sqrt(2 pi) / a_i)].
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import Array

from jrbm.layers import base

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Gaussian(NamedTuple):
    """``n`` real units with centres ``b`` and log standard deviations ``log_sigma``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers import Gaussian
      >>> layer = Gaussian(jnp.ones(2), jnp.zeros(2))
      >>> layer.mean(jnp.array([0.5, -1.0])).tolist()
      [1.5, 0.0]
    """

    b: Array
    log_sigma: Array

    @classmethod
    def init(cls, n: int, dtype=None, sigma: float = 1.0) -> "Gaussian":
        """``n`` units with ``b = 0`` and ``sigma`` (scalar) standard deviation."""
        b = base.zeros((n,), dtype)
        return cls(b, jnp.full_like(b, math.log(sigma)))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.b.shape)

    def precision_sqrt(self) -> Array:
        """``a = exp(-log_sigma)``."""
        return jnp.exp(-self.log_sigma)

    def energy(self, x: Array) -> Array:
        z = (x - self.b) * self.precision_sqrt()
        return 0.5 * jnp.sum(z * z, axis=-1)

    def statistic(self, x: Array) -> Array:
        return x * self.precision_sqrt()

    def cgf(self, inputs: Array) -> Array:
        a = self.precision_sqrt()
        return jnp.sum(a * self.b * inputs + 0.5 * inputs * inputs + _HALF_LOG_2PI + self.log_sigma, axis=-1)

    def mean(self, inputs: Array) -> Array:
        return self.b + inputs * jnp.exp(self.log_sigma)

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """Standard normals."""
        return jax.random.normal(key, tuple(batch_shape) + self.shape, dtype)

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        return self.mean(inputs) + jnp.exp(self.log_sigma) * noise

    def unit_states(self) -> None:
        return None

    def shifted(self, inputs: Array) -> "Gaussian":
        """The layer whose energy is ``U(x) - <inputs, s(x)>`` up to a constant: centre ``b + sigma inputs``."""
        return Gaussian(self.b + inputs * jnp.exp(self.log_sigma), self.log_sigma)

    def check(self, name: str) -> None:
        base.check_leaves(self, name)
        base.check_log_scales(self, name, ("log_sigma",))

    def check_data(self, name: str, x) -> None:
        """Any finite real value (finiteness is checked for every layer)."""

    def from_data(self, data: Optional[Array]) -> "Gaussian":
        """The data's mean and standard deviation (at least 1e-3); the layer itself without data."""
        if data is None:
            return self
        x = jnp.asarray(data, self.b.dtype).reshape((-1,) + self.shape)
        return Gaussian(jnp.mean(x, axis=0), jnp.log(jnp.maximum(jnp.std(x, axis=0), 1e-3)))

    def interpolate(self, base_layer: "Gaussian", beta) -> tuple["Gaussian", Array]:
        """The two quadratics add to one of precision ``alpha = (1 - beta) a_base^2 + beta a^2`` and
        centre ``((1 - beta) a_base^2 b_base + beta a^2 b) / alpha``; ``scale = a / sqrt(alpha)``.
        Proper for every ``beta`` in ``[0, 1]`` because the base is."""
        a2_base = jnp.exp(-2 * base_layer.log_sigma)
        a2 = jnp.exp(-2 * self.log_sigma)
        alpha = (1 - beta) * a2_base + beta * a2
        b = ((1 - beta) * a2_base * base_layer.b + beta * a2 * self.b) / alpha
        return Gaussian(b, -0.5 * jnp.log(alpha)), jnp.sqrt(a2 / alpha)
