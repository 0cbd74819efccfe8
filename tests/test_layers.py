"""Every shipped layer, and one defined here outside jrbm, passes the conformance kit (jrbm.testing)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jrbm
from jrbm import layers
from jrbm.layers import base as layer_base


class Binomial(NamedTuple):
    """Binomial units of 3 trials, written against the layer interface only (no change to jrbm).

    ``p(x | I) = C(3, x) sigmoid(theta + I)^x (1 - sigmoid(theta + I))^(3 - x)``, i.e.
    ``U(x) = -theta x - log C(3, x)`` with statistic ``x``, and ``cgf(I) = 3 softplus(theta + I)``.
    """

    theta: jax.Array

    TRIALS = 3

    @property
    def shape(self):
        return tuple(self.theta.shape)

    def _log_choose(self, x):
        n = self.TRIALS
        return math.lgamma(n + 1) - jax.scipy.special.gammaln(x + 1) - jax.scipy.special.gammaln(n - x + 1)

    def energy(self, x):
        return -jnp.sum(self.theta * x + self._log_choose(x), axis=-1)

    def statistic(self, x):
        return x

    def cgf(self, inputs):
        return jnp.sum(self.TRIALS * jax.nn.softplus(self.theta + inputs), axis=-1)

    def mean(self, inputs):
        return self.TRIALS * jax.nn.sigmoid(self.theta + inputs)

    def noise(self, key, batch_shape, dtype):
        return jax.random.uniform(key, tuple(batch_shape) + self.shape + (self.TRIALS,), dtype)

    def sample_given_noise(self, inputs, noise):
        p = jax.nn.sigmoid(self.theta + inputs)
        return jnp.sum(noise < p[..., None], axis=-1).astype(p.dtype)

    def unit_states(self):
        return jnp.arange(self.TRIALS + 1.0)

    def shifted(self, inputs):
        return Binomial(self.theta + inputs)

    def check(self, name):
        layer_base.check_leaves(self, name)

    def check_data(self, name, x):
        layer_base.check_values(name, x, lambda a: (a == np.round(a)) & (a >= 0) & (a <= self.TRIALS), "counts 0..3", "Binomial")

    def from_data(self, data):
        if data is None:
            return Binomial(jnp.zeros_like(self.theta))
        p = jnp.clip(jnp.mean(data, axis=0) / self.TRIALS, 1e-3, 1 - 1e-3)
        return Binomial(jnp.log(p) - jnp.log1p(-p))

    def interpolate(self, base, beta):
        return Binomial((1 - beta) * base.theta + beta * self.theta), jnp.ones((), self.theta.dtype)


def _unit_log_z(m):
    """``log int_0^1 exp(m x) dx = log(expm1(m) / m)``, written without overflow or cancellation."""
    small = jnp.abs(m) < 1e-4
    ms = jnp.where(small, 1.0, m)
    big = jnp.where(ms > 0, ms + jnp.log(-jnp.expm1(-ms)), jnp.log(-jnp.expm1(ms))) - jnp.log(jnp.abs(ms))
    return jnp.where(small, m / 2 + m**2 / 24, big)


class UnitInterval(NamedTuple):
    """Continuous units on ``[0, 1]`` with ``U(x) = -theta x`` there (a tilted uniform), written against the
    layer interface only, whose ``check_data`` converts to numpy (so it must only ever see concrete arrays)."""

    theta: jax.Array

    @property
    def shape(self):
        return tuple(self.theta.shape)

    def energy(self, x):
        return jnp.sum(jnp.where((x >= 0) & (x <= 1), -self.theta * x, jnp.inf), axis=-1)

    def statistic(self, x):
        return x

    def cgf(self, inputs):
        return jnp.sum(_unit_log_z(self.theta + inputs), axis=-1)

    def mean(self, inputs):
        return jnp.vectorize(jax.grad(_unit_log_z))(self.theta + inputs)

    def noise(self, key, batch_shape, dtype):
        return jax.random.uniform(key, tuple(batch_shape) + self.shape, dtype)

    def sample_given_noise(self, inputs, noise):  # the inverse of the cdf expm1(m x) / expm1(m)
        m = self.theta + inputs
        small = jnp.abs(m) < 1e-6
        ms = jnp.where(small, 1.0, m)
        x = jnp.where(ms > 0, 1 + jnp.log(noise + (1 - noise) * jnp.exp(-ms)) / ms, jnp.log1p(noise * jnp.expm1(ms)) / ms)
        return jnp.clip(jnp.where(small, noise, x), 0, 1)

    def unit_states(self):
        return None

    def shifted(self, inputs):
        return UnitInterval(self.theta + inputs)

    def check(self, name):
        layer_base.check_leaves(self, name)

    def check_data(self, name, x):
        a = np.asarray(x)  # fails on a tracer: jrbm must not call it under jit
        if not np.all((a >= 0) & (a <= 1)):
            raise ValueError(f"{name}: expected values in [0, 1] for a UnitInterval layer")

    def from_data(self, data):
        return UnitInterval(jnp.zeros_like(self.theta))

    def interpolate(self, base, beta):
        return UnitInterval((1 - beta) * base.theta + beta * self.theta), jnp.ones((), self.theta.dtype)


F64 = jnp.float64
SHIPPED = {
    "Bernoulli": lambda: layers.Bernoulli(jnp.array([0.5, -1.0, 0.2], F64)),
    "Spin": lambda: layers.Spin(jnp.array([0.3, -0.7, 0.1], F64)),
    "Potts": lambda: layers.Potts(jnp.array([[0.5, -1.0, 0.2], [0.0, 1.0, -0.5]], F64)),
    "Gaussian": lambda: layers.Gaussian(jnp.array([0.3, -0.5], F64), jnp.array([0.1, -0.3], F64)),
}
for _name in ("ReLU", "dReLU"):
    if hasattr(layers, _name):
        SHIPPED[_name] = {
            "ReLU": lambda: layers.ReLU(jnp.array([0.4, -1.5], F64), jnp.array([0.2, -0.4], F64)),
            "dReLU": lambda: layers.dReLU(jnp.array([0.4, -1.0], F64), jnp.array([-0.3, 0.8], F64),
                                          jnp.array([0.2, -0.4], F64), jnp.array([-0.1, 0.3], F64)),
        }[_name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_layer_passes_the_kit(name):
    report = jrbm.testing.check_layer(jax.random.key(0), SHIPPED[name]())
    assert set(report) >= {"cgf", "sampler", "free_energy", "conditionals", "exact_grad", "gibbs_invariance", "ais"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, key",
    [
        # a nearly deterministic Bernoulli layer beside it: the Gibbs test has one cell (it crashed)
        (lambda: layers.ReLU(jnp.array([4.0, -4.0, 0.5], F64), jnp.array([-2.0, 2.0, 0.0], F64)), 0),
        # two modes far apart: AIS from draws of the layer at a field of its own sat in the minor one (34 nats low)
        (lambda: layers.dReLU(jnp.full(3, 4.0, F64), jnp.full(3, -4.0, F64), jnp.array([-2.0, 0.0, 2.0], F64),
                              jnp.array([-2.0, 0.0, 2.0], F64)), 3),
        # fields where float32 erfcx returned 0 (a -inf cgf)
        (lambda: layers.ReLU(jnp.full(3, -4.0, F64), jnp.full(3, -2.0, F64)), 4),
    ],
    ids=["near-deterministic neighbour", "far modes", "float32 erfcx gap"],
)
def test_shipped_layers_pass_the_kit_at_extreme_parameters(make, key):
    jrbm.testing.check_layer(jax.random.key(key), make())


def test_shipped_layers_are_the_documented_set():
    assert set(SHIPPED) == {"Bernoulli", "Spin", "Potts", "Gaussian", "ReLU", "dReLU"}


@pytest.mark.slow
def test_a_layer_defined_outside_jrbm_passes_the_kit_and_trains():
    layer = Binomial(jnp.array([0.3, -0.8, 1.1], F64))
    jrbm.testing.check_layer(jax.random.key(1), layer)
    # and it composes with everything else without a change to jrbm: fit with an exact likelihood
    data = jnp.asarray(np.random.default_rng(0).integers(0, 4, (64, 3)), F64)
    params = jrbm.init(jax.random.key(2), Binomial(jnp.zeros(3, F64)), layers.Bernoulli(jnp.zeros(2, F64)), data=data)
    import optax

    params, history = jrbm.fit(jax.random.key(3), params, data, optimizer=optax.sgd(0.1), estimator=jrbm.PCD(1, 16),
                               epochs=3, batch_size=16, log_likelihood="exact", progress=False)
    assert np.all(np.isfinite(history["log_likelihood"]))


@pytest.mark.slow
def test_a_bounded_continuous_layer_passes_the_kit_and_trains_with_a_numpy_data_check():
    """The kit finds the support [0, 1] from check_data; fit never hands check_data a tracer."""
    jrbm.testing.check_layer(jax.random.key(1), UnitInterval(jnp.array([0.7, -1.5], F64)))
    assert jrbm.testing._support(UnitInterval(jnp.zeros(1, F64)), 0.5) == (0.0, 1.0)
    data = jnp.asarray(np.random.default_rng(1).uniform(size=(64, 3)) ** 2, F64)
    params = jrbm.init(jax.random.key(2), UnitInterval(jnp.zeros(3, F64)), layers.Bernoulli(jnp.zeros(2, F64)), data=data)
    import optax

    for est in (jrbm.CD(1), jrbm.PCD(1, 16), jrbm.PT(3, 1, 8), jrbm.JarzynskiPCD(1, 16)):
        _, history = jrbm.fit(jax.random.key(3), params, data, optimizer=optax.sgd(0.1), estimator=est,
                              epochs=2, batch_size=16, log_likelihood="exact", progress=False)
        assert np.all(np.isfinite(history["log_likelihood"]))
    with pytest.raises(ValueError, match=r"data: expected values in \[0, 1\] for a UnitInterval layer"):
        jrbm.fit(jax.random.key(3), params, data + 1, optimizer=optax.sgd(0.1), epochs=1, batch_size=16, progress=False)


def test_the_kit_catches_a_wrong_layer():
    """A Binomial whose sampler draws one trial too few must fail: the kit has power."""

    class Wrong(Binomial):
        def sample_given_noise(self, inputs, noise):
            p = jax.nn.sigmoid(self.theta + inputs)
            return jnp.sum(noise[..., :-1] < p[..., None], axis=-1).astype(p.dtype)

    with pytest.raises(jrbm.testing.ConformanceError, match="sampler"):
        jrbm.testing.check_layer(jax.random.key(1), Wrong(jnp.array([0.3, -0.8], F64)))


def test_the_kit_catches_a_wrong_cgf():
    class Wrong(Binomial):
        def cgf(self, inputs):
            return jnp.sum(2 * jax.nn.softplus(self.theta + inputs), axis=-1)

    with pytest.raises(jrbm.testing.ConformanceError, match="cgf"):
        jrbm.testing.check_layer(jax.random.key(1), Wrong(jnp.array([0.3, -0.8], F64)))


class _CgfPlusOne(layers.Spin):
    def cgf(self, inputs):
        return super().cgf(inputs) + 1.0


class _HalfMean(layers.Spin):
    def mean(self, inputs):
        return 0.5 * super().mean(inputs)


class _WrongBits(layers.Spin):
    def affine_bits(self):
        return -1.0, 1.0


class _WrongShift(layers.Spin):
    def shifted(self, inputs):
        return layers.Spin(self.theta - inputs)


class _DoubledAnnealingStep(layers.Bernoulli):
    def annealed_cgf_difference(self, base_layer, inputs, beta0, beta1):
        return 2 * super().annealed_cgf_difference(base_layer, inputs, beta0, beta1)


@pytest.mark.parametrize(
    "make, check",
    [
        (lambda: _CgfPlusOne(jnp.array([0.3, -0.7, 0.1], F64)), "cgf"),
        (lambda: _HalfMean(jnp.array([0.3, -0.7, 0.1], F64)), "mean"),
        (lambda: _WrongBits(jnp.array([0.3, -0.7, 0.1], F64)), "affine_bits"),
        (lambda: _WrongShift(jnp.array([0.3, -0.7, 0.1], F64)), "shifted"),
        (lambda: _DoubledAnnealingStep(jnp.array([0.5, -1.0, 0.2], F64)), "annealing path"),
    ],
    ids=["cgf + 1", "half the mean", "wrong affine_bits", "wrong shifted", "doubled annealing step"],
)
def test_the_kit_catches_each_kind_of_mistake(make, check):
    with pytest.raises(jrbm.testing.ConformanceError, match=f"^{check}"):
        jrbm.testing.check_layer(jax.random.key(1), make())


class _SameMomentsBinomial(Binomial):
    """Draws from the binomial pmf plus ``eps (-1, 3, -3, 1)``: the same mean and variance, another distribution."""

    def sample_given_noise(self, inputs, noise):
        p = jax.nn.sigmoid(self.theta + inputs)[..., None]
        x = jnp.arange(4.0)
        pmf = jnp.exp(self._log_choose(x)) * p**x * (1 - p) ** (3 - x)
        eps = 0.9 * jnp.minimum(pmf[..., 0], pmf[..., 2] / 3)[..., None]
        cdf = jnp.cumsum(pmf + eps * jnp.array([-1.0, 3.0, -3.0, 1.0]), axis=-1)
        return jnp.sum(noise[..., :1] > cdf[..., :-1], axis=-1).astype(p.dtype)


class _FixedNoiseBinomial(Binomial):
    """Right draws, but from noise of its own (a fixed key): every key gives the same states."""

    def sample_given_noise(self, inputs, noise):
        return super().sample_given_noise(inputs, jax.random.uniform(jax.random.key(0), noise.shape, noise.dtype))


class _IntegerBinomial(Binomial):
    def sample_given_noise(self, inputs, noise):
        return jnp.sum(noise < jax.nn.sigmoid(self.theta + inputs)[..., None], axis=-1)


class _TwoPointUnitInterval(UnitInterval):
    """Draws ``mean +- sd`` (clipped to ``[0, 1]``): the right mean and nearly the right variance, two atoms."""

    def sample_given_noise(self, inputs, noise):
        m = self.mean(inputs)
        var = jnp.vectorize(jax.grad(jax.grad(_unit_log_z)))(self.theta + inputs)
        return jnp.clip(m + jnp.sqrt(var) * jnp.where(noise < 0.5, -1.0, 1.0), 0, 1)


class _Float32UnsafeUnitInterval(UnitInterval):
    """A cgf right in float64 whose guard ``min(m, -1e-300)`` is -0.0 in float32: NaN gradients there."""

    def cgf(self, inputs):
        m = self.theta + inputs
        small = jnp.abs(m) < 1e-4
        ms = jnp.where(small, 1.0, m)
        neg = jnp.minimum(ms, -1e-300)
        big = jnp.where(ms > 0, ms + jnp.log(-jnp.expm1(-ms)) - jnp.log(ms), jnp.log(-jnp.expm1(neg)) - jnp.log(-neg))
        return jnp.sum(jnp.where(small, m / 2 + m**2 / 24, big), axis=-1)


class _AssertingUnitInterval(UnitInterval):
    def check_data(self, name, x):
        assert np.all((np.asarray(x) >= 0) & (np.asarray(x) <= 1)), name


@pytest.mark.parametrize(
    "make, check",
    [
        (lambda: _SameMomentsBinomial(jnp.array([0.3, -0.8], F64)), "sampler: unit 0: chi-square"),
        (lambda: _FixedNoiseBinomial(jnp.array([0.3, -0.8], F64)), "sampler: unit 0: draws from two independent keys"),
        (lambda: _IntegerBinomial(jnp.array([0.3, -0.8], F64)), "sampler: draws of shape .* and dtype int"),
        (lambda: _TwoPointUnitInterval(jnp.array([0.7, -1.5], F64)), "sampler: unit 0: chi-square .* cells of equal probability"),
        (lambda: _Float32UnsafeUnitInterval(jnp.array([0.7, -1.5], F64)), "float32: jax.grad of cgf"),
        (lambda: _AssertingUnitInterval(jnp.array([0.7, -1.5], F64)), "check_data: .* raised AssertionError"),
    ],
    ids=["same moments, other pmf", "noise ignored", "integer draws", "two atoms", "NaN in float32", "assert in check_data"],
)
def test_the_kit_catches_samplers_and_numerics_that_moments_miss(make, check):
    """Each of these passes the moment checks (and worked in float64): the kit must still fail it."""
    with pytest.raises(jrbm.testing.ConformanceError, match=f"^{check}"):
        jrbm.testing.check_layer(jax.random.key(1), make())


class _NoInterpolate(NamedTuple):
    theta: jax.Array

    shape = property(lambda self: tuple(self.theta.shape))
    energy, statistic, cgf, mean = Binomial.energy, Binomial.statistic, Binomial.cgf, Binomial.mean


class _CountField(NamedTuple):
    theta: jax.Array
    trials: int = 3


def test_an_object_short_of_the_interface_is_refused_naming_what_it_lacks():
    with pytest.raises(TypeError, match=r"layer: expected a layer with every member of jrbm.layers.Layer, got a _NoInterpolate "
                       r"without noise, sample_given_noise, unit_states, shifted, check, check_data, from_data, interpolate"):
        jrbm.testing.check_layer(jax.random.key(1), _NoInterpolate(jnp.zeros(2, F64)))
    counted = type("CountedBinomial", (_CountField,), {m: getattr(Binomial, m) for m in layer_base.LAYER_MEMBERS})
    with pytest.raises(TypeError, match=r"params.visible.trials: expected a floating array .*class attributes\), got int"):
        jrbm.free_energy(jrbm.RBM(counted(jnp.zeros(2)), layers.Bernoulli(jnp.zeros(3)), jnp.zeros((2, 3))), jnp.zeros(2))
    with pytest.raises(TypeError, match=r"layer: expected a layer instance, got the class Binomial itself"):
        jrbm.testing.check_layer(jax.random.key(1), Binomial)


def _pairing_data(visible, n, key):
    """Valid states of ``visible``: draws of the layer on its own."""
    return layer_base.sample(key, visible, jnp.zeros((n,) + visible.shape, F64))


@pytest.mark.slow
@pytest.mark.parametrize(
    "visible, hidden",
    [
        (lambda: layers.Potts.init(4, 3, F64), lambda: layers.ReLU.init(2, F64)),
        (lambda: layers.Spin.init(5, F64), lambda: layers.dReLU.init(2, F64)),
        (lambda: layers.Gaussian.init(3, F64), lambda: layers.Spin.init(3, F64)),
        (lambda: layers.Bernoulli.init(4, F64), lambda: layers.Potts.init(2, 3, F64)),
    ],
    ids=["Potts-ReLU", "Spin-dReLU", "Gaussian-Spin", "Bernoulli-Potts"],
)
def test_any_pairing_trains_with_fit_and_fit_ensemble(visible, hidden):
    import optax

    vis, hid = visible(), hidden()
    data = _pairing_data(vis.shifted(jnp.full(vis.shape, 0.5, F64)), 64, jax.random.key(0))
    params = jrbm.init(jax.random.key(1), vis, hid, data=data, weight_std=0.1)
    learn_sigma = jrbm.train.has_sigma(params)
    trained, history = jrbm.fit(jax.random.key(2), params, data, optimizer=optax.sgd(0.05), estimator=jrbm.PCD(1, 16),
                                epochs=3, batch_size=16, log_likelihood="exact", learn_sigma=learn_sigma, progress=False)
    assert np.all(np.isfinite(history["log_likelihood"]))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(trained)):  # every leaf trained (sigma too, when asked)
        assert not np.array_equal(np.asarray(a), np.asarray(b))
    stack = jax.vmap(lambda k: jrbm.init(k, vis, hid, data=data, weight_std=0.1))(jax.random.split(jax.random.key(3), 2))
    _, hist = jrbm.fit_ensemble(jax.random.split(jax.random.key(4), 2), stack, data, optimizer=optax.sgd(0.05),
                                estimator=jrbm.CD(1), epochs=2, batch_size=16, log_likelihood="exact", progress=False)
    assert hist["log_likelihood"].shape == (2, 2) and np.all(np.isfinite(hist["log_likelihood"][:, -1]))


@pytest.mark.parametrize("scale, proper", [(0.9, True), (1.1, False)])
def test_two_gaussian_layers_are_proper_exactly_while_w_is_below_one(scale, proper):
    """The README's condition for two real-valued layers, on its exact case: two Gaussian layers (unit scales).

    With ``b = 0``, summing out the two hidden units (each ``cgf(I) = I^2 / 2 + log(2 pi) / 2``) leaves
    ``free_energy(v) = |v|^2 / 2 - |W^T v|^2 / 2 - log(2 pi)``: along the top singular vector of ``W``
    (singular value ``s``) it grows as ``(1 - s^2) t^2 / 2``, to +inf (a normalisable ``exp(-F)``) for
    ``s < 1`` and to -inf for ``s > 1``.
    """
    gauss = layers.Gaussian(jnp.zeros(2, F64), jnp.zeros(2, F64))
    params = jrbm.RBM(gauss, gauss, jnp.diag(jnp.array([scale, 0.5 * scale], F64)))
    t = jnp.array([1e2, 1e3, 1e4], F64)
    f = np.asarray(jrbm.free_energy(params, t[:, None] * jnp.array([1.0, 0.0], F64)))
    np.testing.assert_allclose(f, (1 - scale**2) * np.asarray(t) ** 2 / 2 - np.log(2 * np.pi), rtol=1e-12)
    assert (np.all(np.diff(f) > 0) and f[-1] > 1e6) if proper else (np.all(np.diff(f) < 0) and f[-1] < -1e6)


def test_bernoulli_and_gaussian_from_data_against_numpy():
    """``from_data``, which ``jrbm.init`` uses for the visible fields: Bernoulli's ``sigmoid(theta)`` is the data's
    mean clipped to ``[1e-3, 1 - 1e-3]``; Gaussian's ``b`` and ``sigma`` are the data's mean and standard deviation
    (at least 1e-3). Columns that hit the clips are included."""
    rng = np.random.default_rng(0)
    binary = rng.random((200, 4)) < np.array([0.2, 0.7, 0.0, 1.0])
    theta = np.asarray(layers.Bernoulli.init(4, F64).from_data(jnp.asarray(binary, F64)).theta)
    np.testing.assert_allclose(1 / (1 + np.exp(-theta)), np.clip(binary.mean(0), 1e-3, 1 - 1e-3), rtol=1e-12)
    real = rng.normal([1.0, -2.0, 5.0], [0.5, 3.0, 0.0], size=(300, 3))
    fit = layers.Gaussian.init(3, F64).from_data(jnp.asarray(real, F64))
    np.testing.assert_allclose(np.asarray(fit.b), real.mean(0), rtol=1e-12)
    np.testing.assert_allclose(np.exp(np.asarray(fit.log_sigma)), np.maximum(real.std(0), 1e-3), rtol=1e-12)
