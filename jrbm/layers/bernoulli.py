"""Bernoulli units: states ``{0, 1}``, ``U(x) = -theta x`` (the layers of the tutorial's section 2).

With input ``I`` the units are independent with ``P(x = 1 | I) = sigmoid(theta + I)``
(Cheng eqs. 2.10 and 2.19), and the cumulant generating function is
``cgf(I) = sum softplus(theta + I)`` (the softplus terms of eqs. 2.9 and 2.18).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm.layers import base

SOFTPLUS_GROUP = 32
"""Up to this many terms, :func:`softplus_sum` takes one ``log`` of the product of their factors."""


def softplus_sum(x: ArrayLike, axis: int = -1) -> Array:
    """``sum softplus(x)`` along ``axis``, without overflow.

    ``softplus(x) = max(x, 0) + log(1 + exp(-|x|))``. Up to
    :data:`SOFTPLUS_GROUP` terms (a small layer, such as the units summed
    over when a 16-unit model's ``log Z`` is enumerated), the logs are taken
    as one ``log`` of the product of the factors ``1 + exp(-|x|)``, each in
    ``(1, 2]``: the product stays below ``2^32``, and one ``log`` per sum
    instead of one per term. The product rounds like its factors, so the
    result is within a few rounding errors of ``max(1, |sum|)`` per term:
    factors closer to 1 than the dtype's epsilon leave it unchanged (8 terms
    at ``x = -20`` sum to 0 in float32, not 1.6e-8), which no log-likelihood
    or gradient notices (the gradient is ``sigmoid(x)`` either way). Term by term, the bars-and-stripes protocol's
    exact evaluations take 1.56x as long on a CPU. Longer sums use
    :func:`jrbm.layers.base.softplus` term by term, which XLA vectorises
    better than groups of products: groups take 5x as long over 500 hidden
    units of 1,000 rows, and the free energy with its product 1.28x
    (``python -m benchmarks.softplus``). Its derivative is ``sigmoid(x)``,
    also at ``x = 0``.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> x = jnp.array([[-30.0, 0.0, 2.0]])
      >>> bool(jnp.allclose(jrbm.exact.softplus_sum(x), jax.nn.softplus(x).sum(-1)))
      True
    """
    x = jnp.asarray(x)
    if x.shape[axis] > SOFTPLUS_GROUP:
        return jnp.sum(base.softplus(x), axis=axis)
    return _softplus_product_sum(jnp.moveaxis(x, axis, 0))


@jax.custom_jvp
def _softplus_product_sum(x: Array) -> Array:
    """``sum softplus(x)`` along axis 0 (at most :data:`SOFTPLUS_GROUP` terms) with one ``log``."""
    return jnp.sum(jnp.maximum(x, 0), axis=0) + jnp.log(jnp.prod(1 + jnp.exp(-jnp.abs(x)), axis=0))


@_softplus_product_sum.defjvp
def _softplus_product_sum_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _softplus_product_sum(x), jnp.sum(jax.nn.sigmoid(x) * x_dot, axis=0)


class Bernoulli(NamedTuple):
    """``n`` binary units with fields ``theta`` (the tutorial's ``b`` or ``c``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jrbm.layers import Bernoulli
      >>> layer = Bernoulli(jnp.zeros(3))
      >>> layer.mean(jnp.zeros(3)).tolist()
      [0.5, 0.5, 0.5]
    """

    theta: Array

    @classmethod
    def init(cls, n: int, dtype=None) -> "Bernoulli":
        """``n`` units with ``theta = 0`` (fair coins)."""
        return cls(base.zeros((n,), dtype))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape)

    def energy(self, x: Array) -> Array:
        return base.linear_energy(x, self.theta)

    def statistic(self, x: Array) -> Array:
        return x

    def cgf(self, inputs: Array) -> Array:
        """``sum softplus(theta + inputs)`` (:func:`softplus_sum`): exact to about ``eps`` per unit in absolute terms;
        for up to 32 units a term below ``eps`` (``theta + inputs`` below about -16 in float32, -36 in float64)
        adds nothing, so the sum's *relative* error is large where every term is that small (its gradient,
        ``sigmoid``, is computed exactly)."""
        return softplus_sum(self.theta + inputs)

    def cgf_difference(self, inputs0: Array, inputs1: Array) -> Array:
        """``cgf(inputs1) - cgf(inputs0)``, accurate for close inputs (AIS steps); ``d = inputs1 - inputs0``.

        Per unit, with ``p = sigmoid(theta + inputs0)``, the difference is the
        cumulant generating function of one unit, ``log E[exp(d x)]``:

        * for ``|d| < eps^(1/4)`` (:func:`jrbm.layers.base.series_limit`) its
          cumulant series to fourth order,
          ``p d + q d^2 / 2 + q (1 - 2p) d^3 / 6 + q (1 - 6q) d^4 / 24`` with
          ``q = p (1 - p)``, whose truncation is below ``eps / 60`` relative to
          ``p d``: one ``sigmoid`` and arithmetic, the cheapest form for the
          short steps of a long AIS schedule;
        * for ``|d| < 1``, ``log1p(p expm1(d))``, accurate to rounding of ``d`` itself;
        * otherwise the plain difference of the two ``softplus``.

        So 14,500 float32 AIS steps add up to about 1e-4 nats of rounding.
        """
        x0 = self.theta + inputs0
        d = jnp.asarray(inputs1 - inputs0)
        tiny = jnp.abs(d) < base.series_limit(d.dtype if jnp.issubdtype(d.dtype, jnp.floating) else jnp.float32)
        small = jnp.abs(d) < 1

        def series():
            p = jax.nn.sigmoid(x0)
            q = p * (1 - p)
            t = jnp.where(tiny, d, 0)  # finite powers where the branch is not taken, so gradients stay finite
            return t * (p + t * (q / 2 + t * (q * (1 - 2 * p) / 6 + t * q * (1 - 6 * q) / 24)))

        def close():
            return jnp.log1p(jax.nn.sigmoid(x0) * jnp.expm1(jnp.where(small, d, 0)))

        def plain():
            return base.softplus(x0 + d) - base.softplus(x0)

        return jnp.sum(base.where_small(tiny, series, lambda: base.where_small(small, close, plain)), axis=-1)

    def annealed_cgf_difference(self, base_layer: "Bernoulli", inputs: Array, beta0, beta1) -> Array:
        """``cgf_beta1(beta1 inputs) - cgf_beta0(beta0 inputs)`` along :meth:`interpolate`'s path from ``base_layer``.

        The logits at ``beta`` are ``theta_base + beta y`` with
        ``y = theta - theta_base + inputs``, so the difference is
        :meth:`cgf_difference` of the base layer at ``beta0 y`` and ``beta1 y``:
        accurate for the small steps of a long AIS schedule.
        """
        y = self.theta - base_layer.theta + inputs
        return Bernoulli(base_layer.theta).cgf_difference(beta0 * y, beta1 * y)

    def mean(self, inputs: Array) -> Array:
        return jax.nn.sigmoid(self.theta + inputs)

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """Uniforms in ``[0, 1)``."""
        return jax.random.uniform(key, tuple(batch_shape) + self.shape, dtype)

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        p = self.mean(inputs)
        return (noise < p).astype(p.dtype)

    def unit_states(self) -> Array:
        return jnp.array([0.0, 1.0])

    def affine_bits(self):
        """States are ``offset + scale * bits`` with ``U`` linear in the state: ``(0, 1)``.

        Lets :mod:`jrbm.exact` enumerate by meeting in the middle (no matrix product per state).
        """
        return 0.0, 1.0

    def shifted(self, inputs: Array) -> "Bernoulli":
        """The layer whose energy is ``U(x) - <inputs, s(x)>``: ``theta + inputs``."""
        return Bernoulli(self.theta + inputs)

    def check(self, name: str) -> None:
        base.check_leaves(self, name)

    def check_data(self, name: str, x) -> None:
        base.check_values(
            name, x, lambda a: (a == 0) | (a == 1), "binary values (0 or 1)", "Bernoulli",
            "; rescale greyscale data to [0, 1] and binarise it (x > 0.5) for a likelihood",
        )

    def check_training_data(self, name: str, x) -> None:
        """Values in ``[0, 1]``: binary data, or probabilities (greyscale images scaled to ``[0, 1]``)."""
        base.check_values(
            name, x, lambda a: (a >= 0) & (a <= 1), "values in [0, 1] (binary data or probabilities)", "Bernoulli",
            "; rescale the data to [0, 1] first (8-bit images: divide by 255; scikit-learn's digits: by 16, "
            "as jrbm.datasets.digits does)",
        )

    def from_data(self, data: Optional[Array]) -> "Bernoulli":
        """``theta = logit(p)`` with ``p`` the data's mean clipped to ``[1e-3, 1 - 1e-3]``; ``theta = 0`` without data."""
        if data is None:
            return Bernoulli(jnp.zeros_like(self.theta))
        p = jnp.clip(base.data_mean(self, data), 1e-3, 1 - 1e-3)
        return Bernoulli(jnp.log(p) - jnp.log1p(-p))

    def interpolate(self, base_layer: "Bernoulli", beta) -> tuple["Bernoulli", Array]:
        return Bernoulli((1 - beta) * base_layer.theta + beta * self.theta), jnp.ones((), self.theta.dtype)
