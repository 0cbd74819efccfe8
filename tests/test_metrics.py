"""Training monitors against independent references.

The pseudo-log-likelihood is checked against log P(v_i | v_-i) obtained by
normalising the exact p(v) of jrbm.exact.marginal_visible over the two values
of bit i; the reconstruction error against numpy written from eqs. 2.10/2.19
and 3.10/3.19; the free-energy gap against exact log-likelihoods. Averages of
sampled forms allow five standard errors, the standard error computed exactly
(PLL: the variance over bits) or from the same draws; no seed was tuned.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import all_binary, random_bernoulli, random_gaussian

import jrbm
import jrbm.metrics as metrics

I, J = 5, 3


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def brute_force_conditionals(params):
    """log P(v_i | v_-i) for every state (exact.marginal_visible order: bit i of the index is v_i) and bit i."""
    n = params.W.shape[0]
    log_p = np.log(np.asarray(jrbm.exact.marginal_visible(params)))
    idx = np.arange(2**n)
    V = ((idx[:, None] >> np.arange(n)) & 1).astype(np.float64)
    flipped = idx[:, None] ^ (1 << np.arange(n))  # (states, bits)
    return V, log_p[:, None] - np.logaddexp(log_p[:, None], log_p[flipped])


@pytest.fixture
def bb():
    return random_bernoulli(0, I, J, scale=1.5)


def test_exact_pll_is_the_mean_of_the_exact_conditionals(bb):
    V, cond = brute_force_conditionals(bb)
    pll = metrics.pseudo_log_likelihood(bb, V)
    np.testing.assert_allclose(pll, cond.mean(1), rtol=1e-10)
    # Batch-agnostic: one example, and any leading shape.
    np.testing.assert_allclose(metrics.pseudo_log_likelihood(bb, V[7]), cond[7].mean(), rtol=1e-10)
    assert metrics.pseudo_log_likelihood(bb, V[:30].reshape(5, 6, I)).shape == (5, 6)


def test_exact_pll_is_stable_for_large_weights():
    params = random_bernoulli(1, I, J, scale=40.0)
    V = all_binary(I)
    f = np.asarray(jrbm.free_energy(params, V))
    # The same conditionals in log space from free energies of explicitly flipped vectors.
    ref = np.stack(
        [-np.logaddexp(0, f - np.asarray(jrbm.free_energy(params, np.where(np.arange(I) == i, 1 - V, V)))) for i in range(I)],
        axis=1,
    ).mean(1)
    pll = np.asarray(metrics.pseudo_log_likelihood(params, V))
    assert np.all(np.isfinite(pll)) and np.all(pll <= 0)
    np.testing.assert_allclose(pll, ref, rtol=1e-9, atol=1e-9)


def test_sampled_pll_is_unbiased_for_the_per_unit_pll(bb):
    V, cond = brute_force_conditionals(bb)
    v = V[::4]  # 8 examples
    n_keys = 4000
    draws = np.asarray(
        jax.jit(jax.vmap(lambda k: metrics.pseudo_log_likelihood(bb, v, key=k)))(jax.random.split(jax.random.key(0), n_keys))
    )
    assert draws.shape == (n_keys, 8)
    exact = cond[::4].mean(1)
    # Each draw is log P(v_i | v_-i) at a uniform bit i: mean = exact, variance = the variance over bits.
    se = np.sqrt(cond[::4].var(1) / n_keys)
    np.testing.assert_array_less(np.abs(draws.mean(0) - exact), 5 * se + 1e-12)
    # Every draw is one of the example's conditionals.
    assert np.all(np.min(np.abs(draws[:, :, None] - cond[::4][None]), axis=-1) < 1e-10)


def test_pll_is_for_binary_visible_units_only():
    gb = random_gaussian(0, I, J)
    with pytest.raises(TypeError, match="binary visible units"):
        metrics.pseudo_log_likelihood(gb, np.zeros((2, I)))
    with pytest.raises(TypeError, match="binary visible units"):
        metrics.pseudo_log_likelihood(gb, np.zeros((2, I)), key=jax.random.key(0))


def test_reconstruction_error_by_hand(bb):
    v = np.random.default_rng(0).integers(0, 2, (7, I)).astype(np.float64)
    W, b, c = (np.asarray(x) for x in bb)
    recon = sigmoid(sigmoid(v @ W + c) @ W.T + b)  # eqs. 2.10 then 2.19 with probabilities
    np.testing.assert_allclose(metrics.reconstruction_error(bb, v), np.mean((v - recon) ** 2), rtol=1e-12)

    gb = random_gaussian(1, I, J)
    x = np.random.default_rng(1).normal(size=(7, I))
    W, b, c, log_sigma = (np.asarray(p) for p in gb)
    sigma = np.exp(log_sigma)
    recon = b + sigma * (sigmoid((x / sigma) @ W + c) @ W.T)  # eqs. 3.10 then the mean of 3.19
    np.testing.assert_allclose(metrics.reconstruction_error(gb, x), np.mean((x - recon) ** 2), rtol=1e-12)


def test_potts_reconstruction_error_is_the_mean_over_one_hot_entries():
    """The docstring: for Potts units the mean runs over the q one-hot components of each unit, by hand in numpy
    (softmax over the states of the visible field W h + theta, h the hidden means)."""
    from jrbm import layers

    q, n = 3, 4
    params = jrbm.init(jax.random.key(0), layers.Potts.init(n, q), layers.Bernoulli.init(J), weight_std=1.0)
    params = params._replace(visible=layers.Potts(jnp.asarray(np.random.default_rng(0).normal(size=(n, q)))))
    v = np.eye(q)[np.random.default_rng(1).integers(0, q, (6, n))]  # (6, n, q) one-hot
    W, theta, c = np.asarray(params.W), np.asarray(params.visible.theta), np.asarray(params.hidden.theta)
    h = sigmoid(np.einsum("bnq,nqj->bj", v, W) + c)
    field = np.einsum("nqj,bj->bnq", W, h) + theta
    recon = np.exp(field - field.max(-1, keepdims=True))
    recon /= recon.sum(-1, keepdims=True)
    np.testing.assert_allclose(metrics.reconstruction_error(params, v), np.mean((v - recon) ** 2), rtol=1e-12)


def test_sampled_reconstruction_error_averages_over_p_h_given_v(bb):
    v = np.random.default_rng(2).integers(0, 2, (6, I)).astype(np.float64)
    W, b, c = (np.asarray(x) for x in bb)
    H = all_binary(J)
    p1 = sigmoid(v @ W + c)  # (6, J)
    p_h = np.prod(np.where(H[None] == 1, p1[:, None], 1 - p1[:, None]), axis=-1)  # (6, 2^J) p(h | v)
    err_h = np.mean((v[:, None] - sigmoid(H @ W.T + b)[None]) ** 2, axis=-1)  # (6, 2^J)
    expected = np.mean(np.sum(p_h * err_h, axis=1))
    n_keys = 4000
    draws = np.asarray(jax.jit(jax.vmap(lambda k: metrics.reconstruction_error(bb, v, key=k)))(jax.random.split(jax.random.key(1), n_keys)))
    assert abs(draws.mean() - expected) < 5 * draws.std(ddof=1) / np.sqrt(n_keys)


def test_free_energy_gap_is_positive_on_data_the_model_was_fitted_to():
    rng = np.random.default_rng(3)
    patterns = rng.permutation(all_binary(6))
    train, held_out = patterns[:6], patterns[6:12]
    params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, data=train, weight_std=0.1)
    # Exact gradient descent (optax.adam's bias correction mixes int32 and float under strict promotion).

    @jax.jit
    def fit(params):
        def step(params, _):
            return jax.tree.map(lambda p, g: p - 0.5 * g, params, jrbm.exact.grad(params, train)), None

        return jax.lax.scan(step, params, None, 500)[0]

    params = fit(params)
    gap = metrics.free_energy_gap(params, train, held_out)
    ll = lambda v: float(jnp.mean(jrbm.exact.log_likelihood(params, v)))
    np.testing.assert_allclose(gap, ll(train) - ll(held_out), rtol=1e-10)  # log Z cancels
    assert ll(train) > np.log(1 / 6) - 0.5  # fitted: near the empirical distribution's log(1/6)
    assert gap > 1.0
    np.testing.assert_allclose(metrics.free_energy_gap(params, held_out, train), -gap, rtol=1e-12)
    # Batch shapes are free.
    np.testing.assert_allclose(metrics.free_energy_gap(params, train.reshape(2, 3, 6), held_out[0]),
                               np.mean(jrbm.free_energy(params, held_out[0])) - np.mean(jrbm.free_energy(params, train)), rtol=1e-12)


def test_inputs_are_validated(bb):
    v = np.zeros((3, I))
    with pytest.raises(ValueError, match=r"v: expected shape \(\.\.\., 5\)"):
        metrics.pseudo_log_likelihood(bb, np.zeros((3, I + 1)))
    with pytest.raises(ValueError, match="binary"):
        metrics.pseudo_log_likelihood(bb, v + 0.5)
    assert np.all(np.isfinite(metrics.pseudo_log_likelihood(bb, v + 0.5, check=False)))
    with pytest.raises(TypeError, match="key"):
        metrics.pseudo_log_likelihood(bb, v, key=0)
    with pytest.raises(ValueError, match="held_out"):
        metrics.free_energy_gap(bb, v, np.zeros((3, I - 1)))
    with pytest.raises(ValueError, match="train"):
        metrics.free_energy_gap(bb, np.zeros(I + 2), v)
    with pytest.raises(ValueError, match="finite"):
        metrics.reconstruction_error(bb, np.full((2, I), np.nan))
    with pytest.raises(ValueError, match="v: expected shape"):
        metrics.reconstruction_error(bb, np.zeros((2, I - 1)))
    with pytest.raises(TypeError, match="key"):
        metrics.reconstruction_error(bb, v, key=123)
    with pytest.raises(TypeError, match="params"):
        metrics.reconstruction_error(tuple(bb), v)


def test_jit_and_float32_follow_the_params():
    bb = random_bernoulli(2, I, J, dtype=jnp.float32)
    gb = random_gaussian(3, I, J, dtype=jnp.float32)
    v = jnp.asarray(all_binary(I), jnp.float32)
    key = jax.random.key(0)
    out = [
        jax.jit(lambda p, v: metrics.pseudo_log_likelihood(p, v))(bb, v),
        jax.jit(lambda k, p, v: metrics.pseudo_log_likelihood(p, v, key=k))(key, bb, v),
        jax.jit(lambda k, p, v: metrics.reconstruction_error(p, v, key=k))(key, bb, v),
        jax.jit(lambda p, v: metrics.reconstruction_error(p, v))(gb, v),
        jax.jit(metrics.free_energy_gap)(gb, v, v[:3]),
    ]
    assert [o.shape for o in out] == [(2**I,), (2**I,), (), (), ()]
    assert all(o.dtype == jnp.float32 for o in out)
    # float32 agrees with float64.
    bb64 = jax.tree.map(lambda x: x.astype(jnp.float64), bb)
    np.testing.assert_allclose(out[0], metrics.pseudo_log_likelihood(bb64, np.asarray(v, np.float64)), rtol=1e-5, atol=1e-6)
