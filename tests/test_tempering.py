"""Parallel tempering: the beta = 1 replica samples the exact p(v); swaps, gradient, GB-RBM, errors, tracing.

Statistical tolerances come from the number of independent samples (each PT
run is independent; only its beta = 1 replica at the end is used), at a
false-alarm rate of about 1e-6 per assertion. No seed was tuned. The test model
is a "two-mode ferromagnet": every visible unit couples to every hidden unit
with weight w = 2.5, the biases cancel the linear terms (so all-zeros and
all-ones are the modes), plus a small random perturbation that breaks the
symmetry. Block Gibbs from all-zeros is stuck there (its spectral gap is about
1e-4, computed exactly below), which PT fixes.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import all_binary, bb_marginal, bb_transition_matrix, random_bernoulli, random_gaussian, state_index, tv_bound

import jrbm
import jrbm.tempering as pt
from jrbm.model import annealed_free_energy, base_rate, hidden_free_energy, interpolate

I, J = 6, 4
M = 4  # temperatures 0, 1/3, 2/3, 1


def two_mode_model(w=2.5, dtype=jnp.float64):
    pert = random_bernoulli(0, I, J, scale=0.3, dtype=dtype)
    return jrbm.BernoulliRBM(
        W=w * jnp.ones((I, J), dtype) + pert.W,
        b=-w * J / 2 * jnp.ones(I, dtype) + pert.b,
        c=-w * I / 2 * jnp.ones(J, dtype) + pert.c,
    )


def lsb_index(v):
    """Index of binary rows in jrbm.exact's order (bit i of the index is v_i)."""
    return np.asarray(v).astype(np.int64) @ (1 << np.arange(np.shape(v)[-1]))


def tv(counts, p):
    return 0.5 * np.abs(counts / counts.sum() - p).sum()


@pytest.mark.parametrize("swap", pt.SWAPS)
def test_beta_one_replica_samples_the_exact_marginal_where_gibbs_is_stuck(swap):
    params = two_mode_model()
    p = np.asarray(jrbm.exact.marginal_visible(params))
    n_chains, n_steps = 4000, 200
    bound = tv_bound(p, n_chains)  # about 0.05

    state = pt.pt_init(jax.random.key(0), params, jnp.zeros((1, I)), M, n_chains)  # every replica at all-zeros
    state = jax.jit(lambda k, s: pt.pt_chain(k, params, s, M, n_steps, swap=swap))(jax.random.key(1), state)
    counts = np.bincount(lsb_index(state.chains[:, -1]), minlength=2**I)
    assert tv(counts, p) < bound
    rates = np.asarray(state.swap_rates)
    assert rates.shape == (M - 1,) and np.all((rates > 0) & (rates <= 1))

    # Plain Gibbs at the same budget (M sweeps per PT step) from the same start is far off:
    # its exact distribution after M * n_steps sweeps is more than 2 bounds from p, so
    # its empirical distribution is more than one bound away (with probability 1 - 1e-6).
    T = bb_transition_matrix(params)
    q = np.linalg.matrix_power(T, M * n_steps)[0]  # row of all-zeros (index 0 in both orders)
    p_msb = bb_marginal(params)
    assert 0.5 * np.abs(q - p_msb).sum() > 2 * bound
    v = jrbm.gibbs_chain(jax.random.key(2), params, jnp.zeros((n_chains, I)), M * n_steps)
    assert tv(np.bincount(state_index(v), minlength=2**I), p_msb) > bound


