"""Spin and Potts layers against independent references (brute-force enumeration in numpy)."""

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jrbm.layers import base
from jrbm.layers.bernoulli import Bernoulli
from jrbm.layers.potts import Potts, one_hot, zero_sum_gauge
from jrbm.layers.spin import Spin

try:
    from jrbm.params import RBM as Model
except ImportError:  # the general model type not importable: any (visible, hidden, W) tuple does

    class Model(NamedTuple):
        visible: object
        hidden: object
        W: object


F64 = jnp.float64


# --- numpy references ---------------------------------------------------------------------------


def spin_states(n):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


def bernoulli_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def potts_states(n, q):
    eye = np.eye(q)
    return np.array([eye[list(codes)] for codes in itertools.product(range(q), repeat=n)])


def states_of(layer):
    if isinstance(layer, Spin):
        return spin_states(layer.shape[0])
    if isinstance(layer, Bernoulli):
        return bernoulli_states(layer.shape[0])
    return potts_states(*layer.shape)


def brute_cgf_and_mean(theta, inputs, states):
    """``log sum_x exp(-U(x) + <I, x>)`` and ``E[x]`` for one input, with ``U(x) = -<theta, x>``."""
    axes = tuple(range(1, states.ndim))
    logw = np.sum(states * (theta + inputs), axis=axes)
    top = logw.max()
    w = np.exp(logw - top)
    return top + np.log(w.sum()), np.tensordot(w / w.sum(), states, axes=1)


