"""Gibbs sampling: the chain visits states with the exact p(v); Gaussian draws have the moments of eq. 3.19."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    bb_marginal,
    bb_transition_matrix,
    random_bernoulli,
    random_gaussian,
    state_index,
    tv_bound,
)

import jrbm


def test_gibbs_chain_samples_the_exact_marginal():
    params = random_bernoulli(0, 5, 4, scale=1.0)
    p = bb_marginal(params)
    n_chains, n_steps = 20000, 60
    # The chains start at all-zeros: the exact distribution after n_steps sweeps,
    # from the exact kernel, is within 1e-9 of p, so the only error left is sampling error.
    T = bb_transition_matrix(params)
    start = np.zeros(len(p))
    start[0] = 1.0
    q = start @ np.linalg.matrix_power(T, n_steps)
    assert 0.5 * np.abs(q - p).sum() < 1e-9
    np.testing.assert_allclose(p @ T, p, rtol=1e-12)  # p is stationary for the sweep

    v = jrbm.gibbs_chain(jax.random.key(1), params, jnp.zeros((n_chains, 5)), n_steps)
    counts = np.bincount(state_index(v), minlength=len(p)) / n_chains
    bound = tv_bound(p, n_chains)
    assert 0.5 * np.abs(counts - p).sum() < bound
    # The test has power: the marginal of a slightly different model is rejected.
    p_other = bb_marginal(params._replace(b=params.b + 0.3))
    assert 0.5 * np.abs(counts - p_other).sum() > bound


def test_gaussian_samples_have_the_moments_of_eq_3_19():
    params = random_gaussian(2, 3, 4)
    h = jnp.array([1.0, 0.0, 1.0, 1.0])
    n = 200_000
    v = jrbm.sample_v_given_h(jax.random.key(3), params, jnp.broadcast_to(h, (n, 4)))
    mean = np.asarray(jrbm.p_v_given_h(params, h))
    sigma = np.exp(np.asarray(params.log_sigma))
    # 5 standard errors: sigma / sqrt(n) for the mean, sigma^2 sqrt(2 / (n - 1)) for the variance.
    assert np.all(np.abs(v.mean(0) - mean) < 5 * sigma / np.sqrt(n))
    assert np.all(np.abs(v.var(0) - sigma**2) < 5 * sigma**2 * np.sqrt(2 / (n - 1)))


def test_hidden_samples_have_the_probabilities_of_eq_2_10():
    params = random_bernoulli(4, 5, 3)
    v = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0])
    n = 100_000
    h = jrbm.sample_h_given_v(jax.random.key(5), params, jnp.broadcast_to(v, (n, 5)))
    p = np.asarray(jrbm.p_h_given_v(params, v))
    assert set(np.unique(h)) <= {0.0, 1.0}
    assert np.all(np.abs(h.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("n_steps", [12, 100, 131])  # within one block of sweeps; a block and a part; 131 prime
@pytest.mark.parametrize("make", [random_bernoulli, random_gaussian])
def test_trajectory_and_final_state_agree(make, n_steps):
    params = make(6, 4, 3)
    v0 = jnp.zeros((7, 4))
    traj = jrbm.gibbs_chain(jax.random.key(0), params, v0, n_steps, trajectory=True)
    final = jrbm.gibbs_chain(jax.random.key(0), params, v0, n_steps)
    assert traj.shape == (n_steps, 7, 4)
    np.testing.assert_array_equal(traj[-1], final)
    # same key, same chain; another key, another chain
    np.testing.assert_array_equal(final, jrbm.gibbs_chain(jax.random.key(0), params, v0, n_steps))
    assert not np.array_equal(final, jrbm.gibbs_chain(jax.random.key(1), params, v0, n_steps))
    # one example works as one chain
    assert jrbm.gibbs_chain(jax.random.key(0), params, v0[0], 3).shape == (4,)


@pytest.mark.parametrize("n_steps", [100, 131])  # a block of 64 sweeps and a part (the part is written rolled into place)
def test_each_trajectory_step_is_one_sweep_of_the_one_before(n_steps):
    """The joint law of consecutive states ``(traj[t], traj[t + 1])`` is ``q_t(s) T(s, s')``, with ``T`` the exact
    one-sweep kernel and ``q_t = delta_{v0} T^(t + 1)``: a check of every step's place in the trajectory, which the
    law of each state alone misses once the chains are near equilibrium (a block written out of order passed it).
    Each of the ``n_steps - 1`` pairs is held to its TV bound at 1e-6 (a false alarm below 1e-3 over all pairs)."""
    params = random_bernoulli(6, 4, 3)
    n_states = 16
    keys = jax.random.split(jax.random.key(0), 3000)
    traj = jax.vmap(lambda k: jrbm.gibbs_chain(k, params, jnp.zeros((7, 4)), n_steps, trajectory=True))(keys)
    traj = np.moveaxis(np.asarray(traj), 1, 0).reshape(n_steps, -1, 4)  # (steps, 3000 x 7 chains, units)
    n = traj.shape[1]
    T = bb_transition_matrix(params)
    q = np.zeros(n_states)
    q[0] = 1.0  # v0 = 0
    for t in range(n_steps - 1):
        q = q @ T  # the law of traj[t]
        joint = (q[:, None] * T).ravel()
        pairs = n_states * state_index(traj[t]) + state_index(traj[t + 1])
        tv = 0.5 * np.abs(np.bincount(pairs, minlength=n_states**2) / n - joint).sum()
        assert tv <= tv_bound(joint, n), (t, tv, tv_bound(joint, n))


def test_jitted_chain_traces_once():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(key, params, v0):
        return jrbm.gibbs_chain(key, params, v0, 20)

    for seed in range(3):
        params = random_bernoulli(seed, 5, 3)
        run(jax.random.key(seed), params, jnp.zeros((4, 5)))


def test_vmap_over_a_stack_of_models_and_keys():
    models = [random_gaussian(s, 3, 2) for s in range(4)]
    stack = jax.tree.map(lambda *x: jnp.stack(x), *models)
    keys = jax.random.split(jax.random.key(0), 4)
    out = jax.vmap(lambda k, p: jrbm.gibbs_chain(k, p, jnp.zeros((5, 3)), 7))(keys, stack)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[2], jrbm.gibbs_chain(keys[2], models[2], jnp.zeros((5, 3)), 7), rtol=1e-12)


def test_float32_chain():
    params = jax.tree.map(lambda x: x.astype(jnp.float32), random_bernoulli(0, 5, 3))
    out = jrbm.gibbs_chain(jax.random.key(0), params, np.zeros((2, 5)), 5)
    assert out.dtype == jnp.float32
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_draw_rows_is_the_eager_draw_and_covers_the_rows_uniformly():
    """``draw_rows`` is ``data[randint(key, shape, 0, n)]`` bit for bit (persistent chains start where they always
    did), under ``jit`` too; over 20,000 draws of 5 rows each count is within 5 binomial standard deviations of 4,000."""
    data = jnp.arange(15.0).reshape(5, 3)
    key = jax.random.key(3)
    eager = data[jax.random.randint(key, (20_000,), 0, 5)]
    drawn = jrbm.sampling.draw_rows(key, data, (20_000,))
    np.testing.assert_array_equal(drawn, eager)
    np.testing.assert_array_equal(jax.jit(jrbm.sampling.draw_rows, static_argnums=2)(key, data, (20_000,)), eager)
    assert jrbm.sampling.draw_rows(key, data, (4, 2)).shape == (4, 2, 3)
    counts = np.bincount(np.asarray(drawn[:, 0] // 3, int), minlength=5)
    assert np.all(np.abs(counts - 4000) < 5 * np.sqrt(20_000 * 0.2 * 0.8)), counts
