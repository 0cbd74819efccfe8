"""jrbm.ais against exact log Z of small models (jrbm.exact), with statistically justified margins.

Every statistical assertion uses a margin derived from the sample at hand: a
standard error from the runs themselves (the accuracy tests allow 6 of them);
seeds are fixed at 0.. and were not searched.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import random_bernoulli, random_gaussian

import jrbm
import jrbm.ais as ais
from jrbm import model


def _cd_trained_bernoulli():
    """A 10x8 BB-RBM after 300 CD-1 steps (SGD, momentum 0.9) on 20 random binary patterns: weights std ~2."""
    data = (jax.random.uniform(jax.random.key(10), (20, 10)) < 0.5).astype(jnp.float64)
    params = jrbm.init_bernoulli(jax.random.key(11), 10, 8, data=data, weight_std=0.1)
    opt = optax.sgd(0.1, momentum=0.9)

    def step(carry, key):
        p, s = carry
        u, s = opt.update(jrbm.cd_grad(key, p, data, k=1), s, p)
        return (optax.apply_updates(p, u), s), None

    train = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), jax.random.split(jax.random.key(12), 300))[0][0])
    return train(params), data


@functools.partial(jax.jit, static_argnums=2)
def _exact_samples(key, params, n):
    """``n`` exact draws of ``v`` from a small BB-RBM, by enumerating ``p(v)``."""
    n_visible = params.W.shape[0]
    probs = jrbm.exact.marginal_visible(params)
    states = jrbm.exact.states(n_visible, 0, 1 << n_visible, params.W.dtype)
    return states[jax.random.choice(key, 1 << n_visible, (n,), p=probs)]


# --- the schedule -----------------------------------------------------------------------------


def test_default_schedule_is_salakhutdinov_murray():
    b = ais.default_betas()
    assert b.shape == (14500,) and b[0] == 0.0 and b[-1] == 1.0
    assert np.all(np.diff(b) > 0)
    assert np.sum(b < 0.5) == 500 and np.sum((b >= 0.5) & (b < 0.9)) == 4000 and np.sum(b >= 0.9) == 10000
    used = ais.schedule(None, jnp.float32)  # what betas=None runs
    assert used.dtype == jnp.float32 and used.shape == (14500,) and used[-1] == 1.0


# --- accuracy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bb-random", "bb-cd-trained", "bb-skewed-base", "gb-random", "gb-data-base"])
def test_forward_ais_within_6_standard_errors_of_exact(kind):
    """2,000 betas and 100 runs, within 6 of the runs' own standard errors of the exact log Z.

    exp(log_z) is unbiased for Z; log_z errs low by about SE^2 / 2 (Jensen), which is below 1e-3 here. 6 SE,
    as in the unbiasedness test below: the t-statistic of log-normal-like weights has heavier tails than a
    normal's. The ``*-base`` cases anneal from a base fitted to data far from the model's own visible
    biases (pixel means 0.15; Gaussian data of mean ~1 and std ~2), which the base's terms of every
    intermediate distribution must carry.
    """
    data = None
    if kind == "bb-random":
        params = random_bernoulli(0, 10, 8, scale=1.0)
    elif kind == "bb-cd-trained":
        params, data = _cd_trained_bernoulli()
    elif kind == "bb-skewed-base":
        params = random_bernoulli(0, 10, 8, scale=1.0)
        data = (jax.random.uniform(jax.random.key(3), (200, 10)) < 0.15).astype(jnp.float64)
    elif kind == "gb-random":
        params = random_gaussian(1, 3, 6, scale=1.0)
    else:
        params = random_gaussian(1, 3, 6, scale=1.0)
        data = 2 * jax.random.normal(jax.random.key(3), (200, 3), jnp.float64) + 1
    exact = jrbm.exact.log_partition(params)
    res = ais.log_partition(jax.random.key(0), params, data=data, betas=2000, n_runs=100)
    assert res.log_z_std < 0.05
    assert abs(res.log_z - exact) < 6 * res.log_z_std, (float(res.log_z - exact), float(res.log_z_std))
    assert res.lower < res.log_z < res.upper
    # The S&M interval log(Z_hat -/+ 3 sigma) is log_z -/+ 3 std to first order.
    np.testing.assert_allclose([res.log_z - res.lower, res.upper - res.log_z], 3 * res.log_z_std, rtol=0.2)
    assert res.log_weights.shape == (100,) and res.v.shape == (100, params.W.shape[0])


def test_log_likelihood_matches_exact():
    params = random_bernoulli(0, 10, 8, scale=1.0)
    v = (jax.random.uniform(jax.random.key(5), (30, 10)) < 0.5).astype(jnp.float64)
    ll, res = ais.log_likelihood(jax.random.key(0), params, v, betas=2000, n_runs=100)
    # the free energies are exact, so the error is log Z's: within 6 of its standard errors as above
    assert abs(ll - jrbm.exact.log_likelihood(params, v).mean()) < 6 * res.log_z_std


# --- the bounds and unbiasedness --------------------------------------------------------------

N_RUNS, SHORT = 2000, 50


@pytest.fixture(scope="module")
def short_schedule_runs():
    """Forward runs and reverse runs from exact samples of a multimodal BB-RBM, 50 betas, 2,000 runs each.

    The model has weights std 2 and 10 visible units; its two most probable
    states hold ~70% of the mass. Returns ``(exact log Z, forward log-weights,
    reverse log-weights)``.
    """
    params = random_bernoulli(7, 10, 8, scale=2.0)
    fwd = ais.log_partition(jax.random.key(0), params, betas=SHORT, n_runs=N_RUNS).log_weights
    v0 = _exact_samples(jax.random.key(1), params, N_RUNS)
    rev = ais.reverse_log_partition(jax.random.key(2), params, v0, betas=SHORT).log_weights
    return float(jrbm.exact.log_partition(params)), np.asarray(fwd), np.asarray(rev)


def _se(x):
    return x.std(ddof=1) / np.sqrt(x.shape[0])


def test_forward_below_exact_below_reverse_with_exact_starts(short_schedule_runs):
    """Forward AIS errs low and reverse AIS (exact starts) errs high, in expectation.

    Each entry of ``log_weights`` is an independent one-run estimate of log Z, so
    their mean estimates E[log Z_hat] for one run, which Jensen puts below log Z
    (forward) and above it (reverse). With 50 betas the gap is ~0.3 nats each
    way, ~15 standard errors for 2,000 runs (log-weights sd ~0.75). We assert the
    mean is more than 5 SE (from the same sample) on the right side: by the CLT
    for 2,000 iid light-tailed log-weights, an expectation on the wrong side would
    pass with probability < 3e-7, and the right one fails only on a ~10 SE
    fluctuation.
    """
    exact, fwd, rev = short_schedule_runs
    assert fwd.mean() + 5 * _se(fwd) < exact < rev.mean() - 5 * _se(rev)


@pytest.mark.parametrize("direction", ["forward-bb", "reverse-bb", "forward-gb"])
def test_weights_unbiased_in_z(direction, short_schedule_runs):
    """Forward: E[exp(log_weights)] = Z. Reverse with exact starts: E[exp(-log_weights)] = 1 / Z.

    So the log of the mean ratio, the error of the estimate ``log_z`` with 2,000
    runs, is close to 0 even with a schedule this short, while the mean one-run
    log-weight is more than 5 SE off (the test above): this separates
    unbiasedness in Z from bias in log Z. The ratios are close to log-normal
    (log-weights sd ~0.5-0.8 here): the sample mean and its standard error rise
    and fall together, which makes the t-statistic's tails heavier than normal,
    so the bound is 6 standard errors of the sample; the error of ``log_z`` is
    allowed those 6 delta-method standard errors plus the Jensen bias
    ``var / (2 n)`` of the log of a mean.
    """
    exact, fwd, rev = short_schedule_runs
    if direction == "forward-bb":
        ratio = np.exp(fwd - exact)
    elif direction == "reverse-bb":
        ratio = np.exp(-(rev - exact))
    else:
        params = random_gaussian(1, 3, 6, scale=1.0)
        lw = ais.log_partition(jax.random.key(0), params, betas=100, n_runs=N_RUNS).log_weights
        ratio = np.exp(np.asarray(lw) - float(jrbm.exact.log_partition(params)))
    assert abs(ratio.mean() - 1) < 6 * _se(ratio)
    rel = ratio.std(ddof=1) / ratio.mean()
    assert abs(np.log(ratio.mean())) < 6 * rel / np.sqrt(N_RUNS) + rel**2 / (2 * N_RUNS)


def test_summary_spread_and_interval():
    """log_z_std is the delta-method relative standard error of the mean weight; the interval is log(Z_hat -/+ 3 sigma)."""
    lw = jnp.log(jnp.array([2.0, 3.0, 3.0, 4.0]))
    w = np.array([2.0, 3.0, 3.0, 4.0])
    log_z, std, lower, upper = ais._summary(lw, +1)
    rel = w.std(ddof=1) / w.mean() / 2
    np.testing.assert_allclose([log_z, std], [np.log(3.0), rel], rtol=1e-12)
    np.testing.assert_allclose([lower, upper], np.log(3.0 * (1 + np.array([-3, 3]) * rel)), rtol=1e-12)
    # Reverse: 1 / Z is the average of exp(-log_weights).
    log_z, std, lower, upper = ais._summary(-lw, -1)
    np.testing.assert_allclose([log_z, std], [-np.log(3.0), rel], rtol=1e-12)
    np.testing.assert_allclose([lower, upper], -np.log(3.0 * (1 + np.array([3, -3]) * rel)), rtol=1e-12)
    # A spread of more than a third of Z: the lower end of the forward interval is -inf.
    assert ais._summary(jnp.array([0.0, 10.0]), +1)[2] == -np.inf
    assert np.isnan(ais._summary(jnp.array([1.0]), +1)[1])


def _kish(w):
    w = np.asarray(w, np.float64)
    return w.sum() ** 2 / (w * w).sum()


def test_ess_is_kish_effective_sample_size_of_the_weights():
    """ess: (sum w)^2 / sum w^2 of exp(+log_weights) forward and exp(-log_weights) reverse, over the last axis."""
    lw = np.log(np.array([2.0, 3.0, 3.0, 4.0]))
    v = jnp.zeros((4, 1))
    fwd = ais.AISResult(*ais._summary(jnp.asarray(lw), +1), jnp.asarray(lw), v)
    rev = ais.AISResult(*ais._summary(jnp.asarray(lw), -1), jnp.asarray(lw), v)
    np.testing.assert_allclose(fwd.ess, 144 / 38, rtol=1e-12)  # w = 2, 3, 3, 4
    np.testing.assert_allclose(rev.ess, _kish(1 / np.array([2.0, 3.0, 3.0, 4.0])), rtol=1e-12)
    assert abs(fwd.ess - rev.ess) > 0.01  # the two directions weigh the runs differently
    # Equal weights: every run counts; one run far ahead: one counts. Stacked results: one value per row.
    lws = jnp.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 200.0]])
    stacked = ais.AISResult(*jax.vmap(lambda a: ais._summary(a, +1))(lws), lws, jnp.zeros((2, 4, 1)))
    np.testing.assert_allclose(stacked.ess, [4.0, 1.0], rtol=1e-12)
    # Real runs of a trained model, against the formula in numpy.
    params, data = _cd_trained_bernoulli()
    f = ais.log_partition(jax.random.key(0), params, data=data, betas=50, n_runs=40)
    r = ais.reverse_log_partition(jax.random.key(1), params, data, betas=50)
    np.testing.assert_allclose(f.ess, _kish(np.exp(f.log_weights - f.log_weights.max())), rtol=1e-10)
    np.testing.assert_allclose(r.ess, _kish(np.exp(r.log_weights.min() - r.log_weights)), rtol=1e-10)
    assert 1 <= f.ess < 40 and 1 <= r.ess < 20


# --- exact special cases (deterministic) ------------------------------------------------------


def test_no_interaction_makes_every_weight_exact():
    """With W = 0 and a base with the model's visible marginals, f_beta(v) / f_beta'(v) does not depend on v."""
    bb = random_bernoulli(3, 10, 8)._replace(W=jnp.zeros((10, 8)), b=jnp.zeros(10))  # the BB base is uniform
    gb = random_gaussian(4, 3, 6)._replace(W=jnp.zeros((3, 6)))  # the GB base is the model's own b, sigma
    for params in (bb, gb):
        exact = jrbm.exact.log_partition(params)
        fwd = ais.log_partition(jax.random.key(0), params, betas=2000, n_runs=100)
        rev = ais.reverse_log_partition(jax.random.key(1), params, fwd.v, betas=2000)
        for res in (fwd, rev):
            np.testing.assert_allclose(res.log_weights, exact, rtol=0, atol=1e-11)
            np.testing.assert_allclose(res.log_z, exact, rtol=0, atol=1e-11)
            assert res.log_z_std < 1e-12


def test_two_point_schedule_is_plain_importance_sampling():
    """betas = [0, 1]: no transition; each weight is Z_0 f_1(v) / f_0(v) at the run's base sample v."""
    params = random_bernoulli(0, 10, 8, scale=1.0)
    res = ais.log_partition(jax.random.key(0), params, betas=jnp.array([0.0, 1.0]), n_runs=50)
    base = model.base_rate(params)
    expect = (
        ais.base_log_partition(base)
        + model.annealed_free_energy(base, params, 0.0, res.v)
        - model.annealed_free_energy(base, params, 1.0, res.v)
    )
    np.testing.assert_allclose(res.log_weights, expect, rtol=1e-12)
    np.testing.assert_allclose(ais.base_log_partition(base), 18 * np.log(2))


