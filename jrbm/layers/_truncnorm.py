"""Numerics of the Gaussian truncated to ``[0, inf)``, shared by :class:`ReLU` and :class:`dReLU`.

One unit with field ``m`` (``theta + I``) and precision ``gamma = exp(log_gamma)`` has density
``p(x) ∝ exp(-gamma x^2 / 2 + m x)`` on ``x >= 0``: the Gaussian ``N(mu, sigma^2)`` with
``mu = m / gamma``, ``sigma = gamma^(-1/2)``, truncated to ``[0, inf)``. Everything is written in the
standardized variable

    z = -m / sqrt(2 gamma) = -a / sqrt(2),    a = mu / sigma = m sigma,

through the scaled complementary error function ``erfcx(z) = exp(z^2) erfc(z)``:

    Z(m, gamma) = int_0^inf exp(-gamma x^2 / 2 + m x) dx = sqrt(pi / (2 gamma)) erfcx(z),
    E[x]        = sqrt(2) sigma h(z),         h(z) = 1 / (sqrt(pi) erfcx(z)) - z,
    E[x^2]      = sigma^2 q(z),               q(z) = 1 - 2 z h(z)  (= 1 + a E[x] / sigma),

(``h`` is the inverse Mills ratio ``phi(a) / Phi(a)`` plus ``a``, over ``sqrt(2)``; the identities
``gamma E[x] = m + 1 / Z`` and ``gamma E[x^2] = m E[x] + 1`` come from integrating by parts).

Numerics (float32 and float64, ``|m|`` up to ``1e3`` and beyond):

* ``log erfcx(z)`` is ``z^2 + log erfc(z)`` for ``z < 2`` (for ``z < 0``, ``erfc`` in ``(1, 2]``: no
  overflow, no cancellation; ``erfc(2) = 0.0047``) and ``-log(sqrt(pi) (h + z))`` with ``h`` from the
  continued fraction below for ``z >= 2`` (``jax.scipy.special.erfcx`` returns 0 in float32 for ``z``
  near 9.3). The alternative ``m^2 / (2 gamma) + log_ndtr(a)`` cancels catastrophically for
  ``m << 0`` (two terms of size ``a^2 / 2`` whose sum is ``-log|a|``).
* ``h`` and ``q`` cancel for large ``z`` (``h ~ 1 / (2 z)`` from ``1 / (sqrt(pi) erfcx(z)) ~ z``), so
  for ``z >= 2`` they come from Laplace's continued fraction
  ``1 / (sqrt(pi) erfcx(z)) = z + (1/2) / (z + (2/2) / (z + (3/2) / (z + ...)))``: with
  ``D_1 = z + 1 / D_2``, ``D_k = z + ((k + 1) / 2) / D_(k+1)``, ``h = 1 / (2 D_1)`` and
  ``q = 1 / (D_1 D_2)``, without subtraction (25 levels in float32, 60 in float64: below an ulp at
  ``z = 2``). For ``z < 2``, ``h = exp(-z^2) / (sqrt(pi) erfc(z)) - z`` loses at most ``2 z^2 <= 8`` ulps.
* :func:`log_partition` has a custom JVP: ``d log Z / d m = E[x]`` and
  ``d log Z / d log_gamma = -gamma E[x^2] / 2 = -q / 2``, from the stable ``h`` and ``q`` (autodiff of
  ``erfcx`` would reintroduce the cancellation). Second derivatives differentiate :func:`mean`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import Array
from jax.scipy import special

_HALF_LOG_PI_OVER_2 = 0.5 * math.log(math.pi / 2)
_SQRT2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
_CF_FROM = 2.0  # h and q from the continued fraction for z >= _CF_FROM
_BODY_FROM = -3.0  # sampler: inverse CDF by ndtri for a >= _BODY_FROM, the tail method below
_NEWTON_STEPS = 4
_FIT_A_MIN, _FIT_A_MAX = -10.0, 5.0  # from_data: the shapes a = mu / sigma it may choose


def _cf_depth(dtype) -> int:
    return 60 if jnp.finfo(dtype).bits > 32 else 25


def log_erfcx(z: Array) -> Array:
    """``log(exp(z^2) erfc(z))``, finite for every finite ``z``: ``z^2 + log erfc(z)`` below ``_CF_FROM`` (no
    overflow for ``z << 0``), ``-log(sqrt(pi) (h(z) + z))`` from :func:`mills`'s continued fraction above.

    Not ``jax.scipy.special.erfcx``: in float32 it returns 0 for ``z`` in about ``[9.2, 9.41]`` (jax 0.10.2),
    so a ReLU unit's cgf was ``-inf`` there; the conformance kit's float32 check found it.
    """
    direct = z < _CF_FROM
    zl = jnp.where(direct, z, 0)
    zc = jnp.where(direct, _CF_FROM, z)
    h, _ = mills(zc)
    return jnp.where(direct, zl * zl + jnp.log(special.erfc(zl)), -jnp.log(_SQRT_PI * (h + zc)))


@jax.jit
def mills(z: Array) -> tuple[Array, Array]:
    """``(h, q)``: ``h = 1 / (sqrt(pi) erfcx(z)) - z`` and ``q = 1 - 2 z h``, both positive, without cancellation.

    Differentiable everywhere (the branches are fed safe arguments, so no NaN leaks into gradients).
    """
    cf = z >= _CF_FROM
    zl = jnp.where(cf, 0, z)
    zc = jnp.where(cf, z, _CF_FROM)
    # z < 2: direct; exp(-z^2) underflows harmlessly to 0 for z << 0 (then h = -z, q = 1 + 2 z^2).
    hl = jnp.exp(-zl * zl) / (_SQRT_PI * special.erfc(zl)) - zl
    ql = 1 - 2 * zl * hl
    # z >= 2: Laplace's continued fraction, evaluated from the bottom up.
    d = zc
    for k in range(_cf_depth(z.dtype) - 1, 1, -1):
        d = zc + ((k + 1) / 2) / d
    d1 = zc + 1 / d
    hc = 0.5 / d1
    qc = 1 / (d1 * d)
    return jnp.where(cf, hc, hl), jnp.where(cf, qc, ql)


@jax.custom_jvp
def log_partition(m: Array, log_gamma: Array) -> Array:
    """``log int_0^inf exp(-gamma x^2 / 2 + m x) dx = log sqrt(pi / (2 gamma)) + log erfcx(z)`` per unit.

    ``z = -m / sqrt(2 gamma)``; ``m`` and ``log_gamma`` of one shape. Large ``m > 0``:
    ``~ m^2 / (2 gamma) + log sqrt(2 pi / gamma)``; large ``m < 0``: ``~ -log(-m)``.
    """
    z = -m * jnp.exp(-0.5 * log_gamma) / _SQRT2
    return _HALF_LOG_PI_OVER_2 - 0.5 * log_gamma + log_erfcx(z)


@log_partition.defjvp
def _log_partition_jvp(primals, tangents):
    m, log_gamma = primals
    dm, dlog_gamma = tangents
    sigma = jnp.exp(-0.5 * log_gamma)
    z = -m * sigma / _SQRT2
    out = _HALF_LOG_PI_OVER_2 - 0.5 * log_gamma + log_erfcx(z)
    h, q = mills(z)
    return out, (_SQRT2 * sigma * h) * dm - (0.5 * q) * dlog_gamma


def mean(m: Array, log_gamma: Array) -> Array:
    """``E[x] = mu + sigma phi(a) / Phi(a) = sqrt(2) sigma h(z)``; ``~ 1 / |m|`` for ``m << 0``, ``~ m / gamma`` for ``m >> 0``."""
    sigma = jnp.exp(-0.5 * log_gamma)
    h, _ = mills(-m * sigma / _SQRT2)
    return _SQRT2 * sigma * h


def second_moment(m: Array, log_gamma: Array) -> Array:
    """``E[x^2] = sigma^2 q(z)`` (``= (m E[x] + 1) / gamma``), without the cancellation of that form for ``m << 0``."""
    sigma = jnp.exp(-0.5 * log_gamma)
    _, q = mills(-m * sigma / _SQRT2)
    return sigma * sigma * q


def _tail_excess(b: Array, log_u: Array) -> Array:
    """``t >= 0`` with ``P(Y > b + t | Y > b) = u`` for a standard normal ``Y`` and ``b >= 3``.

    Solves ``F(t) = log Q(b + t) - log Q(b) - log u = 0`` (``Q`` the normal survival function) by
    Newton's method. Writing ``Q(y) = phi(y) R(y)`` with the Mills ratio ``R(y) = 1 / (y + k(y))``,
    ``k(y) = sqrt(2) h(y / sqrt(2))`` (about ``1 / y``),

        F(t) = -(b t + t^2 / 2) - log1p((t + k(b + t) - k(b)) / (b + k(b))) - log u,
        F'(t) = -1 / R(b + t) = -(b + t + k(b + t)),

    all without cancellation. The start ``t0 = -2 log u / (b + sqrt(b^2 - 2 log u))`` solves the
    Gaussian factor alone; since ``log Q`` is concave and ``F(t0) <= 0``, the iterates decrease
    monotonically to the root (quadratically: four steps reach rounding for ``b >= 3``).
    For ``b >> 1``, ``t ~ -log(u) / b``: the exponential tail of rate ``b``.
    """
    kb = _SQRT2 * mills(b / _SQRT2)[0]
    t = -2 * log_u / (b + jnp.sqrt(b * b - 2 * log_u))
    for _ in range(_NEWTON_STEPS):
        y = b + t
        ky = _SQRT2 * mills(y / _SQRT2)[0]
        f = -(b * t + 0.5 * t * t) - jnp.log1p((t + ky - kb) / (b + kb)) - log_u
        t = jnp.maximum(t + f / (y + ky), 0)
    return t


def open_uniform(key: Array, shape: tuple[int, ...], dtype) -> Array:
    """Uniforms in the open interval ``(0, 1)``: ``1 - U - eps / 2`` for ``U`` on jax's grid of step ``eps`` in
    ``[0, 1)``, so each draw is the midpoint of its cell.

    :func:`sample` maps ``u = 1`` to ``x = 0``, the end of the support: right as a limit, but the grid's
    endpoint has probability ``eps`` (6e-8 in float32), which would put an atom at 0 however far the mass
    lies from it (a draw of 0 from units whose mean is 1e4 standard deviations away).
    """
    dtype = jnp.dtype(dtype)
    return 1 - jax.random.uniform(key, shape, dtype) - jnp.asarray(jnp.finfo(dtype).eps / 2, dtype)


@jax.jit
def sample(m: Array, log_gamma: Array, u: Array) -> Array:
    """A draw of ``x >= 0`` from the truncated Gaussian, by inversion of one uniform ``u`` in ``(0, 1]`` per unit
    (:func:`open_uniform` draws them in ``(0, 1)``).

    With ``a = m sigma`` (the mean in standard deviations) and ``x = sigma (a + y)``, ``y ~ N(0, 1)``
    conditioned on ``y >= -a``, the draw ``x`` is decreasing in ``u`` (``u = 1`` gives ``x = 0``):

    * ``a >= -3`` (at least ``Phi(-3) = 1.3e-3`` of the mass kept): ``y = -ndtri(u Phi(a))``, so
      ``x = sigma (a - ndtri(u Phi(a)))``;
    * ``a < -3`` (a tail, perhaps 1000 standard deviations out, where ``Phi(a)`` underflows):
      ``x = sigma t`` with ``t`` the excess of the tail over ``b = -a`` solving
      ``Q(b + t) / Q(b) = u`` (:func:`_tail_excess`), in log space; approximately exponential of
      rate ``|m|`` for ``a << 0``.

    The result is clipped at 0 (rounding only) and is finite for ``u`` in ``(0, 1]``.
    """
    sigma = jnp.exp(-0.5 * log_gamma)
    a = m * sigma
    body = a >= _BODY_FROM
    ab = jnp.where(body, a, 0)
    x_body = sigma * (ab - special.ndtri(u * special.ndtr(ab)))
    bt = jnp.where(body, -_BODY_FROM, -a)
    x_tail = sigma * _tail_excess(bt, jnp.log(u))
    return jnp.maximum(jnp.where(body, x_body, x_tail), 0)


@jax.jit
def fit_moments(m1: Array, m2: Array) -> tuple[Array, Array]:
    """``(m, log_gamma)`` of the truncated Gaussian with ``E[x] = m1`` and ``E[x^2] = m2`` (``m1 > 0``).

    ``E[x^2] / E[x]^2 = q(z) / (2 h(z)^2)`` depends on the shape ``a = -sqrt(2) z`` alone and decreases
    from 2 (``a -> -inf``, exponential) to 1 (``a -> inf``, a narrow Gaussian); bisection (60 halvings)
    finds ``a`` in ``[-10, 5]`` (ratios outside the range give the nearest end), then
    ``sigma = m1 / (sqrt(2) h)`` matches the mean.
    """
    ratio = m2 / (m1 * m1)

    def body(_, lohi):
        lo, hi = lohi  # in z = -a / sqrt(2): the ratio increases with z
        mid = 0.5 * (lo + hi)
        h, q = mills(mid)
        below = q / (2 * h * h) < ratio
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo = jnp.full_like(ratio, -_FIT_A_MAX / _SQRT2)
    hi = jnp.full_like(ratio, -_FIT_A_MIN / _SQRT2)
    lo, hi = jax.lax.fori_loop(0, 60, body, (lo, hi))
    z = 0.5 * (lo + hi)
    sigma = m1 / (_SQRT2 * mills(z)[0])
    return -_SQRT2 * z / sigma, -2 * jnp.log(sigma)
