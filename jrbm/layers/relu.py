"""ReLU units: states ``x >= 0``, ``U(x) = gamma x^2 / 2 - theta x`` with ``gamma = exp(log_gamma)``.

With input ``I`` a unit is the Gaussian ``N(mu, 1 / gamma)``, ``mu = (theta + I) / gamma``,
truncated to ``[0, inf)`` (the rectified-Gaussian hidden units of Tubiana, Cocco and Monasson,
Neural Computation 2019). With ``m = theta + I``, ``sigma = gamma^(-1/2)`` and
``z = -m / sqrt(2 gamma)``,

    cgf(I)   = sum log int_0^inf exp(-gamma x^2 / 2 + m x) dx
             = sum [log sqrt(pi / (2 gamma)) + log erfcx(z)],
    E[x | I] = mu + sigma phi(a) / Phi(a) = sqrt(2) sigma h(z),   a = m sigma,
               h(z) = 1 / (sqrt(pi) erfcx(z)) - z,

``erfcx(z) = exp(z^2) erfc(z)``. For ``m >> 0`` the cgf is ``~ m^2 / (2 gamma) + log sqrt(2 pi / gamma)``
and the mean ``~ mu``; for ``m << 0`` they are ``~ -log(-m)`` and ``~ 1 / |m|`` (an exponential of
rate ``|m|``). Both are computed without overflow or cancellation in float32 and float64 for
``|m|`` up to ``1e3`` and beyond (:mod:`jrbm.layers._truncnorm`), and the sampler inverts the
truncated CDF exactly, in log space in the tail.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax.numpy as jnp
from jax import Array

from jrbm.layers import _truncnorm, base


class ReLU(NamedTuple):
    """``n`` non-negative units with fields ``theta`` and log precisions ``log_gamma``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers.relu import ReLU
      >>> layer = ReLU.init(2)
      >>> [round(v, 6) for v in layer.mean(jnp.array([0.0, -50.0])).tolist()]
      [0.797885, 0.019984]
    """

    theta: Array
    log_gamma: Array

    @classmethod
    def init(cls, n: int, dtype=None) -> "ReLU":
        """``n`` units with ``theta = 0`` and ``gamma = 1`` (half-normal)."""
        theta = base.zeros((n,), dtype)
        return cls(theta, jnp.zeros_like(theta))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape)

    def gamma(self) -> Array:
        """``gamma = exp(log_gamma)``."""
        return jnp.exp(self.log_gamma)

    def energy(self, x: Array) -> Array:
        return jnp.sum(0.5 * self.gamma() * x * x - self.theta * x, axis=-1)

    def statistic(self, x: Array) -> Array:
        return x

    def cgf(self, inputs: Array) -> Array:
        """``sum log sqrt(pi / (2 gamma)) + log erfcx(-(theta + inputs) / sqrt(2 gamma))``; its gradient is :meth:`mean`."""
        m, log_gamma = jnp.broadcast_arrays(self.theta + inputs, self.log_gamma)
        return jnp.sum(_truncnorm.log_partition(m, log_gamma), axis=-1)

    def mean(self, inputs: Array) -> Array:
        """``E[x | inputs] = sqrt(2) sigma h(z)`` (the truncated-Gaussian mean ``mu + sigma phi(a) / Phi(a)``)."""
        return _truncnorm.mean(self.theta + inputs, self.log_gamma)

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """One uniform in ``(0, 1)`` per unit (:func:`jrbm.layers._truncnorm.open_uniform`): shape ``batch_shape + (n,)``."""
        return _truncnorm.open_uniform(key, tuple(batch_shape) + self.shape, dtype)

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        """Inverse CDF of the truncated Gaussian at ``u = noise`` (``u = 1`` gives ``x = 0``): ``x = sigma (a -
        ndtri(u Phi(a)))`` for ``a = (theta + inputs) sigma >= -3``, and in the tail ``x = sigma t`` with
        ``Q(t - a) / Q(-a) = u`` solved in log space by Newton's method (``Q`` the normal survival
        function), so draws are ``>= 0`` and finite even 1000 standard deviations into the tail."""
        m, log_gamma = jnp.broadcast_arrays(self.theta + inputs, self.log_gamma)
        return _truncnorm.sample(m, log_gamma, noise)

    def unit_states(self) -> None:
        return None

    def shifted(self, inputs: Array) -> "ReLU":
        """The layer whose energy is ``U(x) - <inputs, s(x)>``: ``theta + inputs``."""
        return ReLU(self.theta + inputs, self.log_gamma)

    def check(self, name: str) -> None:
        base.check_leaves(self, name)
        base.check_log_scales(self, name, ("log_gamma",))

    def check_data(self, name: str, x) -> None:
        base.check_values(name, x, lambda a: a >= 0, "non-negative values (x >= 0)", "ReLU")

    def from_data(self, data: Optional[Array]) -> "ReLU":
        """The truncated Gaussian matching the data's mean ``m1`` and second moment ``m2`` per unit (floored at
        ``1e-3`` and ``1e-6``); the shape ``a = mu / sigma`` is kept in ``[-10, 5]`` (``m2 / m1^2`` outside
        the range ``[1.04, 1.98]`` this allows gets the nearest end, with the mean still matched).
        Without data: ``theta = 0`` and the layer's own ``log_gamma``."""
        if data is None:
            return ReLU(jnp.zeros_like(self.theta), self.log_gamma)
        x = jnp.asarray(data, self.theta.dtype).reshape((-1,) + self.shape)
        m1 = jnp.maximum(jnp.mean(x, axis=0), 1e-3)
        m2 = jnp.maximum(jnp.mean(x * x, axis=0), 1e-6)
        theta, log_gamma = _truncnorm.fit_moments(m1, m2)
        return ReLU(theta, log_gamma)

    def interpolate(self, base_layer: "ReLU", beta) -> tuple["ReLU", Array]:
        """``(1 - beta) U_base + beta U`` is a ReLU energy with ``gamma_beta = (1 - beta) gamma_base + beta gamma``
        and ``theta_beta = (1 - beta) theta_base + beta theta``; ``scale = 1``."""
        gamma = (1 - beta) * base_layer.gamma() + beta * self.gamma()
        theta = (1 - beta) * base_layer.theta + beta * self.theta
        return ReLU(theta, jnp.log(gamma)), jnp.ones((), self.theta.dtype)