def test_annealing_path_identities():
    """What AIS relies on from the protocol: the intermediate model is the annealed density (its free
    energy differs from the annealed free energy by one constant over all v), its p(h | v) is
    sigmoid(beta x(v)), and the weight increment equals the difference of annealed free energies.

    The bases are fitted to data far from the models' visible biases (Bernoulli pixel means 0.15;
    Gaussian data of mean ~1 and std ~2), so that the base's terms count."""
    v_bb = (jax.random.uniform(jax.random.key(0), (16, 4)) < 0.5).astype(jnp.float64)
    v_gb = jax.random.normal(jax.random.key(1), (16, 4), jnp.float64)
    skewed = (jax.random.uniform(jax.random.key(2), (200, 4)) < 0.15).astype(jnp.float64)
    for params, v, data in [
        (random_bernoulli(0, 4, 3, scale=1.5), v_bb, skewed),
        (random_gaussian(1, 4, 3, scale=1.0), v_gb, 2 * v_gb + 1),
    ]:
        base = model.base_rate(params, data)
        x = model.hidden_input(params, v)
        for b0, b1 in [(0.0, 0.3), (0.3, 0.3001), (0.5, 1.0)]:
            mid = model.interpolate(base, params, b1)
            offset = jrbm.free_energy(mid, v) - model.annealed_free_energy(base, params, b1, v)
            np.testing.assert_allclose(offset, offset[0], rtol=0, atol=1e-10)
            np.testing.assert_allclose(model.p_h_given_v(mid, v), jax.nn.sigmoid(b1 * (params.c + x)), rtol=1e-12)
            step = model.annealed_log_ratio(base, params, v, x, b0, b1)
            diff = model.annealed_free_energy(base, params, b0, v) - model.annealed_free_energy(base, params, b1, v)
            np.testing.assert_allclose(step, diff, rtol=1e-9, atol=1e-12)