def rng_array(seed, shape, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


LAYERS = {
    "spin": lambda: Spin(jnp.asarray(rng_array(0, (3,)), F64)),
    "potts": lambda: Potts(jnp.asarray(rng_array(1, (2, 3)), F64)),
}


# --- cgf, mean, energy --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_cgf_and_mean_match_enumeration(kind):
    layer = LAYERS[kind]()
    theta = np.asarray(layer.theta)
    states = states_of(layer)
    inputs = rng_array(2, (4,) + layer.shape, 2.0)
    cgf = np.asarray(layer.cgf(jnp.asarray(inputs, F64)))
    mean = np.asarray(layer.mean(jnp.asarray(inputs, F64)))
    assert cgf.shape == (4,) and mean.shape == (4,) + layer.shape
    for b in range(4):
        want_cgf, want_mean = brute_cgf_and_mean(theta, inputs[b], states)
        np.testing.assert_allclose(cgf[b], want_cgf, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mean[b], want_mean, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_mean_is_gradient_of_cgf(kind):
    layer = LAYERS[kind]()
    inputs = jnp.asarray(rng_array(3, layer.shape, 3.0), F64)
    grad = jax.grad(layer.cgf)(inputs)
    np.testing.assert_allclose(grad, layer.mean(inputs), rtol=1e-12, atol=1e-14)
    # at zero field too (|z| is not differentiable at 0; the sum is)
    zero = -layer.theta
    np.testing.assert_allclose(jax.grad(layer.cgf)(zero), layer.mean(zero), atol=1e-15)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_energy_and_statistic(kind):
    layer = LAYERS[kind]()
    states = states_of(layer)
    axes = tuple(range(1, states.ndim))
    want = -np.sum(states * np.asarray(layer.theta), axis=axes)
    np.testing.assert_allclose(layer.energy(jnp.asarray(states, F64)), want, rtol=1e-13)
    np.testing.assert_array_equal(layer.statistic(jnp.asarray(states, F64)), states)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_enumerate_states_covers_the_layer(kind):
    layer = LAYERS[kind]()
    states = np.asarray(base.enumerate_states(layer, 0, len(states_of(layer)), F64))
    want = states_of(layer)
    assert states.shape == want.shape
    assert {s.tobytes() for s in states} == {s.tobytes() for s in want}


def test_spin_cgf_stable_for_large_fields():
    layer = Spin(jnp.zeros(3, F64))
    z = jnp.array([1000.0, -1000.0, 1e-300], F64)
    np.testing.assert_allclose(layer.cgf(z), 2000.0 + np.log(2.0), rtol=1e-15)
    assert np.all(np.isfinite(np.asarray(jax.grad(layer.cgf)(z))))
    layer32 = Spin(jnp.zeros(2, jnp.float32))
    assert np.isfinite(float(layer32.cgf(jnp.array([100.0, -100.0], jnp.float32))))


def test_potts_cgf_stable_for_large_fields():
    layer = Potts(jnp.zeros((1, 3), F64))
    z = jnp.array([[1000.0, -1000.0, 999.0]], F64)
    np.testing.assert_allclose(layer.cgf(z), 1000.0 + np.log1p(np.exp(-1.0)), rtol=1e-15)


CGF_LAYERS = {**LAYERS, "bernoulli": lambda: Bernoulli(jnp.asarray(rng_array(2, (3,)), F64))}


@pytest.mark.parametrize("kind", sorted(CGF_LAYERS))
@pytest.mark.parametrize("scale", [1e-6, 1e-4, 0.5, 3.0])  # 1e-4: steps on both sides of float64's series limit
def test_cgf_difference(kind, scale):
    layer = CGF_LAYERS[kind]()
    inputs0 = rng_array(4, (5,) + layer.shape, 2.0)
    inputs1 = inputs0 + rng_array(5, inputs0.shape, scale)
    want = []
    for b in range(5):
        c1, _ = brute_cgf_and_mean(np.asarray(layer.theta), inputs1[b], states_of(layer))
        c0, _ = brute_cgf_and_mean(np.asarray(layer.theta), inputs0[b], states_of(layer))
        want.append(c1 - c0)
    got = base.cgf_difference(layer, jnp.asarray(inputs0, F64), jnp.asarray(inputs1, F64))
    # the enumeration's own difference loses ~1e-16 * |cgf| absolutely
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("step", [1e-4, 1e-2])  # 1e-2: Bernoulli steps on both sides of float32's series limit
def test_cgf_difference_accurate_for_close_float32_inputs(step):
    """In float32 the accurate form keeps the relative error of a tiny step near float32 rounding."""
    layers = (
        (Spin(jnp.asarray(rng_array(6, (4,)), F64)), (4,)),
        (Potts(jnp.asarray(rng_array(7, (2, 3)), F64)), (2, 3)),
        (Bernoulli(jnp.asarray(rng_array(10, (64,)), F64)), (64,)),
    )
    for layer64, shape in layers:
        inputs0 = rng_array(8, shape, 2.0).astype(np.float32)
        inputs1 = (inputs0 + rng_array(9, shape, step)).astype(np.float32)
        exact = float(base.cgf_difference(layer64, jnp.asarray(inputs0, F64), jnp.asarray(inputs1, F64)))
        layer32 = type(layer64)(layer64.theta.astype(jnp.float32))
        got = float(base.cgf_difference(layer32, jnp.asarray(inputs0), jnp.asarray(inputs1)))
        assert abs(got - exact) <= 1e-5 * abs(exact) + 1e-10


def test_bernoulli_cgf_difference_series_at_float32_rounding():
    """Each unit's step below float32's series limit is within a few roundings of the float64 difference of softplus."""
    limit = base.series_limit(jnp.float32)
    x0 = np.repeat(np.linspace(-12.0, 12.0, 49), 40).astype(np.float32)
    d = np.tile(np.geomspace(1e-6, 0.99 * limit, 20), 49 * 2)  # 40 steps per point, both signs
    d = (np.where(np.arange(d.size) // 20 % 2, 1, -1) * d).astype(np.float32)
    x1 = (x0 + d).astype(np.float32)
    exact = np.logaddexp(0, x1.astype(np.float64)) - np.logaddexp(0, x0.astype(np.float64))
    layer = Bernoulli(jnp.zeros((1,), jnp.float32))
    got = np.asarray(base.cgf_difference(layer, jnp.asarray(x0)[:, None], jnp.asarray(x1)[:, None]), np.float64)
    eps = float(jnp.finfo(jnp.float32).eps)
    np.testing.assert_array_less(np.abs(got - exact), 8 * eps * np.abs(exact) + 1e-30)


# --- samplers -----------------------------------------------------------------------------------

N_SAMPLES = 100_000


def test_spin_sampler_moments():
    layer = Spin(jnp.array([0.3, -1.2, 0.0, 2.5], F64))
    inputs = jnp.array([0.1, 0.4, 0.0, -0.5], F64)
    x = base.sample(jax.random.key(0), layer, jnp.broadcast_to(inputs, (N_SAMPLES, 4)))
    assert x.dtype == F64 and x.shape == (N_SAMPLES, 4)
    assert set(np.unique(np.asarray(x)).tolist()) <= {-1.0, 1.0}
    mean = np.tanh(np.asarray(layer.theta + inputs))
    var = 1 - mean**2
    # the sample mean of N independent draws has standard error sqrt(var / N): allow 5 of them
    bound = 5 * np.sqrt(var / N_SAMPLES)
    mean_hat = np.asarray(x).mean(axis=0)
    assert np.all(np.abs(mean_hat - mean) < bound)
    # x^2 = 1, so the sample variance is 1 - mean_hat^2 and |var_hat - var| <= |mean_hat - m| |mean_hat + m|
    assert np.all(np.abs(np.asarray(x).var(axis=0) - var) <= bound * (2 * np.abs(mean) + bound) + 1e-12)


def test_potts_sampler_frequencies():
    layer = Potts(jnp.array([[0.3, -1.2, 0.0, 1.0], [2.0, 2.0, -3.0, 0.0]], F64))
    inputs = jnp.array([[0.1, 0.4, 0.0, -0.5], [0.0, 0.5, 0.0, 0.0]], F64)
    x = np.asarray(base.sample(jax.random.key(1), layer, jnp.broadcast_to(inputs, (N_SAMPLES, 2, 4))))
    assert x.dtype == np.float64 and x.shape == (N_SAMPLES, 2, 4)
    assert set(np.unique(x).tolist()) <= {0.0, 1.0}
    assert np.all(x.sum(axis=-1) == 1.0)
    p = np.asarray(jax.nn.softmax(layer.theta + inputs, axis=-1))
    # each indicator x_ik is Bernoulli(p_ik): its frequency has standard error sqrt(p (1 - p) / N); allow 5
    bound = 5 * np.sqrt(p * (1 - p) / N_SAMPLES)
    assert np.all(np.abs(x.mean(axis=0) - p) < bound + 1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_potts_sampler_exactly_one_hot_at_the_edges(dtype):
    q = 5
    theta = jnp.array([[-1e4, 0.0, 1.0, 0.5, -1e4], [0.0] * q, [50.0, -50.0, -50.0, -50.0, -50.0]], dtype)
    layer = Potts(theta)
    below_one = np.nextafter(np.array(1.0, dtype), np.array(0.0, dtype))
    u = jnp.asarray(np.array([[0.0] * 3, [below_one] * 3, [0.5] * 3]), dtype)
    x = np.asarray(layer.sample_given_noise(jnp.zeros((3, 3, q), dtype), u))
    assert x.dtype == dtype
    assert np.all((x == 0) | (x == 1)) and np.all(x.sum(axis=-1) == 1)
    codes = x.argmax(axis=-1)
    assert codes[0, 0] == 1  # u = 0 skips a state whose probability underflows to 0
    assert codes[1, 0] == 3 and codes[1, 1] == q - 1  # u -> 1 skips a trailing state of probability 0
    assert np.all(codes[:, 2] == 0)
    # random u with a random batch of fields
    u = jax.random.uniform(jax.random.key(2), (1000, 3), dtype)
    fields = jax.random.normal(jax.random.key(3), (1000, 3, q), dtype) * 30
    x = np.asarray(layer.sample_given_noise(fields, u))
    assert np.all((x == 0) | (x == 1)) and np.all(x.sum(axis=-1) == 1)


def test_noise_shapes():
    assert Spin.init(3, F64).noise(jax.random.key(0), (2, 5), F64).shape == (2, 5, 3)
    assert Potts.init(3, 4, F64).noise(jax.random.key(0), (2, 5), F64).shape == (2, 5, 3)


# --- states, validation, data, paths --------------------------------------------------------------


def test_unit_states_and_affine_bits():
    np.testing.assert_array_equal(Spin.init(2).unit_states(), [-1.0, 1.0])
    offset, scale = Spin.init(2).affine_bits()
    np.testing.assert_array_equal(offset + scale * np.array([0.0, 1.0]), Spin.init(2).unit_states())
    np.testing.assert_array_equal(Potts.init(2, 3).unit_states(), np.eye(3))
    assert Potts.init(2, 3, F64).shape == (2, 3) and Potts.init(2, 3, F64).theta.dtype == F64


def test_check():
    Spin.init(3, F64).check("params.visible")
    Potts.init(3, 2, F64).check("params.visible")
    with pytest.raises(ValueError, match=r"params\.visible\.theta: expected 2 dimension"):
        Potts(jnp.zeros(3, F64)).check("params.visible")
    with pytest.raises(ValueError, match="expected 1 dimension"):
        Spin(jnp.zeros((3, 2), F64)).check("params.visible")
    with pytest.raises(TypeError, match="floating"):
        Potts(jnp.zeros((3, 2), jnp.int32)).check("params.visible")


def test_check_data():
    Spin.init(2).check_data("data", np.array([[-1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"data: expected spin values \(-1 or \+1\) for a Spin layer, got 0.0 at index \(1, 0\).*2 \* b - 1"):
        Spin.init(2).check_data("data", np.array([[-1.0, 1.0], [0.0, 1.0]]))
    layer = Potts.init(2, 3)
    layer.check_data("data", np.asarray(one_hot(np.array([[0, 2], [1, 1]]), 3)))
    with pytest.raises(ValueError, match=r"one-hot entries.*got 0.5 at index \(0, 1, 2\).*one_hot\(codes, q\)"):
        layer.check_data("data", np.array([[[1.0, 0, 0], [0, 0, 0.5]]]))
    with pytest.raises(ValueError, match=r"one 1 per unit.*got 2.0 at index \(0, 1\).*one_hot\(codes, q\)"):
        layer.check_data("data", np.array([[[1.0, 0, 0], [0, 1.0, 1.0]]]))
    with pytest.raises(ValueError, match=r"got 0.0 at index \(0, 0\)"):
        layer.check_data("data", np.array([[[0.0, 0, 0], [0, 1.0, 0]]]))


def test_one_hot():
    codes = np.array([[0, 2, 1], [1, 1, 0]])
    x = one_hot(codes, 3)
    assert x.shape == (2, 3, 3) and x.dtype == jnp.zeros(()).dtype
    np.testing.assert_array_equal(np.asarray(x), np.eye(3)[codes])
    assert one_hot(jnp.asarray(codes, jnp.int32), 4, jnp.float32).dtype == jnp.float32
    assert jax.jit(lambda c: one_hot(c, 3))(jnp.asarray(codes)).shape == (2, 3, 3)
    with pytest.raises(TypeError, match=r"codes: expected an integer array.*got dtype float64"):
        one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match=r"codes: expected state indices in \[0, q\) = \[0, 3\), got 3 at index \(1,\)"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"got -1 at index \(0, 1\)"):
        one_hot([[0, -1]], 3)
    with pytest.raises(ValueError, match="q: expected a positive integer, got 0"):
        one_hot(np.array([0]), 0)
    with pytest.raises(TypeError, match="q: expected a positive integer"):
        one_hot(np.array([0]), 2.5)


def test_from_data():
    data = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, 1.0]])
    layer = Spin.init(2, F64).from_data(jnp.asarray(data))
    np.testing.assert_allclose(np.tanh(np.asarray(layer.theta)), data.mean(axis=0), rtol=1e-12)
    clipped = Spin.init(1, F64).from_data(jnp.ones((10, 1), F64))
    np.testing.assert_allclose(np.tanh(np.asarray(clipped.theta)), [1 - 2e-3], rtol=1e-12)
    np.testing.assert_array_equal(Spin(jnp.ones(2, F64)).from_data(None).theta, [0.0, 0.0])

    codes = np.array([[0, 1], [0, 2], [1, 2], [0, 2]])
    potts = Potts.init(2, 3, F64).from_data(one_hot(codes, 3, F64))
    freq = np.stack([np.bincount(codes[:, i], minlength=3) / len(codes) for i in range(2)])
    f = np.maximum(freq, 1e-3)
    f /= f.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(jax.nn.softmax(potts.theta, axis=-1), f, rtol=1e-12)
    np.testing.assert_allclose(potts.theta.mean(axis=-1), 0.0, atol=1e-14)
    np.testing.assert_array_equal(Potts(jnp.ones((2, 3), F64)).from_data(None).theta, np.zeros((2, 3)))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_interpolate_and_shifted(kind):
    layer = LAYERS[kind]()
    base_layer = type(layer)(jnp.asarray(rng_array(10, layer.shape), F64))
    states = jnp.asarray(states_of(layer), F64)
    mid, scale = layer.interpolate(base_layer, 0.3)
    assert scale.shape == () and scale.dtype == F64 and float(scale) == 1.0
    np.testing.assert_allclose(mid.energy(states), 0.7 * base_layer.energy(states) + 0.3 * layer.energy(states), rtol=1e-12)
    inputs = jnp.asarray(rng_array(11, layer.shape), F64)
    np.testing.assert_allclose(
        layer.shifted(inputs).energy(states), layer.energy(states) - jnp.sum(states * inputs, axis=tuple(range(1, states.ndim))), rtol=1e-12
    )


# --- the zero-sum gauge ----------------------------------------------------------------------------


def joint_energies(model):
    """``U_vis(v) + U_hid(h) - <v, W, h>`` for every (v, h), by hand (every layer here has ``s(x) = x``)."""
    vs, hs = states_of(model.visible), states_of(model.hidden)
    tv, th, W = (np.asarray(a) for a in (model.visible.theta, model.hidden.theta, model.W))
    u_v = -np.sum(vs * tv, axis=tuple(range(1, vs.ndim)))
    u_h = -np.sum(hs * th, axis=tuple(range(1, hs.ndim)))
    coupling = np.tensordot(np.tensordot(vs, W, axes=vs.ndim - 1), hs, axes=(list(range(1, hs.ndim)), list(range(1, hs.ndim))))
    return u_v[:, None] + u_h[None, :] - coupling


def random_layer(kind, shape, seed):
    theta = jnp.asarray(rng_array(seed, shape) + 0.7, F64)  # off-gauge on purpose
    return {"potts": Potts, "spin": Spin, "bernoulli": Bernoulli}[kind](theta)


@pytest.mark.parametrize(
    "vis, hid",
    [
        (("potts", (3, 3)), ("bernoulli", (2,))),
        (("bernoulli", (2,)), ("potts", (2, 3))),
        (("spin", (3,)), ("potts", (2, 3))),
        (("potts", (2, 3)), ("potts", (2, 2))),
    ],
)
def test_zero_sum_gauge_keeps_the_distribution(vis, hid):
    visible, hidden = random_layer(*vis, 20), random_layer(*hid, 21)
    W = jnp.asarray(rng_array(22, visible.shape + hidden.shape) + 0.5, F64)
    model = Model(visible, hidden, W)
    gauged = zero_sum_gauge(model)
    assert type(gauged) is type(model)
    assert gauged.W.shape == W.shape and gauged.W.dtype == F64
    diff = joint_energies(gauged) - joint_energies(model)
    # one constant over all (v, h): the normalised p(v, h) is unchanged
    np.testing.assert_allclose(diff, diff.flat[0], atol=1e-12)
    assert np.ptp(joint_energies(model)) > 1  # the check is not vacuous
    for _side, layer in (("visible", gauged.visible), ("hidden", gauged.hidden)):
        if isinstance(layer, Potts):
            np.testing.assert_allclose(layer.theta.mean(axis=-1), 0.0, atol=1e-14)
    if isinstance(visible, Potts):
        np.testing.assert_allclose(gauged.W.mean(axis=1), 0.0, atol=1e-14)
    if isinstance(hidden, Potts):
        np.testing.assert_allclose(gauged.W.mean(axis=-1), 0.0, atol=1e-14)
    # idempotent, and usable under jit
    again = zero_sum_gauge(gauged)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(gauged)):
        np.testing.assert_allclose(a, b, atol=1e-13)
    jitted = jax.jit(zero_sum_gauge)(model)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(gauged)):
        np.testing.assert_allclose(a, b, atol=1e-13)


def test_zero_sum_gauge_without_potts_is_identity():
    model = Model(Bernoulli(jnp.ones(2, F64)), Spin(jnp.ones(3, F64)), jnp.ones((2, 3), F64))
    assert zero_sum_gauge(model) is model


# --- float32 under strict promotion ------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_float32(kind):
    layer64 = LAYERS[kind]()
    layer = type(layer64)(layer64.theta.astype(jnp.float32))
    layer.check("layer")
    inputs = jnp.asarray(rng_array(12, (3,) + layer.shape), jnp.float32)
    assert layer.cgf(inputs).dtype == jnp.float32
    assert layer.mean(inputs).dtype == jnp.float32
    assert jax.grad(lambda i: layer.cgf(i).sum())(inputs).dtype == jnp.float32
    assert base.cgf_difference(layer, inputs, inputs + jnp.float32(0.1)).dtype == jnp.float32
    assert base.cgf_difference(layer, inputs, inputs + jnp.float32(3.0)).dtype == jnp.float32
    x = base.sample(jax.random.key(0), layer, inputs)
    assert x.dtype == jnp.float32 and x.shape == inputs.shape
    assert layer.energy(x).dtype == jnp.float32
    assert layer.from_data(x).theta.dtype == jnp.float32
    mid, scale = layer.interpolate(layer.from_data(None), jnp.float32(0.5))
    assert mid.theta.dtype == jnp.float32 and scale.dtype == jnp.float32
    assert layer.shifted(inputs[0]).theta.dtype == jnp.float32
    assert base.enumerate_states(layer, 0, 4, jnp.float32).dtype == jnp.float32
    np.testing.assert_allclose(layer.cgf(inputs), layer64.cgf(inputs.astype(F64)), rtol=1e-6)


def test_zero_sum_gauge_float32():
    model = Model(Potts(jnp.ones((2, 3), jnp.float32)), Potts(jnp.zeros((2, 2), jnp.float32)), jnp.ones((2, 3, 2, 2), jnp.float32))
    gauged = zero_sum_gauge(model)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(gauged))


def test_enumerate_states_of_a_layer_with_more_than_two_to_the_32_states():
    """Found by a review: the powers k^i were cast to uint32 and wrapped past 2^32, giving wrong digits for
    Potts(22, 3) (3^21 > 2^32). Each index's digits are those of its base-3 expansion, by Python integers."""
    from jrbm.layers import Potts, enumerate_states

    for index in (0, 12345, 2**31, 2**32 - 1):
        got = np.asarray(enumerate_states(Potts.init(22, 3), index, 1, jnp.float32)).argmax(-1)[0].tolist()
        assert got == [(index // 3**j) % 3 for j in range(22)], index
