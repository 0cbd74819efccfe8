"""ReLU and dReLU layers: cgf, mean and sampler against quadrature, float32 accuracy, tails.

References are computed independently of the library's closed forms: composite Gauss-Legendre
quadrature (numpy) of ``exp(-U(x) + I x)`` with ``U`` the layer's own :meth:`energy`, over enough
standard deviations (or decay lengths ``1 / |m|``) that the neglected tail is below ``exp(-40)``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import special

from jrbm.layers import base
from jrbm.layers.drelu import dReLU
from jrbm.layers.relu import ReLU

F32_EPS = float(np.finfo(np.float32).eps)

# --- quadrature -------------------------------------------------------------------------------

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)


def _grid(lo, hi, panels=400):
    """Composite 20-point Gauss-Legendre nodes and weights on ``[lo, hi]``."""
    edges = np.linspace(lo, hi, panels + 1)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    x = (mid[:, None] + half[:, None] * _NODES[None, :]).ravel()
    w = (half[:, None] * _WEIGHTS[None, :]).ravel()
    return x, w


def _half_line_extent(m, gamma):
    """``X`` with the mass of ``exp(-gamma x^2 / 2 + m x)`` beyond ``X`` (on ``x >= 0``) below ``exp(-40)`` of the total."""
    sigma = 1 / math.sqrt(gamma)
    if m >= 0:
        return m / gamma + 12 * sigma
    return min(12 * sigma, 45 / -m)


def _moments_1d(energy_fn, field, intervals):
    """``(log Z, E[x], E[x^2], E[x^3], E[x^4])`` of ``exp(-energy(x) + field x)`` over the union of ``intervals``."""
    xs, ws = zip(*(_grid(lo, hi) for lo, hi in intervals))
    x, w = np.concatenate(xs), np.concatenate(ws)
    f = -energy_fn(x) + field * x
    top = f.max()
    p = w * np.exp(f - top)
    z = p.sum()
    return (top + math.log(z),) + tuple(float(np.sum(p * x**k) / z) for k in range(1, 5))


def _relu_unit_energy(theta, log_gamma):
    layer = ReLU(jnp.array([theta]), jnp.array([log_gamma]))
    return lambda x: np.asarray(layer.energy(jnp.asarray(x)[:, None]))


def relu_reference(theta, log_gamma, field):
    """Quadrature moments of one ReLU unit with input ``field``."""
    m, gamma = theta + field, math.exp(log_gamma)
    return _moments_1d(_relu_unit_energy(theta, log_gamma), field, [(0.0, _half_line_extent(m, gamma))])


def drelu_reference(tp, tn, lgp, lgn, field):
    """Quadrature moments of one dReLU unit, and ``P(x > 0)`` as the last entry."""
    layer = dReLU(jnp.array([tp]), jnp.array([tn]), jnp.array([lgp]), jnp.array([lgn]))
    energy = lambda x: np.asarray(layer.energy(jnp.asarray(x)[:, None]))  # noqa: E731
    xp = _half_line_extent(tp + field, math.exp(lgp))
    xn = _half_line_extent(-(tn + field), math.exp(lgn))
    full = _moments_1d(energy, field, [(-xn, 0.0), (0.0, xp)])
    pos = _moments_1d(energy, field, [(0.0, xp)])
    return full + (math.exp(pos[0] - full[0]),)


def central(m1, m2, m3, m4):
    """``(variance, fourth central moment)`` from raw moments."""
    var = m2 - m1**2
    mu4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    return var, mu4


# --- layers used throughout -------------------------------------------------------------------

FIELDS = np.linspace(-30, 30, 13)
GAMMAS = [0.25, 1.0, 3.0]


def _relu_unit(theta, log_gamma, dtype=jnp.float64):
    return ReLU(jnp.array([theta], dtype), jnp.array([log_gamma], dtype))


# --- ReLU: cgf and mean -------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_relu_cgf_mean_variance_match_quadrature(gamma):
    theta, log_gamma = 0.7, math.log(gamma)
    layer = _relu_unit(theta, log_gamma)
    hess = jax.jit(jax.hessian(lambda i: layer.cgf(i)))
    for field in FIELDS:
        logz, m1, m2, m3, m4 = relu_reference(theta, log_gamma, field)
        inputs = jnp.array([field])
        np.testing.assert_allclose(float(layer.cgf(inputs)), logz, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(float(layer.mean(inputs)[0]), m1, rtol=1e-9)
        np.testing.assert_allclose(float(hess(inputs)[0, 0]), m2 - m1**2, rtol=1e-7)


def test_relu_mean_is_gradient_of_cgf():
    m = np.concatenate([FIELDS, [-1e3, -100.0, -1e-3, 1e-3, 100.0, 1e3]])
    for gamma in GAMMAS:
        layer = ReLU(jnp.zeros(m.size), jnp.full(m.size, math.log(gamma)))
        inputs = jnp.asarray(m)
        grad = jax.grad(lambda i: layer.cgf(i))(inputs)
        np.testing.assert_allclose(np.asarray(grad), np.asarray(layer.mean(inputs)), rtol=1e-8)


def test_relu_custom_gradient_matches_finite_differences():
    """The cgf's custom JVP (mean for the field, ``-gamma E[x^2] / 2`` for ``log_gamma``) against central
    differences of the cgf itself (step 1e-5: truncation ~1e-10 relative, rounding ~1e-11)."""
    m = jnp.asarray(np.concatenate([FIELDS, [-200.0, 200.0]]))
    layer = ReLU(jnp.zeros(m.size), jnp.full(m.size, math.log(1.7)))
    g_layer = jax.grad(lambda lay: lay.cgf(m))(layer)
    step = 1e-5
    for field in ("theta", "log_gamma"):
        plus = layer._replace(**{field: getattr(layer, field) + step})
        minus = layer._replace(**{field: getattr(layer, field) - step})
        fd = (_per_unit_cgf(plus, m) - _per_unit_cgf(minus, m)) / (2 * step)
        np.testing.assert_allclose(np.asarray(getattr(g_layer, field)), fd, rtol=1e-7, atol=1e-9)


def _per_unit_cgf(layer, inputs):
    """The cgf of each unit on its own (the layer's cgf sums them)."""
    return np.array([float(ReLU(layer.theta[i : i + 1], layer.log_gamma[i : i + 1]).cgf(inputs[i : i + 1])) for i in range(inputs.size)])


@pytest.mark.parametrize("gamma", [0.3, 1.0, 4.0])
def test_relu_float32_cgf_and_mean_accuracy(gamma):
    """float32 against float64 at the same (float32-rounded) parameters, for ``|theta + I|`` from 1e-3 to 1e3.

    Per unit ``cgf = log sqrt(pi / 2) - log_gamma / 2 + log erfcx(z)``, ``z = -m / sqrt(2 gamma)``, with
    ``log erfcx(z) = z^2 + log erfc(z)`` for ``z < 0``: each term is computed to a few float32 ulps of
    its own size (``z^2`` takes ~4 roundings), so the bound is ``8 eps32`` times the sum of the terms'
    magnitudes (a relative 1e-6 at most when one term dominates). The mean has no cancellation
    (continued fraction in the tail), so it is held to ``16 eps32`` relative.
    """
    m = np.array([s * v for v in (1e-3, 1.0, 10.0, 100.0, 1e3) for s in (1, -1)], np.float32)
    lg = np.float32(math.log(gamma))
    l32 = ReLU(jnp.zeros(m.size, jnp.float32), jnp.full(m.size, lg, jnp.float32))
    l64 = ReLU(jnp.zeros(m.size), jnp.full(m.size, float(lg)))
    c32 = np.asarray(_per_unit_cgf(l32, jnp.asarray(m)))
    c64 = np.asarray(_per_unit_cgf(l64, jnp.asarray(m, jnp.float64)))
    assert np.all(np.isfinite(c32))
    z = -m.astype(np.float64) / math.sqrt(2 * math.exp(float(lg)))
    log_erfcx = c64 - 0.5 * math.log(math.pi / 2) + 0.5 * float(lg)
    scale = np.where(z < 0, z * z, 0) + np.abs(log_erfcx - np.where(z < 0, z * z, 0)) + np.abs(log_erfcx) + 0.5 * abs(float(lg)) + 0.23
    assert np.all(np.abs(c32 - c64) <= 8 * F32_EPS * scale), (c32 - c64, 8 * F32_EPS * scale)
    mean32 = np.asarray(l32.mean(jnp.asarray(m)), np.float64)
    mean64 = np.asarray(l64.mean(jnp.asarray(m, jnp.float64)))
    np.testing.assert_allclose(mean32, mean64, rtol=16 * F32_EPS)
    grad32 = np.asarray(jax.grad(lambda i: l32.cgf(i))(jnp.asarray(m)), np.float64)
    np.testing.assert_allclose(grad32, mean64, rtol=16 * F32_EPS)
    # the asymptotes named in the docstring
    m64, g64 = m.astype(np.float64), math.exp(float(lg))
    big = m64 > 50
    np.testing.assert_allclose(c64[big], m64[big] ** 2 / (2 * g64) + 0.5 * np.log(2 * np.pi / g64), rtol=1e-12)
    small = m64 < -50  # -log(-m) - gamma / m^2 + (5 / 2) (gamma / m^2)^2 + ...
    np.testing.assert_allclose(c64[small], -np.log(-m64[small]) - g64 / m64[small] ** 2, rtol=0, atol=3 * (g64 / 100**2) ** 2)


def test_relu_batch_shapes_and_jit():
    layer = ReLU(jnp.array([0.1, -0.2, 0.3]), jnp.array([0.0, 0.5, -0.5]))
    inputs = jnp.linspace(-2, 2, 30).reshape(2, 5, 3)
    assert layer.cgf(inputs).shape == (2, 5)
    assert layer.mean(inputs).shape == (2, 5, 3)
    noise = layer.noise(jax.random.key(0), (2, 5), jnp.float64)
    assert noise.shape == (2, 5, 3) and bool(jnp.all((noise > 0) & (noise <= 1)))
    x = jax.jit(layer.sample_given_noise)(inputs, noise)
    assert x.shape == (2, 5, 3) and x.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(jax.jit(layer.cgf)(inputs)), np.asarray(layer.cgf(inputs)), rtol=1e-12)
    assert isinstance(layer, base.Layer) and layer.unit_states() is None and not base.is_discrete(layer)