# --- jit, vmap, float32 -----------------------------------------------------------------------


def test_jit_vmap_and_float32():
    params64 = random_bernoulli(0, 10, 8, scale=1.0)
    exact = float(jrbm.exact.log_partition(params64))
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params64)
    traces = []

    @jax.jit
    def estimate(keys, params, betas):  # a traced schedule: its values cannot be checked under jit
        traces.append(None)
        fwd = jax.vmap(lambda k: ais.log_partition(k, params, betas=betas, n_runs=100))(keys)
        rev = ais.reverse_log_partition(keys[0], params, fwd.v[0], betas=betas)
        return fwd, rev

    betas = jnp.linspace(0, 1, 1000, dtype=jnp.float32)
    estimate(jax.random.split(jax.random.key(0), 2), params, betas)
    fwd, rev = estimate(jax.random.split(jax.random.key(1), 2), params, betas)
    assert len(traces) == 1
    assert fwd.log_z.shape == (2,) and fwd.log_weights.shape == (2, 100) and fwd.v.shape == (2, 100, 10)
    for leaf in (*fwd, *rev):
        assert leaf.dtype == jnp.float32
    # Forward: within 6 of each estimate's own standard errors (as above), plus 1e-3 for float32 rounding
    # over 1,000 steps (~1e-4). Reverse, from forward AIS's last states (not exact samples, so its error is
    # not its spread alone): within 0.1 nats, about 10 of the forward standard errors.
    assert np.all(np.abs(np.asarray(fwd.log_z) - exact) < 6 * np.asarray(fwd.log_z_std) + 1e-3), (fwd.log_z, fwd.log_z_std)
    np.testing.assert_allclose(rev.log_z, exact, atol=0.1)


