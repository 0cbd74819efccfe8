"""Model functions against brute force: energies, free energies and every conditional of the tutorial.

References are computed independently of jrbm's formulas: the tutorial's negative
energy written out in numpy (tests/helpers.py), explicit sums over all states,
and trapezoid quadrature over a fine grid for the Gaussian visible units.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    all_binary,
    random_bernoulli,
    random_gaussian,
    tutorial_negative_energy_bb,
    tutorial_negative_energy_gb,
)

import jrbm

I, J = 4, 3


@pytest.fixture
def bb():
    return random_bernoulli(0, I, J, scale=1.5)


@pytest.fixture
def gb():
    return random_gaussian(1, I, J, scale=1.0)


def test_energy_is_minus_seed_E(bb, gb):
    rng = np.random.default_rng(0)
    for v in all_binary(I):
        for h in all_binary(J):
            assert np.isclose(jrbm.energy(bb, v, h), -tutorial_negative_energy_bb(bb, v, h), rtol=1e-12)
            x = rng.normal(size=I)
            assert np.isclose(jrbm.energy(gb, x, h), -tutorial_negative_energy_gb(gb, x, h), rtol=1e-12)


def test_gaussian_with_equal_sigmas_is_the_seeds_scalar_a_model(gb):
    """Eq. 3.3 with one scalar a: every a_i equal gives the tutorial's model exactly."""
    a = 1.7
    params = gb._replace(log_sigma=jnp.full((I,), -np.log(a)))
    W, b, c = (np.asarray(x) for x in params[:3])
    rng = np.random.default_rng(1)
    for _ in range(5):
        v, h = rng.normal(size=I), rng.integers(0, 2, J).astype(float)
        E_tutorial = a * v @ W @ h - a**2 / 2 * np.sum((v - b) ** 2) + c @ h
        assert np.isclose(jrbm.energy(params, v, h), -E_tutorial, rtol=1e-12)


def test_bb_free_energy_is_log_sum_over_h(bb):
    H = all_binary(J)
    for v in all_binary(I):
        brute = -np.log(np.sum(np.exp([tutorial_negative_energy_bb(bb, v, h) for h in H])))
        assert np.isclose(jrbm.free_energy(bb, v), brute, rtol=1e-12)


def test_gb_free_energy_is_log_sum_over_h(gb):
    H = all_binary(J)
    for v in np.random.default_rng(2).normal(size=(5, I)):
        brute = -np.log(np.sum(np.exp([tutorial_negative_energy_gb(gb, v, h) for h in H])))
        assert np.isclose(jrbm.free_energy(gb, v), brute, rtol=1e-12)


def _joint_bb(params):
    V, H = all_binary(I), all_binary(J)
    logp = np.array([[tutorial_negative_energy_bb(params, v, h) for h in H] for v in V])
    p = np.exp(logp - logp.max())
    return V, H, p / p.sum()


def test_eq_2_10_p_h_given_v_by_normalising_the_joint(bb):
    V, H, p = _joint_bb(bb)
    for a, v in enumerate(V):
        cond = p[a] / p[a].sum()  # p(h | v) over all h
        expected = cond @ H  # P(h_j = 1 | v)
        np.testing.assert_allclose(jrbm.p_h_given_v(bb, v), expected, rtol=1e-12)
        # p(h | v) factorises (eq. 2.10): the product of the marginals is the joint conditional.
        prod = np.prod(np.where(H == 1, expected, 1 - expected), axis=1)
        np.testing.assert_allclose(prod, cond, rtol=1e-10)


def test_eq_2_19_p_v_given_h_by_normalising_the_joint(bb):
    V, H, p = _joint_bb(bb)
    for c, h in enumerate(H):
        cond = p[:, c] / p[:, c].sum()
        np.testing.assert_allclose(jrbm.p_v_given_h(bb, h), cond @ V, rtol=1e-12)
        expected = cond @ V
        prod = np.prod(np.where(V == 1, expected, 1 - expected), axis=1)
        np.testing.assert_allclose(prod, cond, rtol=1e-10)


def test_eq_3_10_p_h_given_v_gaussian(gb):
    H = all_binary(J)
    for v in np.random.default_rng(3).normal(size=(5, I)):
        logp = np.array([tutorial_negative_energy_gb(gb, v, h) for h in H])
        cond = np.exp(logp - logp.max())
        cond /= cond.sum()
        np.testing.assert_allclose(jrbm.p_h_given_v(gb, v), cond @ H, rtol=1e-12)


def test_eq_3_19_mean_and_std_against_the_normalised_density_on_a_grid(gb):
    """p(v | h) factorises over i, so each unit's density along a grid (other units fixed) is its conditional."""
    sigma = np.exp(np.asarray(gb.log_sigma))
    mean = np.asarray(jrbm.p_v_given_h(gb, all_binary(J)))
    for c, h in enumerate(all_binary(J)):
        for i in range(I):
            grid = np.linspace(mean[c, i] - 12 * sigma[i], mean[c, i] + 12 * sigma[i], 20001)
            v = np.zeros((grid.size, I))
            v[:, i] = grid
            logp = -np.asarray(jrbm.energy(gb, v, np.broadcast_to(h, (grid.size, J))))
            dens = np.exp(logp - logp.max())
            dens /= np.trapezoid(dens, grid)
            m = np.trapezoid(grid * dens, grid)
            s = np.sqrt(np.trapezoid((grid - m) ** 2 * dens, grid))
            assert np.isclose(m, mean[c, i], rtol=1e-9, atol=1e-9)
            assert np.isclose(s, sigma[i], rtol=1e-9)