# --- ReLU: sampler ------------------------------------------------------------------------------


def _moment_bounds(samples, m1, var, mu4, k=5.0):
    """|sample mean - E x| <= k sqrt(var / N) and |sample var - var| <= k sqrt((mu4 - var^2) / N):
    the standard errors of the two estimators (the second to leading order in 1 / N)."""
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    svar = samples.var(axis=0)
    assert np.all(np.abs(mean - m1) <= k * np.sqrt(var / n)), (mean, m1, np.sqrt(var / n))
    assert np.all(np.abs(svar - var) <= k * np.sqrt((mu4 - var**2) / n)), (svar, var)


# body (a >= -3) and tail (a < -3) regimes, including the switch at a = -3
RELU_CASES = [(2.0, 0.0), (0.5, 1.0), (0.0, 0.0), (-1.0, -1.0), (-2.9, 0.0), (-3.1, 0.0), (-5.0, 1.0), (-20.0, 0.0)]


def test_relu_sampler_moments():
    """200k draws per unit with a fixed key; mean and variance within 5 standard errors (computed from the
    exact variance and fourth central moment by quadrature), so a correct sampler fails with probability
    ~1e-6 per check and a bias of a few percent of a standard deviation is caught."""
    theta = jnp.array([c[0] for c in RELU_CASES])
    log_gamma = jnp.array([c[1] for c in RELU_CASES])
    layer = ReLU(theta, log_gamma)
    n = 200_000
    inputs = jnp.zeros((n, len(RELU_CASES)))
    x = np.asarray(jax.jit(base.sample)(jax.random.key(1), layer, inputs))
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    refs = [relu_reference(t, lg, 0.0) for t, lg in RELU_CASES]
    m1 = np.array([r[1] for r in refs])
    var, mu4 = central(*np.array([r[1:] for r in refs]).T)
    _moment_bounds(x, m1, var, mu4)