# --- input validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "betas, error, match",
    [
        (jnp.array([0.0, 0.6, 0.4, 1.0]), ValueError, "non-decreasing"),
        (jnp.array([0.1, 0.5, 1.0]), ValueError, "start at 0"),
        (jnp.array([0.0, 0.5, 0.9]), ValueError, "end at 1"),
        (jnp.array([0.0, jnp.nan, 1.0]), ValueError, "finite"),
        (jnp.array([[0.0, 1.0]]), ValueError, "1-D"),
        (jnp.array([0.0]), ValueError, "at least 2"),
        (1, ValueError, "at least 2"),
        ("fast", TypeError, "betas"),
    ],
)
def test_bad_betas(betas, error, match):
    params = random_bernoulli(0, 4, 3)
    with pytest.raises(error, match=match):
        ais.log_partition(jax.random.key(0), params, betas=betas, n_runs=2)


def test_bad_arguments():
    params = random_bernoulli(0, 4, 3)
    with pytest.raises(TypeError, match="key"):
        ais.log_partition(0, params, betas=3)
    with pytest.raises(TypeError, match="key"):
        ais.log_likelihood(None, params, jnp.ones((2, 4)), betas=3)
    with pytest.raises(ValueError, match="n_runs"):
        ais.log_partition(jax.random.key(0), params, betas=3, n_runs=0)
    with pytest.raises(TypeError, match="n_runs"):
        ais.log_partition(jax.random.key(0), params, betas=3, n_runs=2.5)
    with pytest.raises(ValueError, match="data"):
        ais.log_partition(jax.random.key(0), params, betas=3, data=jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="binary"):
        ais.reverse_log_partition(jax.random.key(0), params, jnp.full((2, 4), 0.5), betas=3)
    with pytest.raises(ValueError, match="v_init"):
        ais.reverse_log_partition(jax.random.key(0), params, jnp.ones((2, 5)), betas=3)
    with pytest.raises(TypeError, match="params"):
        ais.log_partition(jax.random.key(0), (params.W, params.b), betas=3)


