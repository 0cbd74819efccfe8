"""CD and PCD against the exact gradient and against the exact expectation of the Markov chain.

Statistical checks average the estimator over N independent keys and allow
five standard errors per component (estimated from the same N draws); with at
most a few dozen components that is a false-alarm rate below 1e-4 for the
whole test, and no seed was tuned. Where a chain's own bias enters, it is
computed exactly from the Gibbs kernel of the small model.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    all_binary,
    bb_marginal,
    bb_stats,
    bb_transition_matrix,
    random_bernoulli,
    random_gaussian,
    state_index,
)

import jrbm

N_KEYS = 4000


def _draws(fn, n=N_KEYS):
    out = jax.jit(jax.vmap(fn))(jax.random.split(jax.random.key(123), n))
    return [np.asarray(x) for x in out]


def _assert_mean_within(draws, expected, extra=0.0, z=5.0):
    for name, d, e in zip(["W", "b", "c", "log_sigma"], draws, expected):
        se = d.std(0, ddof=1) / np.sqrt(len(d))
        err = np.abs(d.mean(0) - np.asarray(e))
        assert np.all(err <= z * se + extra + 1e-12), (name, float(np.max(err - z * se)))


def _exact_cd_expectation(params, data, k):
    """E[cd_grad] exactly: data statistics minus statistics averaged over data @ T^k."""
    T = bb_transition_matrix(params)
    start = np.zeros((len(data), 2 ** data.shape[1]))
    start[np.arange(len(data)), state_index(data)] = 1.0
    q = (start @ np.linalg.matrix_power(T, k)).mean(0)  # distribution of v_k
    V = all_binary(data.shape[1])
    pos = bb_stats(params, data)
    W, b, c = (np.asarray(x) for x in params)
    p = 1 / (1 + np.exp(-(V @ W + c)))
    neg = [V.T @ (q[:, None] * p), q @ V, q @ p]  # eqs. 2.11-2.13 averaged under q
    return [n_ - p_ for p_, n_ in zip(pos, neg)], q


@pytest.fixture(scope="module")
def bb_setup():
    params = random_bernoulli(0, 6, 4, scale=1.0)
    data = np.random.default_rng(0).integers(0, 2, (10, 6)).astype(np.float64)
    return params, data


def test_cd_k_mean_is_the_exact_chain_expectation_and_tends_to_the_gradient(bb_setup):
    params, data = bb_setup
    k = 60
    expected, q = _exact_cd_expectation(params, data, k)
    draws = _draws(lambda key: jrbm.cd_grad(key, params, data, k))
    _assert_mean_within(draws, expected)
    # After k sweeps the chain is within TV distance eps of p(v); every statistic
    # lies in [0, 1], so CD-k differs from the exact gradient by at most eps.
    eps = 0.5 * np.abs(q - bb_marginal(params)).sum()
    assert eps < 1e-6
    _assert_mean_within(draws, jrbm.exact.grad(params, data), extra=eps)


@pytest.fixture(params=[0, 1 << 18], ids=["noise-per-sweep", "noise-drawn-first"])
def predraw_limit(request, monkeypatch):
    """Sets :data:`jrbm.sampling.PREDRAW_LIMIT`. The limit is read when a chain is traced, so the compiled
    programs are dropped before (trace again with it) and after (no later test reuses them)."""
    monkeypatch.setattr(jrbm.sampling, "PREDRAW_LIMIT", request.param)
    jax.clear_caches()
    yield request.param
    jax.clear_caches()


def test_cd_3_mean_is_the_exact_chain_expectation_either_way_of_drawing(bb_setup, predraw_limit):
    """negative_phase draws the noise of all sweeps at once for small chains, sweep by sweep for large ones."""
    params = random_bernoulli(2, 6, 4, scale=2.0)
    data = bb_setup[1]
    expected, _ = _exact_cd_expectation(params, data, 3)
    _assert_mean_within(_draws(lambda key: jrbm.cd_grad(key, params, data, 3)), expected)


def test_cd_1_bias_is_visible_where_the_chain_mixes_slowly():
    """Large weights: CD-1 is unbiased for its own chain expectation, which is far from the gradient."""
    params = random_bernoulli(1, 6, 4, scale=3.0)
    data = np.random.default_rng(1).integers(0, 2, (10, 6)).astype(np.float64)
    expected, _ = _exact_cd_expectation(params, data, 1)
    draws = _draws(lambda key: jrbm.cd_grad(key, params, data, 1))
    _assert_mean_within(draws, expected)
    exact = jrbm.exact.grad(params, data)
    # The bias (exact CD-1 expectation minus the true gradient) is many standard errors wide.
    bias = np.abs(expected[0] - np.asarray(exact.W))
    se = draws[0].std(0, ddof=1) / np.sqrt(N_KEYS)
    assert np.max(bias / se) > 20
    assert np.max(bias) > 0.05


def test_pcd_is_unbiased_from_chains_at_equilibrium(bb_setup):
    """Chains drawn exactly from p(v) stay at p(v) after any k, so PCD-1 estimates the exact gradient."""
    params, data = bb_setup
    p = jnp.asarray(bb_marginal(params))
    V = jnp.asarray(all_binary(6))

    def one(key):
        k_chains, k_grad = jax.random.split(key)
        chains = V[jax.random.choice(k_chains, len(p), (20,), p=p)]
        grads, new_chains = jrbm.pcd_grad(k_grad, params, data, chains, k=1)
        return grads

    _assert_mean_within(_draws(one), jrbm.exact.grad(params, data))


def test_gaussian_cd_with_long_chains_estimates_all_four_leaves(predraw_limit):
    """A weakly coupled GB-RBM (Gibbs correlation per sweep ~ |W|^2 << 1) mixes within a few sweeps; k = 40."""
    params = random_gaussian(2, 3, 4, scale=0.4)
    data = np.random.default_rng(2).normal(size=(10, 3))
    draws = _draws(lambda key: jrbm.cd_grad(key, params, data, 40))
    exact = jrbm.exact.grad(params, data)
    assert np.max(np.abs(exact.log_sigma)) > 0.1  # the log_sigma gradient is non-trivial here
    _assert_mean_within(draws, exact)


def test_gaussian_pcd_from_long_chains():
    params = random_gaussian(3, 3, 4, scale=0.4)
    data = np.random.default_rng(3).normal(size=(10, 3))

    def one(key):
        k1, k2 = jax.random.split(key)
        chains = jrbm.gibbs_chain(k1, params, jnp.zeros((10, 3)), 40)
        return jrbm.pcd_grad(k2, params, data, chains, k=1)[0]

    _assert_mean_within(_draws(one), jrbm.exact.grad(params, data))


@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_estimator_objects_share_one_interface(make):
    params = make(4, 5, 3)
    data = jnp.asarray(np.random.default_rng(4).integers(0, 2, (12, 5)), jnp.float64)
    for est in (jrbm.CD(k=2), jrbm.PCD(k=2, n_chains=7)):
        state = est.init(jax.random.key(0), params, data)
        grads, state2 = jax.jit(est.grad)(jax.random.key(1), params, data[:4], state)
        assert jax.tree.structure(grads) == jax.tree.structure(params)
        for g, p in zip(grads, params):
            assert g.shape == p.shape and g.dtype == p.dtype
        assert jax.tree.structure(state2) == jax.tree.structure(state)
    cd, _ = jrbm.CD(3).grad(jax.random.key(5), params, data, ())
    ref = jrbm.cd_grad(jax.random.key(5), params, data, 3)
    for x, y in zip(cd, ref):
        np.testing.assert_array_equal(x, y)
    chains = jrbm.PCD(1, 9).init(jax.random.key(0), params, data)
    assert chains.shape == (9, 5)
    assert all(any(np.array_equal(c, d) for d in np.asarray(data)) for c in np.asarray(chains))


def test_estimators_keep_float32():
    params = jax.tree.map(lambda x: x.astype(jnp.float32), random_bernoulli(5, 5, 3))
    data = jnp.ones((4, 5), jnp.float32)
    g = jrbm.cd_grad(jax.random.key(0), params, data, 1)
    assert all(x.dtype == jnp.float32 for x in g)
    g, chains = jrbm.pcd_grad(jax.random.key(0), params, data, data[:2], 1)
    assert chains.dtype == jnp.float32 and chains.shape == (2, 5)


def test_fpcd_without_fast_weights_is_pcd(bb_setup):
    params, data = bb_setup
    chains = jnp.asarray(data[:7])
    grads, state = jrbm.FPCD(2, 7, fast_lr=0.0).grad(jax.random.key(3), params, data, jrbm.estimators.FPCDState(chains, jax.tree.map(jnp.zeros_like, params)))
    ref, ref_chains = jrbm.pcd_grad(jax.random.key(3), params, data, chains, 2)
    np.testing.assert_array_equal(state.chains, ref_chains)  # the same draws: the sampler is params + 0
    for g, r in zip(grads, ref):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-14)  # summed in another order only
    assert all(np.all(np.asarray(f) == 0) for f in jax.tree.leaves(state.fast))


@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_fpcd_fast_parameters_step_down_the_gradient_and_decay(make):
    params = make(6, 5, 3, scale=0.5)
    data = jnp.asarray(np.random.default_rng(6).integers(0, 2, (12, 5)), jnp.float64)
    est = jrbm.FPCD(1, 6, fast_lr=0.3, fast_decay=0.9)
    fast = jax.tree.map(lambda x: 0.1 * jnp.ones_like(x), params)
    fast = jax.tree_util.tree_map_with_path(lambda p, f: f if jrbm.estimators._is_fast(p) else 0 * f, fast)
    grads, state = est.grad(jax.random.key(1), params, data, jrbm.estimators.FPCDState(data[:6], fast))
    for (path, f_new), f_old, g in zip(jax.tree_util.tree_flatten_with_path(state.fast)[0], jax.tree.leaves(fast), jax.tree.leaves(grads)):
        name = jax.tree_util.keystr(path)
        expected = 0.9 * f_old - 0.3 * g if "log_sigma" not in name else jnp.zeros_like(f_old)  # no fast log-scales
        np.testing.assert_allclose(f_new, expected, rtol=1e-12, atol=1e-15, err_msg=name)
    assert jax.tree.leaves(jrbm.estimators.fast_mask(params)) == [True, True, True] + ([False] if len(params) == 4 else [])


def test_fpcd_model_term_is_the_expectation_under_params_plus_fast(bb_setup):
    """Chains drawn exactly from p(v; theta + fast) stay there; the mean estimate is the data term under theta
    minus the model term under theta + fast, both computed exactly (jax.grad and enumeration)."""
    params, data = bb_setup
    fast = random_bernoulli(9, 6, 4, scale=0.5)
    combined = jax.tree.map(jnp.add, params, fast)
    p = jnp.asarray(bb_marginal(combined))
    V = jnp.asarray(all_binary(6))
    est = jrbm.FPCD(1, 20, fast_lr=0.1)

    def one(key):
        k_chains, k_grad = jax.random.split(key)
        chains = V[jax.random.choice(k_chains, len(p), (20,), p=p)]
        return est.grad(k_grad, params, data, jrbm.estimators.FPCDState(chains, fast))[0]

    mean_f = lambda q: jrbm.free_energy(q, data).mean()
    data_term = jax.grad(mean_f)(params)
    model_term = jax.tree.map(jnp.subtract, jax.grad(mean_f)(combined), jrbm.exact.grad(combined, data))  # E_{theta+fast}[dF]
    _assert_mean_within(_draws(one), jax.tree.map(jnp.subtract, data_term, model_term))


def test_fpcd_trains_in_fit_and_refuses_bad_settings():
    data = jrbm.datasets.bars_and_stripes(3)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    import optax

    start = float(jrbm.exact.log_likelihood(params, data).mean())
    with jax.numpy_dtype_promotion("standard"):
        trained, history = jrbm.fit(jax.random.key(1), params, data, optimizer=optax.sgd(0.1), estimator=jrbm.FPCD(1, 16, fast_lr=0.1),
                                    epochs=300, batch_size=2, log_likelihood="exact", eval_every=300, progress=False)
    # 2,400 updates take PCD and FPCD about 1.1 nats above the start here; half a nat shows it learns
    assert history["log_likelihood"][-1] > start + 0.5, (start, history["log_likelihood"][-1])
    with pytest.raises(ValueError, match=r"fast_decay: expected a float in \[0, 1\), got 1.0"):
        jrbm.FPCD(fast_decay=1.0)
    with pytest.raises(ValueError, match="fast_lr: expected a finite float >= 0, got -0.1"):
        jrbm.FPCD(fast_lr=-0.1)
    with pytest.raises(TypeError, match="fast_lr: expected a finite float >= 0, got str"):
        jrbm.FPCD(fast_lr="0.1")