def test_pt_gradient_agrees_with_the_exact_gradient():
    params = two_mode_model()
    batch = jnp.asarray(np.random.default_rng(0).integers(0, 2, (10, I)), jnp.float64)
    est = pt.PT(betas=M, k=1, n_chains=1000)
    n_keys, burn_in = 16, 100

    def one(key):
        k1, k2, k3 = jax.random.split(key, 3)
        state = est.init(k1, params, jnp.zeros((1, I)))
        state = pt.pt_chain(k2, params, state, M, burn_in)
        return est.grad(k3, params, batch, state)[0]

    grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), n_keys))
    mean = jax.tree.map(lambda g: np.asarray(g).mean(0), grads)
    exact = jrbm.exact.grad(params, batch)
    # The data terms are the same; the model term averages n = n_keys * n_chains independent
    # statistics v_i p_j, v_i, p_j, each in [0, 1]. Hoeffding with a union bound over the
    # 34 components: |error| < t with probability 1 - 1e-6.
    n = n_keys * est.n_chains
    t = np.sqrt(np.log(2 * 34 / 1e-6) / (2 * n))  # about 0.024
    for name, g, e in zip(params._fields, mean, exact):
        np.testing.assert_array_less(np.abs(g - np.asarray(e)), t, err_msg=name)
    # The bound has power: the model statistics of plain Gibbs chains after the same number of
    # sweeps from the same start (computed exactly from the kernel) miss by more than 2 t.
    q = np.linalg.matrix_power(bb_transition_matrix(params), M * burn_in)[0]
    V, W, c = all_binary(I), np.asarray(params.W), np.asarray(params.c)
    p_h = 1 / (1 + np.exp(-(V @ W + c)))
    p = bb_marginal(params)
    assert np.max(np.abs(V.T @ ((q - p)[:, None] * p_h))) > 2 * t