def test_bracket_holds_the_exact_log_z_and_warns_on_a_short_schedule():
    import warnings

    params = random_bernoulli(0, 10, 8, scale=1.0)
    exact = float(jrbm.exact.log_partition(params))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a long enough schedule: no warning
        b = ais.bracket(jax.random.key(0), params, betas=2000, n_runs=100, sweeps=200)
    se = np.hypot(float(b.forward.log_z_std), float(b.reverse.log_z_std))
    assert float(b.forward.log_z) - 6 * se < exact < float(b.reverse.log_z) + 6 * se
    assert abs(float(b.gap)) < 0.1
    # a strongly coupled model and a 5-temperature schedule: the gap is large, and the warning names the remedy
    strong = random_bernoulli(1, 10, 8, scale=3.0)
    with pytest.warns(UserWarning, match="more betas|more runs"):
        ais.bracket(jax.random.key(1), strong, betas=5, n_runs=20, sweeps=50)


def test_threads_pool_groups_of_runs_drawn_from_folded_keys():
    """threads=2: two groups of runs in threads, keyed fold_in(key, g), pooled; equal to doing it by hand."""
    params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
    key = jax.random.key(3)
    threaded = jrbm.ais.log_partition(key, params, betas=200, n_runs=20, threads=2)
    by_hand = jrbm.ais.pool([jrbm.ais.log_partition(jax.random.fold_in(key, g), params, betas=200, n_runs=10) for g in range(2)])
    for a, b in zip(threaded, by_hand):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    exact = float(jrbm.exact.log_partition(params))
    assert abs(float(threaded.log_z) - exact) < 5 * float(threaded.log_z_std) + 0.02
    with pytest.raises(ValueError, match="threads: expected a divisor of n_runs=20"):
        jrbm.ais.log_partition(key, params, betas=200, n_runs=20, threads=3)
    jrbm.ais.compile_log_partition(key, params, betas=200, n_runs=20, threads=2)  # the same program as the groups'