def _ks_statistic(samples, cdf):
    s = np.sort(samples)
    f = cdf(s)
    i = np.arange(1, s.size + 1)
    return max(np.max(i / s.size - f), np.max(f - (i - 1) / s.size))


def _relu_cdf(m, gamma):
    """Exact CDF of the truncated Gaussian, in float64 log space: ``1 - Phi(-y) / Phi(a)``, ``y = x / sigma - a``."""
    sigma = 1 / math.sqrt(gamma)
    a = m * sigma

    def cdf(x):
        y = jnp.asarray(x, jnp.float64) / sigma - a
        return np.asarray(-jnp.expm1(special.log_ndtr(-y) - special.log_ndtr(jnp.float64(a))))

    return cdf


@pytest.mark.parametrize("m,gamma", [(1.0, 1.0), (-2.0, 0.5), (-4.0, 1.0), (-50.0, 1.0), (1e3, 1.0)])
def test_relu_sampler_distribution(m, gamma):
    """Kolmogorov-Smirnov against the exact CDF: D <= 1.95 / sqrt(N) (the 0.1% level)."""
    layer = _relu_unit(m, math.log(gamma))
    n = 50_000
    x = np.asarray(base.sample(jax.random.key(2), layer, jnp.zeros((n, 1))))[:, 0]
    assert _ks_statistic(x, _relu_cdf(m, gamma)) <= 1.95 / math.sqrt(n)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_relu_far_tail(dtype):
    """theta + I = -50 (50 sd into the tail, Phi(-50) ~ 1e-545 underflows even in float64): the draw is about
    exponential of rate 50. Mean and variance against the exact ones within 5 standard errors."""
    layer = _relu_unit(-50.0, 0.0, dtype)
    n = 100_000
    x = np.asarray(base.sample(jax.random.key(3), layer, jnp.zeros((n, 1), dtype)), np.float64)[:, 0]
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    _, m1, m2, m3, m4 = relu_reference(-50.0, 0.0, 0.0)
    var, mu4 = central(m1, m2, m3, m4)
    assert abs(m1 - 1 / 50) < 1e-4  # the exponential approximation
    _moment_bounds(x[:, None], np.array([m1]), np.array([var]), np.array([mu4]))
    # and 1000 sd out, in float32 too
    layer = _relu_unit(-1e3, 0.0, dtype)
    x = np.asarray(base.sample(jax.random.key(4), layer, jnp.zeros((n, 1), dtype)), np.float64)[:, 0]
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    _, m1, m2, m3, m4 = relu_reference(-1e3, 0.0, 0.0)
    var, mu4 = central(m1, m2, m3, m4)
    _moment_bounds(x[:, None], np.array([m1]), np.array([var]), np.array([mu4]))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("gamma", [1.0, 4.0])
