"""Property-based tests (hypothesis) over random small models and data, and extreme parameter regimes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import all_binary
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jrbm

EXAMPLES = 25
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def models(draw, family=None, max_visible=5, max_hidden=4):
    fam = family or draw(st.sampled_from(["bernoulli", "gaussian"]))
    I = draw(st.integers(1, max_visible))
    J = draw(st.integers(1, max_hidden))
    scale = draw(st.floats(0.0, 3.0))
    seed = draw(st.integers(0, 2**31 - 1))
    ks = jax.random.split(jax.random.key(seed), 4)
    W = scale * jax.random.normal(ks[0], (I, J), jnp.float64)
    b = scale * jax.random.normal(ks[1], (I,), jnp.float64)
    c = scale * jax.random.normal(ks[2], (J,), jnp.float64)
    if fam == "bernoulli":
        return jrbm.BernoulliRBM(W, b, c)
    return jrbm.GaussianRBM(W, b, c, 0.5 * jax.random.normal(ks[3], (I,), jnp.float64))


def visible_data(params, seed, n=4):
    rng = np.random.default_rng(seed)
    I = params.W.shape[0]
    if isinstance(params, jrbm.BernoulliRBM):
        return rng.integers(0, 2, (n, I)).astype(np.float64)
    return rng.normal(size=(n, I)) * 2


@SETTINGS
@given(models(), st.integers(0, 1000))
def test_free_energy_is_minus_log_sum_of_exp_minus_energy(params, seed):
    v = visible_data(params, seed)
    H = all_binary(params.W.shape[1])
    e = np.stack([np.asarray(jrbm.energy(params, v, np.broadcast_to(h, (len(v), len(h))))) for h in H])
    brute = -np.logaddexp.reduce(-e, axis=0)
    np.testing.assert_allclose(jrbm.free_energy(params, v), brute, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(models("bernoulli", max_visible=7))
def test_bb_likelihood_sums_to_one(params):
    p = np.exp(np.asarray(jrbm.exact.log_likelihood(params, all_binary(params.W.shape[0]))))
    assert np.isclose(p.sum(), 1.0, rtol=1e-10)


@SETTINGS
@given(models(), st.integers(0, 1000))
def test_conditionals_are_the_normalised_joint(params, seed):
    """P(h_j = 1 | v) = sum_h h_j exp(-energy(v, h)) / sum_h exp(-energy(v, h)) by enumerating h, and for a
    BB-RBM P(v_i = 1 | h) likewise by enumerating v (the GB mean of v | h: test_model's quadrature)."""
    v = visible_data(params, seed)
    H = all_binary(params.W.shape[1])
    e = np.stack([np.asarray(jrbm.energy(params, v, np.broadcast_to(h, (len(v), len(h))))) for h in H])  # (2^J, n)
    weights = np.exp(-e - np.logaddexp.reduce(-e, axis=0))
    ph = np.asarray(jrbm.p_h_given_v(params, v))
    assert np.all((ph >= 0) & (ph <= 1))
    np.testing.assert_allclose(ph, weights.T @ H, rtol=1e-10, atol=1e-12)
    if isinstance(params, jrbm.BernoulliRBM):
        V = all_binary(params.W.shape[0])
        e = np.stack([np.asarray(jrbm.energy(params, np.broadcast_to(u, (len(H), len(u))), H)) for u in V])  # (2^I, 2^J)
        weights = np.exp(-e - np.logaddexp.reduce(-e, axis=0))
        pv = np.asarray(jrbm.p_v_given_h(params, H))
        assert np.all((pv >= 0) & (pv <= 1))
        np.testing.assert_allclose(pv, weights.T @ V, rtol=1e-10, atol=1e-12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # each shape compiles a chain
@given(models(), st.integers(0, 2**31 - 1), st.integers(1, 3))
@example(jrbm.BernoulliRBM(*(jnp.zeros(s, jnp.float64) for s in ((3, 2), (3,), (2,)))), 0, 1)  # fair coins: must differ
def test_gibbs_chain_is_reproducible_and_key_dependent(params, seed, n_steps):
    v0 = visible_data(params, seed, n=64)
    key = jax.random.key(seed)
    a = np.asarray(jrbm.gibbs_chain(key, params, v0, n_steps))
    np.testing.assert_array_equal(a, np.asarray(jrbm.gibbs_chain(key, params, v0, n_steps)))
    np.testing.assert_array_equal(a, np.asarray(jax.jit(jrbm.gibbs_chain, static_argnums=3)(key, params, v0, n_steps)))
    b = np.asarray(jrbm.gibbs_chain(jax.random.fold_in(key, 1), params, v0, n_steps))
    if isinstance(params, jrbm.GaussianRBM):
        assert not np.array_equal(a, b)  # continuous draws never coincide
    else:
        # The returned states are drawn from p(v_i = 1 | h) = sigmoid(b_i + W_i h) (eq. 2.19): given any hidden
        # states, two independent draws of unit i agree with probability at most 1 - m_i, where m_i is the least
        # min(p, 1 - p) over all h. So the 64 chains of two keys coincide with probability at most
        # prod_i (1 - m_i)^64; assert only where that is below 1e-9.
        W, bias = np.asarray(params.W), np.asarray(params.b)
        reach = np.maximum(bias + np.sum(np.maximum(W, 0), axis=1), -(bias + np.sum(np.minimum(W, 0), axis=1)))
        m = 1 / (1 + np.exp(reach))  # sigmoid(-max_h |b_i + W_i h|)
        if 64 * np.sum(np.log1p(-m)) < np.log(1e-9):
            assert not np.array_equal(a, b)


# --- extreme regimes: float32 against float64 ------------------------------------------------------


def extreme(family, dtype):
    ks = jax.random.split(jax.random.key(7), 4)
    I, J = 8, 6
    W = 10.0 * jax.random.normal(ks[0], (I, J), jnp.float64)  # weights of standard deviation 10
    b = 50.0 * jnp.sign(jax.random.normal(ks[1], (I,), jnp.float64))  # biases of magnitude 50
    c = 50.0 * jnp.sign(jax.random.normal(ks[2], (J,), jnp.float64))
    if family == "bernoulli":
        p = jrbm.BernoulliRBM(W, b, c)
    else:
        p = jrbm.GaussianRBM(W / 10, b / 10, c, jnp.linspace(-3.0, 2.0, I))  # log_sigma from e^-3 to e^2
    return jax.tree.map(lambda x: x.astype(dtype), p)


@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_extreme_parameters_float32_agrees_with_float64(family):
    p32, p64 = extreme(family, jnp.float32), extreme(family, jnp.float64)
    v = visible_data(p64, 0, n=16)
    for fn in (jrbm.free_energy, jrbm.p_h_given_v):
        a, b = np.asarray(fn(p32, v.astype(np.float32))), np.asarray(fn(p64, v))
        assert np.all(np.isfinite(a))
        # float32 relative precision 6e-8, amplified by the sums of terms of size ~|W| |v| ~ 100
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * np.max(np.abs(b)))
    z32, z64 = float(jrbm.exact.log_partition(p32)), float(jrbm.exact.log_partition(p64))
    assert np.isfinite(z32) and abs(z32 - z64) <= 1e-5 * abs(z64) + 1e-3
    ll = np.asarray(jrbm.exact.log_likelihood(p32, v.astype(np.float32), check=False))
    assert np.all(np.isfinite(ll))
    np.testing.assert_allclose(ll, jrbm.exact.log_likelihood(p64, v, check=False), rtol=1e-5, atol=1e-5 * np.max(np.abs(ll)))
    g32, g64 = jrbm.exact.grad(p32, v.astype(np.float32), check=False), jrbm.exact.grad(p64, v, check=False)
    # The gradient is the data term dF(v)/dtheta (here by jax.grad) minus the model term. The model term
    # averages statistics over states weighted by exp(-F - log Z): in float32 each exponent is rounded to a
    # few eps32 |log Z| (|log Z| is 245 and 336 here, so eps32 |log Z| ~ 3e-5 and 4e-5), which is the relative
    # error of every weight, so of the model term. The data term's statistics are a few roundings each. Allow
    # 8 of each: 8 eps32 (|log Z| max|model term| + max|data term|) per leaf.
    data = jax.grad(lambda p: jnp.mean(jrbm.free_energy(p, v)))(p64)
    eps = np.finfo(np.float32).eps
    for name, a, b, d in zip(g64._fields, g32, g64, data):
        a, b, d = np.asarray(a, np.float64), np.asarray(b), np.asarray(d)
        assert np.all(np.isfinite(a)), name
        tol = 8 * eps * (abs(z64) * np.max(np.abs(d - b)) + np.max(np.abs(d)))
        assert np.max(np.abs(a - b)) <= tol, (name, np.max(np.abs(a - b)), tol)


def assert_close_to_scale(g32, g64, rel):
    """Each leaf of a float32 gradient within ``rel`` of the largest entry of the float64 one."""
    for name, a, b in zip(g64._fields, g32, g64):
        a, b = np.asarray(a, np.float64), np.asarray(b)
        assert np.all(np.isfinite(a)), name
        assert np.max(np.abs(a - b)) <= rel * np.max(np.abs(b)) + 1e-30, (name, np.max(np.abs(a - b)), np.max(np.abs(b)))


@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_extreme_parameters_ais_stays_finite_and_right(family):
    p32 = extreme(family, jnp.float32)
    res = jrbm.ais.log_partition(jax.random.key(0), p32, betas=5000, n_runs=100)
    assert np.all(np.isfinite(np.asarray(res.log_weights)))
    # float32 AIS against the float64 enumeration: within 5 of its own standard errors (from the
    # spread of the 100 weights) plus float32 rounding of log Z ~ 250-340.
    exact = float(jrbm.exact.log_partition(extreme(family, jnp.float64)))
    assert abs(float(res.log_z) - exact) <= 5 * float(res.log_z_std) + 1e-5 * abs(exact), (float(res.log_z), exact)


# --- log_sigma at its extremes (GB) ------------------------------------------------------------------

LOG_SIGMA_EXTREMES = (-8.0, 8.0)  # sigma from 3e-4 to 3e3: a_i^2 spans 1e-7 .. 9e6


def sigma_extreme(log_sigma, dtype):
    ks = jax.random.split(jax.random.key(11), 3)
    I, J = 6, 5
    p = jrbm.GaussianRBM(
        W=jax.random.normal(ks[0], (I, J), jnp.float64),
        b=jax.random.normal(ks[1], (I,), jnp.float64),
        c=jax.random.normal(ks[2], (J,), jnp.float64),
        log_sigma=jnp.full((I,), log_sigma, jnp.float64),
    )
    return jax.tree.map(lambda x: x.astype(dtype), p)


@pytest.mark.parametrize("log_sigma", LOG_SIGMA_EXTREMES)
def test_gaussian_log_sigma_extremes_float32_agrees_with_float64(log_sigma):
    p32, p64 = sigma_extreme(log_sigma, jnp.float32), sigma_extreme(log_sigma, jnp.float64)
    h = all_binary(p64.W.shape[1])
    # data at the scale of the model: its own conditional means plus noise of its own width
    mean = np.asarray(jrbm.p_v_given_h(p64, h[:8]))
    v = mean + np.exp(log_sigma) * np.random.default_rng(0).normal(size=mean.shape)
    for fn, x in ((jrbm.free_energy, v), (jrbm.p_h_given_v, v), (jrbm.p_v_given_h, h)):
        a, b = np.asarray(fn(p32, x.astype(np.float32))), np.asarray(fn(p64, x))
        assert np.all(np.isfinite(a)), fn.__name__
        # float32 rounding relative to the largest term, |v| a^2 |v - b| or |W h| / a
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.max(np.abs(b)) + 1e-6, err_msg=fn.__name__)
    z32, z64 = float(jrbm.exact.log_partition(p32)), float(jrbm.exact.log_partition(p64))
    assert abs(z32 - z64) <= 1e-5 * abs(z64) + 1e-4
    # log p(v) = -U(v) + sum_j softplus(x_j(v)) - log Z: each term carries float32 roundings of a few eps32 of
    # its size (the hidden logits x_j reach ~4e3 at sigma = e^-8, log Z ~ 1.4e4); allow 8.
    scale = (np.sum(np.abs(np.asarray(jrbm.model.hidden_input(p64, v) + p64.c)), axis=1)
             + np.sum((v - np.asarray(p64.b)) ** 2, axis=1) / (2 * np.exp(2 * log_sigma)) + abs(z64))
    ll32 = np.asarray(jrbm.exact.log_likelihood(p32, v.astype(np.float32)), np.float64)
    assert np.all(np.abs(ll32 - np.asarray(jrbm.exact.log_likelihood(p64, v))) <= 8 * np.finfo(np.float32).eps * scale)
    # The data in float32 resolve v - b only to eps32 |b| / sigma (3.5e-4 at sigma = e^-8), and the
    # log_sigma gradient squares v - b: allow 2e-3 of its scale. At sigma = e^8 the data are ~3e3 and
    # the statistics a v ~ 1 cancel between the data and model terms: allow 1e-4 (~1000 eps32).
    rel = 2e-3 if log_sigma < 0 else 1e-4
    assert_close_to_scale(jrbm.exact.grad(p32, v.astype(np.float32)), jrbm.exact.grad(p64, v), rel)


@pytest.mark.parametrize("log_sigma", LOG_SIGMA_EXTREMES)
def test_gaussian_log_sigma_extremes_sampling_has_the_right_spread(log_sigma):
    p = sigma_extreme(log_sigma, jnp.float32)
    n = 20_000
    h = np.zeros((n, p.W.shape[1]), np.float32)
    v = np.asarray(jrbm.sample_v_given_h(jax.random.key(3), p, h), np.float64)
    assert np.all(np.isfinite(v))
    sigma = np.exp(log_sigma)
    # per unit: the sample mean is within 5 standard errors of b, the sample std within 5 of sigma
    np.testing.assert_allclose(v.mean(0), np.asarray(p.b), atol=5 * sigma / np.sqrt(n) + 1e-6 * sigma)
    np.testing.assert_allclose(v.std(0), sigma, rtol=5 / np.sqrt(2 * n))