def test_a_mode_that_every_run_misses_is_exposed_by_data_and_reverse_ais_not_by_the_standard_error():
    """The module docstring's example: annealed from the default base model, every run of this GB-RBM ends
    in a hidden state far below the dominant mode, so forward AIS is over 1,000 nats low with a standard
    error under 0.1 (a limitation, documented). A base model from exact draws of p(v) finds the mode, and
    reverse AIS from exact draws gives an upper bound above the exact value."""
    rng = np.random.default_rng(105)
    W, b, c = rng.normal(size=(4, 8)) * 10, rng.choice([-50.0, 50.0], 4), rng.choice([-50.0, 50.0], 8)
    params = jrbm.GaussianRBM(*(jnp.asarray(x, jnp.float32) for x in (W, b, c, np.zeros(4))))
    exact = float(jrbm.exact.log_partition(params))
    missed = ais.log_partition(jax.random.key(0), params, n_runs=50, betas=1000)
    assert float(missed.log_z) < exact - 1000 and float(missed.log_z_std) < 0.1
    # exact draws of p(v): h from p(h) by enumerating the 2^8 hidden states, then v ~ p(v | h)
    H = jnp.asarray((np.arange(256)[:, None] >> np.arange(7, -1, -1)) & 1, jnp.float32)
    h = H[jax.random.categorical(jax.random.key(1), -model.hidden_free_energy(params, H), shape=(50,))]
    draws = model.sample_v_given_h(jax.random.key(2), params, h)
    found = ais.log_partition(jax.random.key(3), params, n_runs=50, betas=1000, data=draws)
    assert abs(float(found.log_z) - exact) <= 6 * float(found.log_z_std) + 0.02
    upper = ais.reverse_log_partition(jax.random.key(4), params, draws, betas=1000)
    assert float(upper.log_z) > exact


def test_pool_keeps_each_direction_and_refuses_a_mix():
    """pool of reverse results is the reverse estimate of the joined weights (-log mean exp(-w)), as pool of forward
    ones is the forward estimate; a mix of directions and an empty list are refused by name."""
    params = random_bernoulli(4, 6, 4, scale=1.0)
    v = _exact_samples(jax.random.key(0), params, 40)
    reverse = [ais.reverse_log_partition(jax.random.key(k), params, v, betas=10) for k in (1, 2)]
    forward = [ais.log_partition(jax.random.key(k), params, betas=10, n_runs=40) for k in (3, 4)]
    for parts, sign in ((reverse, -1), (forward, +1)):
        w = np.concatenate([np.asarray(r.log_weights, np.float64) for r in parts])
        expected = sign * (np.logaddexp.reduce(sign * w) - np.log(len(w)))
        for pooled in (ais.pool(parts), jax.jit(ais.pool)(parts)):
            np.testing.assert_allclose(float(pooled.log_z), expected, rtol=1e-12)
            np.testing.assert_allclose(float(pooled.ess), float(ais.AISResult(*pooled).ess), rtol=1e-12)
        np.testing.assert_array_equal(np.asarray(ais.pool(parts[:1]).log_z), np.asarray(parts[0].log_z))
    with pytest.raises(ValueError, match=r"results: expected results of one direction, got forward ones at \[1\] and reverse ones at \[0\]"):
        ais.pool([reverse[0], forward[0]])
    with pytest.raises(ValueError, match="results: expected at least one AISResult, got none"):
        ais.pool([])


def test_bracket_warns_when_a_side_has_no_spread_and_takes_any_real_tolerance():
    """One reverse run has no standard error: the crossing cannot be judged, and bracket says so instead of
    staying silent; numpy and 0-d jax tolerances are numbers like any other."""
    params = random_bernoulli(4, 6, 4, scale=1.0)
    with pytest.warns(UserWarning, match="the standard errors are unknown"):
        ais.bracket(jax.random.key(2), params, betas=5, n_runs=1, v_init=jnp.ones((1, 6)))
    for tolerance in (np.float32(50.0), jnp.asarray(50.0), 50):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ais.bracket(jax.random.key(2), params, betas=200, n_runs=50, tolerance=tolerance)
    for tolerance in ("0.1", True, -1.0, float("nan"), [0.1]):
        with pytest.raises(ValueError, match="tolerance: expected a positive number of nats"):
            ais.bracket(jax.random.key(2), params, betas=5, n_runs=2, tolerance=tolerance)