def test_relu_large_positive_field(dtype, gamma):
    """theta + I = 1e3: the truncation is irrelevant and x ~ Normal(1e3 / gamma, 1 / gamma)."""
    layer = _relu_unit(0.0, math.log(gamma), dtype)
    n = 100_000
    inputs = jnp.full((n, 1), 1e3, dtype)
    x = np.asarray(base.sample(jax.random.key(5), layer, inputs), np.float64)[:, 0]
    assert np.all(np.isfinite(x))
    var = 1 / gamma
    _moment_bounds(x[:, None], np.array([1e3 / gamma]), np.array([var]), np.array([3 * var**2]))
    assert math.isfinite(float(layer.cgf(inputs[:1])[0]))


# --- ReLU: the rest of the interface ----------------------------------------------------------


def test_relu_energy_shifted_interpolate():
    key = jax.random.key(6)
    layer = ReLU(jnp.array([0.5, -1.0, 2.0]), jnp.array([0.0, 0.3, -0.7]))
    other = ReLU(jnp.array([-0.2, 0.4, 0.1]), jnp.array([1.0, -0.3, 0.2]))
    x = jax.random.uniform(key, (7, 3)) * 3
    gamma = np.exp(np.asarray(layer.log_gamma))
    expected = np.sum(0.5 * gamma * np.asarray(x) ** 2 - np.asarray(layer.theta) * np.asarray(x), axis=-1)
    np.testing.assert_allclose(np.asarray(layer.energy(x)), expected, rtol=1e-12)
    inputs = jnp.array([0.3, -0.1, 1.5])
    np.testing.assert_allclose(np.asarray(layer.shifted(inputs).energy(x)), np.asarray(layer.energy(x) - x @ inputs), rtol=1e-12)
    for beta in (0.0, 0.3, 1.0):
        mixed, scale = layer.interpolate(other, beta)
        assert float(scale) == 1.0
        np.testing.assert_allclose(
            np.asarray(mixed.energy(x)), np.asarray((1 - beta) * other.energy(x) + beta * layer.energy(x)), rtol=1e-12, atol=1e-12
        )
    layer.check("visible")
    with pytest.raises(ValueError):
        ReLU(jnp.zeros(3), jnp.zeros(4)).check("visible")
    layer.check_data("data", np.array([[0.0, 1.5, 3.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        layer.check_data("data", np.array([[0.0, -1e-3, 3.0]]))
    init = ReLU.init(4, jnp.float32)
    assert init.theta.dtype == jnp.float32 and init.shape == (4,)


def test_relu_from_data():
    true = ReLU(jnp.array([1.0, -2.0, 0.0]), jnp.array([0.0, 0.5, -1.0]))
    data = base.sample(jax.random.key(7), true, jnp.zeros((100_000, 3)))
    fit = true.from_data(data)
    fit.check("fit")
    # the fit matches the data's first two moments exactly (they are in the attainable range) ...
    x = np.asarray(data)
    np.testing.assert_allclose(np.asarray(fit.mean(jnp.zeros(3))), x.mean(0), rtol=1e-8)
    second = jax.jit(jax.hessian(fit.cgf))(jnp.zeros(3)).diagonal() + fit.mean(jnp.zeros(3)) ** 2
    np.testing.assert_allclose(np.asarray(second), (x**2).mean(0), rtol=1e-7)
    # ... and so recovers the parameters up to sampling error
    # (the moment estimator's sd at N = 1e5 is ~0.03 for the unit a = -1.6 standard deviations into the tail)
    np.testing.assert_allclose(np.asarray(fit.theta), np.asarray(true.theta), atol=0.15)
    np.testing.assert_allclose(np.asarray(fit.log_gamma), np.asarray(true.log_gamma), atol=0.15)
    # degenerate units (all zeros, very sparse) give finite proper layers
    odd = np.zeros((50, 2))
    odd[0, 1] = 5.0
    fit = ReLU.init(2).from_data(jnp.asarray(odd))
    assert np.all(np.isfinite(np.asarray(fit.theta))) and np.all(np.isfinite(np.asarray(fit.log_gamma)))
    neutral = true.from_data(None)
    assert np.all(np.asarray(neutral.theta) == 0) and np.all(neutral.log_gamma == true.log_gamma)


# --- dReLU --------------------------------------------------------------------------------------

DRELU_CASES = [
    # theta_pos, theta_neg, log_gamma_pos, log_gamma_neg
    (0.0, 0.0, 0.0, 0.0),
    (1.0, -2.0, 0.5, -0.5),
    (-3.0, 4.0, 1.0, 0.0),
    (2.0, 2.0, -1.0, 1.0),
    (-5.0, 5.0, 0.0, 0.0),  # both sides pulled towards 0: a narrow, two-sided exponential
]


@pytest.mark.parametrize("case", DRELU_CASES)
def test_drelu_cgf_mean_weight_match_quadrature(case):
    layer = dReLU(*(jnp.array([v]) for v in case))
    hess = jax.jit(jax.hessian(lambda i: layer.cgf(i)))
    for field in FIELDS:
        logz, m1, m2, m3, m4, p_pos = drelu_reference(*case, field)
        inputs = jnp.array([field])
        np.testing.assert_allclose(float(layer.cgf(inputs)), logz, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(float(layer.mean(inputs)[0]), m1, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(layer.positive_probability(inputs)[0]), p_pos, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(hess(inputs)[0, 0]), m2 - m1**2, rtol=1e-7)


def test_drelu_mean_is_gradient_of_cgf():
    theta = jnp.array([c[0] for c in DRELU_CASES])
    layer = dReLU(*(jnp.array([c[k] for c in DRELU_CASES]) for k in range(4)))
    for field in list(FIELDS) + [-1e3, -100.0, 100.0, 1e3]:
        inputs = jnp.full(theta.shape, field)
        grad = jax.grad(lambda i: layer.cgf(i))(inputs)
        np.testing.assert_allclose(np.asarray(grad), np.asarray(layer.mean(inputs)), rtol=1e-8, atol=1e-14)


def test_drelu_float32():
    """float32 cgf finite and within the ReLU bound (8 eps32 times the terms' size; logaddexp adds ~2 ulps)
    for fields of +-1e-3 .. 1e3; the mean within 16 eps32 of float64 (or 16 eps32 of its scale near 0)."""
    f = np.array([s * v for v in (1e-3, 1.0, 10.0, 100.0, 1e3) for s in (1, -1)], np.float32)
    case = (0.5, -0.25, 0.25, -0.5)
    l32 = dReLU(*(jnp.full(f.size, v, jnp.float32) for v in case))
    l64 = dReLU(*(jnp.full(f.size, float(np.float32(v))) for v in case))
    c32 = np.array([float(dReLU(*(leaf[i : i + 1] for leaf in l32)).cgf(jnp.asarray(f[i : i + 1]))) for i in range(f.size)])
    c64 = np.array([float(dReLU(*(leaf[i : i + 1] for leaf in l64)).cgf(jnp.asarray(f[i : i + 1], jnp.float64))) for i in range(f.size)])
    assert np.all(np.isfinite(c32))
    scale = np.abs(c64) + f.astype(np.float64) ** 2 + 1
    assert np.all(np.abs(c32 - c64) <= 10 * F32_EPS * scale)
    mean32 = np.asarray(l32.mean(jnp.asarray(f)), np.float64)
    mean64 = np.asarray(l64.mean(jnp.asarray(f, jnp.float64)))
    np.testing.assert_allclose(mean32, mean64, rtol=16 * F32_EPS, atol=16 * F32_EPS * 0.5)


def test_drelu_sampler_moments_and_sides():
    """Per unit: the fraction of positive draws within 5 sd of the binomial, and mean and variance within
    5 standard errors of the quadrature values (as for ReLU)."""
    layer = dReLU(*(jnp.array([c[k] for c in DRELU_CASES]) for k in range(4)))
    n = 200_000
    x = np.asarray(jax.jit(base.sample)(jax.random.key(8), layer, jnp.zeros((n, len(DRELU_CASES)))))
    assert np.all(np.isfinite(x))
    refs = np.array([drelu_reference(*c, 0.0) for c in DRELU_CASES])
    p = refs[:, 5]
    frac = (x > 0).mean(axis=0)
    assert np.all(np.abs(frac - p) <= 5 * np.sqrt(p * (1 - p) / n)), (frac, p)
    var, mu4 = central(*refs[:, 1:5].T)
    _moment_bounds(x, refs[:, 1], var, mu4)
    noise = layer.noise(jax.random.key(0), (3,), jnp.float32)
    assert noise.shape == (3, len(DRELU_CASES), 2) and noise.dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_drelu_tails(dtype):
    """Fields 1000 sd out: theta + I = 1e3 on both sides is Normal(1e3, 1) (the negative side has weight
    ~exp(-5e5)); theta_pos + I = -50 and theta_neg + I = +50 is a Laplace-like spike of rate 50 on each side."""
    n = 100_000
    layer = dReLU(*(jnp.array([v], dtype) for v in (0.0, 0.0, 0.0, 0.0)))
    x = np.asarray(base.sample(jax.random.key(9), layer, jnp.full((n, 1), 1e3, dtype)), np.float64)
    assert np.all(np.isfinite(x)) and np.all(x > 0)
    _moment_bounds(x, np.array([1e3]), np.array([1.0]), np.array([3.0]))
    assert math.isfinite(float(layer.cgf(jnp.full((1,), 1e3, dtype))))
    assert math.isfinite(float(layer.cgf(jnp.full((1,), -1e3, dtype))))
    layer = dReLU(*(jnp.array([v], dtype) for v in (-50.0, 50.0, 0.0, 0.0)))
    x = np.asarray(base.sample(jax.random.key(10), layer, jnp.zeros((n, 1), dtype)), np.float64)
    assert np.all(np.isfinite(x))
    _, m1, m2, m3, m4, p_pos = drelu_reference(-50.0, 50.0, 0.0, 0.0, 0.0)
    var, mu4 = central(m1, m2, m3, m4)
    assert abs(p_pos - 0.5) < 1e-12
    _moment_bounds(x, np.array([m1]), np.array([var]), np.array([mu4]))
    assert abs((x > 0).mean() - 0.5) <= 5 * math.sqrt(0.25 / n)


def test_drelu_energy_shifted_interpolate_from_data():
    layer = dReLU(jnp.array([0.5, -1.0]), jnp.array([1.0, 0.3]), jnp.array([0.0, 0.3]), jnp.array([-0.7, 0.2]))
    other = dReLU(jnp.array([-0.2, 0.4]), jnp.array([0.1, 0.0]), jnp.array([1.0, -0.3]), jnp.array([0.2, 0.0]))
    x = jax.random.normal(jax.random.key(11), (9, 2)) * 2
    xa = np.asarray(x)
    xp, xn = np.maximum(xa, 0), np.minimum(xa, 0)
    expected = np.sum(
        0.5 * np.exp(np.asarray(layer.log_gamma_pos)) * xp**2 + 0.5 * np.exp(np.asarray(layer.log_gamma_neg)) * xn**2
        - np.asarray(layer.theta_pos) * xp - np.asarray(layer.theta_neg) * xn,
        axis=-1,
    )
    np.testing.assert_allclose(np.asarray(layer.energy(x)), expected, rtol=1e-12)
    inputs = jnp.array([0.3, -1.5])
    np.testing.assert_allclose(np.asarray(layer.shifted(inputs).energy(x)), np.asarray(layer.energy(x) - x @ inputs), rtol=1e-12)
    for beta in (0.0, 0.4, 1.0):
        mixed, scale = layer.interpolate(other, beta)
        assert float(scale) == 1.0
        np.testing.assert_allclose(
            np.asarray(mixed.energy(x)), np.asarray((1 - beta) * other.energy(x) + beta * layer.energy(x)), rtol=1e-12, atol=1e-12
        )
    layer.check("hidden")
    layer.check_data("data", xa)
    assert layer.unit_states() is None and isinstance(layer, base.Layer)
    # from_data: the Gaussian of the data's mean and variance
    data = jax.random.normal(jax.random.key(12), (1000, 2)) * jnp.array([0.5, 2.0]) + jnp.array([1.0, -3.0])
    fit = layer.from_data(data)
    fit.check("fit")
    np.testing.assert_allclose(np.asarray(fit.mean(jnp.zeros(2))), np.asarray(data).mean(0), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.hessian(fit.cgf))(jnp.zeros(2)).diagonal()), np.asarray(data).var(0), rtol=1e-9)
    neutral = layer.from_data(None)
    assert np.all(np.asarray(neutral.theta_pos) == 0) and np.all(np.asarray(neutral.theta_neg) == 0)
    assert np.all(neutral.log_gamma_pos == layer.log_gamma_pos) and np.all(neutral.log_gamma_neg == layer.log_gamma_neg)
    init = dReLU.init(3, jnp.float32)
    assert init.shape == (3,) and init.log_gamma_neg.dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_noise_is_open_so_far_positive_fields_never_draw_zero(dtype):
    """The grid's end u = 1 would map to x = 0, an atom 1e4 standard deviations from the mass; the noise is
    the midpoint of each grid cell, in (0, 1), and both extreme cells give draws near the mean."""
    from jrbm.layers import _truncnorm

    u = np.asarray(_truncnorm.open_uniform(jax.random.key(0), (1_000_000,), dtype))
    assert u.dtype == dtype and u.min() > 0 and u.max() < 1
    eps = np.finfo(dtype).eps
    ends = jnp.asarray([[1 - eps / 2], [eps / 2]], dtype)  # the noise of U = 0 and of U = 1 - eps
    far = -float(special.ndtri(eps / 4))  # beyond the normal quantiles of the extreme cells (5.4 sd in float32, 8.3 in float64)
    for layer in (ReLU(jnp.zeros(1, dtype), jnp.zeros(1, dtype)),):
        x = np.asarray(layer.sample_given_noise(jnp.full((2, 1), 1e4, dtype), ends), np.float64)
        assert np.all(np.abs(x - 1e4) < far), x  # within the extreme quantiles (sigma = 1) of the mean 1e4
    d = dReLU(jnp.zeros(1, dtype), jnp.zeros(1, dtype), jnp.zeros(1, dtype), jnp.zeros(1, dtype))
    both = jnp.stack([ends, ends], axis=-1)[..., 0, :][:, None, :]  # (2, 1, 2): side and draw noise at the ends
    x = np.asarray(d.sample_given_noise(jnp.full((2, 1), 1e4, dtype), both), np.float64)
    assert np.all(np.abs(x - 1e4) < far), x


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_log_erfcx_is_finite_and_accurate_where_jax_erfcx_returns_zero(dtype):
    """``jax.scipy.special.erfcx`` returns 0 in float32 for z in about [9.19, 9.42] and in float64 for z in about
    [26.54, 26.64] (jax 0.10.2), which made a ReLU unit's cgf ``-inf`` there. jrbm's ``log_erfcx`` takes the
    continued fraction from z = 2: against SciPy's float64 ``erfcx`` (the Faddeeva package), within 8 ulps of
    ``max(1, |log erfcx|)`` for z in [0, 60]."""
    from scipy import special as sp

    from jrbm.layers import _truncnorm

    z = np.concatenate([np.linspace(0.0, 60.0, 6001), np.linspace(9.1, 9.5, 401), np.linspace(26.5, 26.7, 201)])
    z = z.astype(np.dtype(dtype))
    got = np.asarray(_truncnorm.log_erfcx(jnp.asarray(z)), np.float64)
    want = np.log(sp.erfcx(z.astype(np.float64)))
    assert np.all(np.isfinite(got))
    eps = float(jnp.finfo(dtype).eps)
    err, bound = np.abs(got - want), 8 * eps * np.maximum(1.0, np.abs(want))
    assert np.all(err <= bound), (z[np.argmax(err / bound)], np.max(err / bound))
    layer = ReLU(jnp.full(1, -4.0, dtype), jnp.full(1, -2.0, dtype))  # the unit where the float32 cgf was -inf
    assert np.isfinite(float(layer.cgf(jnp.full(1, -0.79, dtype))))