def test_swap_ratio_is_the_ratio_of_the_replica_densities():
    """log r against free energies of the interpolated models (independent of annealed_free_energy)."""
    rng = np.random.default_rng(1)
    for params, v in [
        (random_bernoulli(4, 5, 3, scale=1.5), rng.integers(0, 2, (2, 7, 5)).astype(np.float64)),
        (random_gaussian(5, 3, 4), rng.normal(size=(2, 7, 3))),
    ]:
        base = base_rate(params, None)
        lo, hi = 0.3, 0.8
        f_lo = lambda x: -jrbm.free_energy(interpolate(base, params, lo), x)  # up to constants that cancel
        f_hi = lambda x: -jrbm.free_energy(interpolate(base, params, hi), x)
        a, b = v[0], v[1]
        want = f_lo(b) + f_hi(a) - f_lo(a) - f_hi(b)
        got = pt.swap_log_ratio(params, lo, hi, a, b)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
        g = lambda beta, x: -annealed_free_energy(base, params, beta, x)
        np.testing.assert_allclose(got, g(lo, b) + g(hi, a) - g(lo, a) - g(hi, b), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(pt.swap_log_ratio(params, lo, hi, b, a), -got, rtol=1e-12)


def test_joint_swap_ratio_is_the_ratio_of_the_replica_joint_densities():
    """joint_log_ratios against energies of the interpolated models (jrbm.energy of interpolate), for
    Bernoulli, Gaussian, Spin-ReLU and Potts-Bernoulli models; constants of each replica cancel."""
    rng = np.random.default_rng(3)
    n, m = 3, 5
    spin_relu = jrbm.init(jax.random.key(1), jrbm.layers.Spin.init(4), jrbm.layers.ReLU.init(3), weight_std=0.5)
    potts = jrbm.init(jax.random.key(2), jrbm.layers.Potts.init(3, 4), jrbm.layers.Bernoulli.init(2), weight_std=0.5)
    cases = [
        (random_bernoulli(4, 5, 3, scale=1.5), rng.integers(0, 2, (n, m, 5)), rng.integers(0, 2, (n, m, 3))),
        (random_gaussian(5, 3, 4), rng.normal(size=(n, m, 3)), rng.integers(0, 2, (n, m, 4))),
        (spin_relu, 2 * rng.integers(0, 2, (n, m, 4)) - 1, rng.exponential(size=(n, m, 3))),
        (potts, np.eye(4)[rng.integers(0, 4, (n, m, 3))], rng.integers(0, 2, (n, m, 2))),
    ]
    betas = jnp.array([0.0, 0.2, 0.5, 0.9, 1.0])
    for params, v, h in cases:  # every field moved off its initial value, so that each term is checked
        params = jax.tree.map(lambda x: jnp.asarray(x + 0.3 * rng.normal(size=np.shape(x)), jnp.float64), params)
        v, h = jnp.asarray(v, jnp.float64), jnp.asarray(h, jnp.float64)
        base = base_rate(params, None)
        log_f = lambda beta, x, y: -jrbm.energy(interpolate(base, params, beta), x, y)  # noqa: E731
        want = np.stack(
            [
                log_f(betas[i], v[:, i + 1], h[:, i + 1]) + log_f(betas[i + 1], v[:, i], h[:, i])
                - log_f(betas[i], v[:, i], h[:, i]) - log_f(betas[i + 1], v[:, i + 1], h[:, i + 1])
                for i in range(m - 1)
            ],
            axis=1,
        )
        got = pt.joint_log_ratios(base, params, v, h, jrbm.model.hidden_input(params, v), betas)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        assert np.abs(want).max() > 0.1  # the states differ enough for the check to bite


@pytest.mark.parametrize("n_temps", [6, 7])
def test_a_swap_round_computes_the_active_pairs_ratios_only(n_temps):
    """The step's ratios, active pairs only (both parities, even and odd ladders), against swap_log_ratio."""
    rng = np.random.default_rng(2)
    for params, v in [
        (random_bernoulli(4, 6, 3, scale=1.5), rng.integers(0, 2, (3, n_temps, 6)).astype(np.float64)),
        (random_gaussian(5, 3, 4), rng.normal(size=(3, n_temps, 3))),
    ]:
        betas = jnp.linspace(0.0, 1.0, n_temps)
        base = base_rate(params, None)
        x = jrbm.model.hidden_input(params, jnp.asarray(v))
        full = np.stack([pt.swap_log_ratio(params, betas[m], betas[m + 1], v[:, m], v[:, m + 1]) for m in range(n_temps - 1)], axis=1)
        for parity in (0, 1):
            got = np.asarray(pt._active_log_ratios(base, params, jnp.asarray(v), x, betas, jnp.int32(parity)))
            active = np.arange(n_temps - 1) % 2 == parity
            np.testing.assert_allclose(got[:, active], full[:, active], rtol=1e-9, atol=1e-9)
            assert np.all(np.isneginf(got[:, ~active]))


@pytest.mark.parametrize("swap", pt.SWAPS)
def test_equal_temperatures_always_swap(swap):
    params = two_mode_model()
    betas = jnp.ones(M)
    state = pt.pt_init(jax.random.key(4), params, all_binary(I), betas, 50)
    state = pt.pt_chain(jax.random.key(5), params, state, betas, 11, swap=swap)
    np.testing.assert_array_equal(state.swap_rates, np.ones(M - 1))
    # Even/odd alternation: pair 0 was proposed in rounds 0, 2, ..., 10, pair 1 in 1, 3, ..., 9.
    np.testing.assert_array_equal(state.n_proposed, [6, 5, 6])
    assert int(state.step) == 11


@pytest.mark.parametrize("swap", pt.SWAPS)
def test_gaussian_rbm_beta_one_replica_has_the_exact_mean(swap):
    params = random_gaussian(6, 3, 4, scale=1.5)
    n_chains, n_steps, m = 4000, 200, 5
    data = np.random.default_rng(2).normal(size=(20, 3))
    state = pt.pt_init(jax.random.key(7), params, data, m, n_chains)
    state = jax.jit(lambda k, s: pt.pt_chain(k, params, s, m, n_steps, swap=swap))(jax.random.key(8), state)
    v = np.asarray(state.chains[:, -1])
    assert state.chains.shape == (n_chains, m, 3) and np.all(np.isfinite(state.chains))
    assert np.all(np.isfinite(state.swap_rates))
    # Exact moments by enumerating h: p(h) ∝ exp(-hidden_free_energy(h)), v | h ~ Normal(b + sigma W h, sigma^2).
    H = all_binary(4)
    log_ph = -np.asarray(hidden_free_energy(params, H))
    ph = np.exp(log_ph - log_ph.max())
    ph /= ph.sum()
    mean_h = np.asarray(jrbm.p_v_given_h(params, H))
    mean = ph @ mean_h
    var = ph @ (np.exp(2 * np.asarray(params.log_sigma)) + mean_h**2) - mean**2
    # 5 standard errors of the mean of n_chains independent draws.
    np.testing.assert_array_less(np.abs(v.mean(0) - mean), 5 * np.sqrt(var / n_chains))

    grads, _ = pt.PT(m, 1, 16, swap).grad(jax.random.key(9), params, data, state._replace(chains=state.chains[:16]))
    assert jax.tree.map(jnp.shape, grads) == jax.tree.map(jnp.shape, params)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_temperature_ladder():
    np.testing.assert_allclose(pt.temperature_ladder(5), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(pt.temperature_ladder(1), [1.0])
    assert pt.temperature_ladder(3, jnp.float32).dtype == jnp.float32
    np.testing.assert_array_equal(pt.temperature_ladder((0.0, 0.5, 1.0)), [0, 0.5, 1])


@pytest.mark.parametrize(
    "betas, error, match",
    [
        (0, ValueError, "at least 1"),
        (True, TypeError, "bool"),
        ([0.0, 0.7, 0.5, 1.0], ValueError, "ascending"),
        ([0.0, 0.5, 0.9], ValueError, "exactly 1"),
        ([0.5, 1.0, 1.0 + 1e-9], ValueError, r"\[0, 1\]"),
        ([-0.1, 1.0], ValueError, r"\[0, 1\]"),
        ([0.0, np.nan, 1.0], ValueError, "finite"),
        ([[0.0, 1.0]], ValueError, "1-D"),
        ([], ValueError, "non-empty"),
        ("hot", TypeError, "betas"),
    ],
)
def test_bad_betas_are_clear_errors(betas, error, match):
    params = two_mode_model()
    with pytest.raises(error, match=match):
        pt.PT(betas).init(jax.random.key(0), params, jnp.zeros((2, I)))


def test_bad_states_and_arguments_are_clear_errors():
    params = two_mode_model()
    state = pt.pt_init(jax.random.key(0), params, jnp.zeros((2, I)), 3, 5)
    with pytest.raises(ValueError, match=r"\(n_chains, 4, 6\)"):
        pt.pt_step(jax.random.key(1), params, state, 4)
    with pytest.raises(TypeError, match="PTState"):
        pt.pt_step(jax.random.key(1), params, state.chains, 3)
    with pytest.raises(ValueError, match="visible"):
        pt.pt_step(jax.random.key(1), params, state._replace(chains=state.chains[..., :5]), 3)
    with pytest.raises(TypeError, match="key"):
        pt.pt_step(0, params, state, 3)
    with pytest.raises(ValueError, match="positive"):
        pt.pt_step(jax.random.key(1), params, state, 3, k=0)
    with pytest.raises(ValueError, match="positive"):
        pt.PT(3, n_chains=0).init(jax.random.key(0), params, jnp.zeros((2, I)))
    with pytest.raises(ValueError, match=r"swap: expected one of 'marginal', 'joint', got 'energy'"):
        pt.PT(3, swap="energy")
    with pytest.raises(ValueError, match=r"swap: expected one of .*, got None"):
        pt.pt_chain(jax.random.key(1), params, state, 3, 2, swap=None)


def test_jitted_step_and_grad_trace_once_and_follow_float32():
    params = two_mode_model(dtype=jnp.float32)
    betas = (0.0, 0.5, 1.0)
    est = pt.PT(betas, k=2, n_chains=8)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, params, state):
        return pt.pt_step(key, params, state, betas, 2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def grad(key, params, batch, state):
        return est.grad(key, params, batch, state)

    state = est.init(jax.random.key(0), params, jnp.zeros((2, I), jnp.float32))
    batch = jnp.ones((4, I), jnp.float32)
    for i in range(3):
        state = step(jax.random.key(i), params, state)
        grads, state = grad(jax.random.key(10 + i), params, batch, state)
        params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    assert state.chains.dtype == jnp.float32 and state.n_accepted.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in grads)
    assert int(state.step) == 6