def test_hidden_free_energy_bb_is_log_sum_over_v(bb):
    V = all_binary(I)
    for h in all_binary(J):
        brute = -np.log(np.sum(np.exp([tutorial_negative_energy_bb(bb, v, h) for v in V])))
        assert np.isclose(jrbm.hidden_free_energy(bb, h), brute, rtol=1e-12)


def test_eq_3_18_gaussian_integral_against_quadrature():
    """The analytic integral over v (eq. 3.18, corrected exponent) against 1-D quadrature per unit."""
    params = random_gaussian(4, 1, 3, scale=1.0)
    sigma = float(np.exp(params.log_sigma[0]))
    for h in all_binary(3):
        mean = float(jrbm.p_v_given_h(params, h)[0])
        grid = np.linspace(mean - 15 * sigma, mean + 15 * sigma, 40001)
        logp = -np.asarray(jrbm.energy(params, grid[:, None], np.broadcast_to(h, (grid.size, 3))))
        brute = -(logp.max() + np.log(np.trapezoid(np.exp(logp - logp.max()), grid)))
        assert np.isclose(jrbm.hidden_free_energy(params, h), brute, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_hand_derived_free_energy_grad_matches_autodiff(make):
    params = make(5, 5, 4, scale=1.2)
    v = np.random.default_rng(5).integers(0, 2, (7, 5)).astype(float)
    w = np.random.default_rng(6).normal(size=7)
    hand = jrbm.model.free_energy_grad(params, v, w)
    auto = jax.grad(lambda p: jnp.sum(w * jrbm.free_energy(p, v)))(params)
    for name, x, y in zip(params._fields, hand, auto):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_hand_derived_hidden_free_energy_grad_matches_autodiff(make):
    params = make(6, 5, 4, scale=1.2)
    h = jnp.asarray(all_binary(4))
    w = jnp.asarray(np.random.default_rng(7).normal(size=16))
    hand = jrbm.model.hidden_free_energy_grad(params, h, w)
    auto = jax.grad(lambda p: jnp.sum(w * jrbm.hidden_free_energy(p, h)))(params)
    for name, x, y in zip(params._fields, hand, auto):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_batch_shapes_jit_and_vmap(make):
    params = make(8, 5, 3)
    v = jnp.asarray(np.random.default_rng(8).integers(0, 2, (2, 3, 5)), jnp.float64)
    fe = jrbm.free_energy(params, v)
    assert fe.shape == (2, 3)
    np.testing.assert_allclose(fe[1, 2], jrbm.free_energy(params, v[1, 2]), rtol=1e-13)
    np.testing.assert_allclose(jax.jit(jrbm.free_energy)(params, v), fe, rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(jrbm.free_energy, (None, 0))(params, v), fe, rtol=1e-13)
    assert jrbm.p_h_given_v(params, v).shape == (2, 3, 3)
    assert jrbm.energy(params, v, jnp.zeros(3)).shape == (2, 3)
    # vmap over a stack of models
    stack = jax.tree.map(lambda *x: jnp.stack(x), params, make(9, 5, 3))
    per_model = jax.vmap(jrbm.free_energy, (0, None))(stack, v[0])
    np.testing.assert_allclose(per_model[1], jrbm.free_energy(make(9, 5, 3), v[0]), rtol=1e-13)


@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_float32_follows_params(make):
    params = make(10, 4, 3, dtype=jnp.float32)
    v = np.ones((2, 4), np.float64)
    for out in (
        jrbm.free_energy(params, v),
        jrbm.p_h_given_v(params, v),
        jrbm.p_v_given_h(params, np.ones(3)),
        jrbm.sample_h_given_v(jax.random.key(0), params, v),
        jrbm.sample_v_given_h(jax.random.key(0), params, np.ones(3)),
        jrbm.energy(params, v, np.ones(3)),
    ):
        assert out.dtype == jnp.float32


def test_free_energy_stable_for_extreme_logits():
    """softplus form: no overflow where exp(x) would, and the right asymptotics."""
    params = jrbm.BernoulliRBM(W=jnp.full((2, 1), 400.0, jnp.float32), b=jnp.zeros(2, jnp.float32), c=jnp.zeros(1, jnp.float32))
    fe = jrbm.free_energy(params, jnp.ones(2, jnp.float32))
    assert np.isclose(fe, -800.0, rtol=1e-6)
    assert np.isfinite(jrbm.free_energy(params._replace(W=-params.W), jnp.ones(2, jnp.float32)))


def test_init_from_data():
    data = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], float)
    p = jrbm.init_bernoulli(jax.random.key(0), 3, 5, data=data)
    # visible bias is the logit of the clipped mean: sigmoid(b) == clip(mean)
    np.testing.assert_allclose(jax.nn.sigmoid(p.b), np.clip(data.mean(0), 1e-3, 1 - 1e-3), rtol=1e-6)
    assert np.all(p.c == 0)
    # 5000 weights: the sample std of N(0, 0.01^2) has relative standard error 1/sqrt(2 n) = 1%.
    W = jrbm.init_bernoulli(jax.random.key(1), 100, 50).W
    assert abs(float(jnp.std(W)) / 0.01 - 1) < 0.05
    g = jrbm.init_gaussian(jax.random.key(0), 3, 5, data=data, sigma=[1.0, 2.0, 0.5])
    np.testing.assert_allclose(g.b, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(jnp.exp(g.log_sigma), [1.0, 2.0, 0.5], rtol=1e-6)
