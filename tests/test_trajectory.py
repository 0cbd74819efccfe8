"""Parallel trajectory tempering: every replica samples its own model, log Z along a ladder, the estimator, errors.

Statistical tolerances are set by the number of independent runs at a
false-alarm rate of about 1e-6 per assertion (as tests/test_tempering.py);
no seed was tuned. The ladder is a path of small models from independent
units to a two-mode ferromagnet (all-zeros and all-ones), on which block Gibbs
from all-zeros is stuck at the last model.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import random_bernoulli, tv_bound

import jrbm
import jrbm.trajectory as ptt

I, J = 6, 4


def two_mode_model(w=2.5, dtype=jnp.float64):
    pert = random_bernoulli(0, I, J, scale=0.3, dtype=dtype)
    return jrbm.BernoulliRBM(
        W=w * jnp.ones((I, J), dtype) + pert.W,
        b=-w * J / 2 * jnp.ones(I, dtype) + pert.b,
        c=-w * I / 2 * jnp.ones(J, dtype) + pert.c,
    )


def path(n=5):
    """Models from W = 0 to the two-mode model, scaling every parameter linearly (not a temperature ladder of one model)."""
    end = two_mode_model()
    return [jax.tree.map(lambda x: s * x, end) for s in np.linspace(0.0, 1.0, n)]


def lsb_index(v):
    return np.asarray(v).astype(np.int64) @ (1 << np.arange(np.shape(v)[-1]))


def test_every_replica_samples_its_own_model():
    models = path()
    ladder = ptt.stack(models)
    n_chains = 3000
    state = ptt.ptt_init(jax.random.key(0), ladder, jnp.zeros((1, I)), n_chains)  # all at all-zeros
    state = ptt.ptt_chain(jax.random.key(1), ladder, state, 200)
    for t, m in enumerate(models):
        p = np.asarray(jrbm.exact.marginal_visible(m))
        counts = np.bincount(lsb_index(state.chains[:, t]), minlength=2**I)
        tv = 0.5 * np.abs(counts / n_chains - p).sum()
        assert tv < tv_bound(p, n_chains), t
    rates = np.asarray(state.swap_rates)
    assert rates.shape == (len(models) - 1,) and np.all((rates > 0) & (rates <= 1))
    # The last model alone (Gibbs from all-zeros, same sweeps) stays in its start mode: PTT's mixing is real.
    v = jrbm.gibbs_chain(jax.random.key(2), models[-1], jnp.zeros((n_chains, I)), 200)
    assert float(np.mean(np.asarray(v).sum(1) > I / 2)) < 0.05
    assert float(np.mean(np.asarray(state.chains[:, -1]).sum(1) > I / 2)) > 0.3


def test_swap_is_accepted_with_the_free_energy_ratio():
    """Swaps between identical models are always accepted; the acceptance rate of a two-model ladder of
    independent-unit models equals E[min(1, r)] computed exactly."""
    m = two_mode_model()
    ladder = ptt.stack([m, m])
    state = ptt.ptt_init(jax.random.key(0), ladder, jnp.eye(I), 50)
    state = ptt.ptt_chain(jax.random.key(1), ladder, state, 10)
    assert float(state.swap_rates[0]) == 1.0

    a = jrbm.BernoulliRBM(W=jnp.zeros((I, J)), b=jnp.full((I,), -1.0), c=jnp.zeros(J))
    b = a._replace(b=jnp.full((I,), 1.0))
    ladder = ptt.stack([a, b])
    n_chains, n_steps = 4000, 20
    state = ptt.ptt_init(jax.random.key(2), ladder, jnp.zeros((1, I)), n_chains)
    state = ptt.ptt_chain(jax.random.key(3), ladder, state, n_steps)
    # With W = 0 one sweep is an exact draw, so every proposal pairs independent v ~ p_a, u ~ p_b, and
    # log r = F_a(v) + F_b(u) - F_a(u) - F_b(v) = (b_b - b_a).(v - u) = 2 (|v| - |u|), F = -b.v + const.
    pa, pb = 1 / (1 + np.exp(1.0)), 1 / (1 + np.exp(-1.0))
    k = np.arange(I + 1)
    comb = np.array([math.comb(I, j) for j in k], np.float64)
    joint = (comb * pa**k * (1 - pa) ** (I - k))[:, None] * (comb * pb**k * (1 - pb) ** (I - k))[None, :]
    expected = np.sum(joint * np.minimum(1.0, np.exp(2.0 * (k[:, None] - k[None, :]))))
    n = n_chains * (n_steps // 2)  # independent proposals (the pair is proposed every other step)
    got = float(state.swap_rates[0])
    assert abs(got - expected) < np.sqrt(np.log(2 / 1e-6) / (2 * n))  # Hoeffding, 1e-6


def test_log_partition_along_matches_exact():
    models = path(8)
    ladder = ptt.stack(models)
    state = ptt.ptt_init(jax.random.key(0), ladder, jnp.zeros((1, I)), 200)
    res = ptt.log_partition_along(jax.random.key(1), ladder, state, 400, burn_in=100,
                                  log_z0=jrbm.ais.base_log_partition(models[0]))
    exact = np.array([float(jrbm.exact.log_partition(m)) for m in models])
    est, std = np.asarray(res.log_z), np.asarray(res.std)
    assert est.shape == std.shape == (len(models),) and res.links.shape == (len(models) - 1,)
    assert est[0] == pytest.approx(exact[0], abs=1e-12) and std[0] == 0
    # 5 sigma (a normal tail of 6e-7) + 0.01 nats for the delta method's first-order bias, O(1/n_chains)
    assert np.all(np.abs(est - exact) < 5 * std + 0.01), (est - exact, std)
    assert abs(est[-1] - exact[-1]) < 0.1
    assert np.all(std[1:] > 0) and np.all(std[1:] < 0.1)
    # links agree with the differences of the chained values
    np.testing.assert_allclose(np.diff(est), np.asarray(res.links), rtol=1e-10, atol=1e-12)


def test_log_partition_along_of_a_trained_ladder():
    """A ladder saved along a real training run (bars and stripes 3x3), log Z of the first model by enumeration."""
    data = jnp.asarray(jrbm.datasets.bars_and_stripes(3), jnp.float64)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    models = [params]
    jrbm.fit(jax.random.key(1), params, data, optimizer=optax.sgd(0.1), estimator=jrbm.PCD(1, 32), epochs=200,
             batch_size=7, progress=False, callback=lambda e, p, r: models.append(p) if e % 10 == 0 else None)
    ladder = ptt.stack(models)
    state = ptt.ptt_init(jax.random.key(2), ladder, data, 100)
    res = ptt.log_partition_along(jax.random.key(3), ladder, state, 300, burn_in=100)  # log_z0 by enumeration
    exact = np.array([float(jrbm.exact.log_partition(m)) for m in models])
    est, std = np.asarray(res.log_z), np.asarray(res.std)
    assert np.all(np.abs(est - exact) < 5 * std + 0.01), (est - exact, std)
    assert abs(est[-1] - exact[-1]) < 0.1


def test_estimator_trains_and_keeps_its_ladder():
    data = jnp.asarray(jrbm.datasets.bars_and_stripes(3), jnp.float64)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    est = ptt.PTT(n_models=5, save_every=3, k=1, n_chains=32)
    final, history, fit_state = jrbm.fit(jax.random.key(1), params, data, optimizer=optax.sgd(0.1), estimator=est,
                                         epochs=30, batch_size=7, progress=False, return_state=True)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(final))
    s = fit_state.estimator_state
    assert isinstance(s, ptt.PTTTrainState)
    # 30 epochs x 2 updates: saves after updates 3, 6, ... ; thinned when the 4 slots are full.
    assert 1 <= int(s.n_saved) <= 4 and int(s.spacing) >= 3 and int(s.spacing) % 3 == 0
    np.testing.assert_array_equal(np.asarray(ptt.model_at(s.ladder, 0).W), np.asarray(params.W))  # the start stays
    assert "swap_rate" in history and "n_saved" in history and len(history["swap_rate"]) == 30
    rates = np.asarray(history["swap_rate"])
    measured = np.isfinite(rates)  # nan where an epoch ended on a save: no pair proposed since (0 would read as a gap)
    assert measured.sum() >= 10 and np.all((rates[measured] >= 0) & (rates[measured] <= 1))


def test_estimator_gradient_is_the_contrast_with_the_top_replicas():
    params = two_mode_model()
    est = ptt.PTT(n_models=3, save_every=2, k=1, n_chains=16)
    batch = jnp.asarray(np.random.default_rng(0).integers(0, 2, (10, I)), jnp.float64)
    state = est.init(jax.random.key(0), params, batch)
    grads, state = est.grad(jax.random.key(1), params, batch, state)
    top = state.sampler.chains[:, -1]
    want = jax.tree.map(lambda a, b: a - b, jrbm.model.free_energy_grad(params, batch), jrbm.model.free_energy_grad(params, top))
    for g, w in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
    d = est.diagnostics(state)
    assert set(d) == {"swap_rate", "n_saved"}


def test_save_thins_to_every_other_model_and_doubles_the_spacing():
    params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
    est = ptt.PTT(n_models=5, save_every=1, k=1, n_chains=4)
    state = est.init(jax.random.key(1), params, jnp.ones((3, 6)))
    grad = jax.jit(est.grad)
    saved = []
    for i in range(1, 7):
        p = params._replace(W=jnp.full_like(params.W, float(i)))
        _, state = grad(jax.random.key(i), p, jnp.ones((3, 6)), state)
        saved.append(i)
        if i == 3:
            # slots 0..3: the start (0), saves 1, 2, 3; top: current (3)
            assert int(state.n_saved) == 4
            np.testing.assert_array_equal(np.asarray(state.ladder.W[:, 0, 0]), [params.W[0, 0], 1, 2, 3, 3])
    # after update 4 the 4 slots were full: kept slots 0, 2 (start, save 2), appended 4; spacing 2; save 6 at update 6
    np.testing.assert_array_equal(np.asarray(state.ladder.W[1:, 0, 0]), [2, 4, 6, 6])
    assert int(state.n_saved) == 4 and int(state.spacing) == 2


@pytest.mark.parametrize("n_models, save_every, updates", [(10, 1, 40), (4, 2, 24), (5, 1, 20), (6, 3, 50)])
def test_saves_stay_evenly_spaced_for_any_number_of_slots(n_models, save_every, updates):
    """The saved models are at updates 0, s, 2 s, ... for the current spacing s, whether the number of slots
    (n_models - 1) is even or odd; the current model sits less than s after the newest save."""
    data = jnp.zeros((4, 3))
    at = lambda u: jrbm.BernoulliRBM(jnp.zeros((3, 2)), jnp.full(3, float(u)), jnp.zeros(2))  # b records the update
    est = ptt.PTT(n_models=n_models, save_every=save_every, k=1, n_chains=4)
    state = est.init(jax.random.key(0), at(0), data)
    grad = jax.jit(est.grad)
    for u in range(1, updates + 1):
        _, state = grad(jax.random.key(u), at(u), data, state)
        n, s = int(state.n_saved), int(state.spacing)
        saved = np.asarray(state.ladder.b[:n, 0])
        np.testing.assert_array_equal(saved, s * np.arange(n), err_msg=f"after update {u}")
        assert 0 <= u - saved[-1] == int(state.since) < s


def test_jit_and_vmap():
    models = path(4)
    ladder = ptt.stack(models)
    state = ptt.ptt_init(jax.random.key(0), ladder, jnp.zeros((1, I)), 8)
    step = jax.jit(lambda k, s: ptt.ptt_step(k, ladder, s))
    a = step(jax.random.key(1), state)
    b = ptt.ptt_step(jax.random.key(1), ladder, state)
    np.testing.assert_array_equal(np.asarray(a.chains), np.asarray(b.chains))
    keys = jax.random.split(jax.random.key(2), 3)
    out = jax.vmap(lambda k: ptt.ptt_chain(k, ladder, state, 5).chains)(keys)
    assert out.shape == (3, 8, 4, I)
    np.testing.assert_array_equal(np.asarray(out[1]), np.asarray(ptt.ptt_chain(keys[1], ladder, state, 5).chains))
    # a ladder of one model is plain Gibbs
    one = ptt.stack(models[-1:])
    s1 = ptt.ptt_chain(jax.random.key(3), one, ptt.ptt_init(jax.random.key(0), one, jnp.zeros((1, I)), 8), 3)
    assert s1.chains.shape == (8, 1, I) and s1.swap_rates.shape == (0,)


def test_validation_errors():
    models = path(3)
    ladder = ptt.stack(models)
    state = ptt.ptt_init(jax.random.key(0), ladder, jnp.zeros((1, I)), 4)
    with pytest.raises(ValueError, match="at least one model"):
        ptt.stack([])
    with pytest.raises(ValueError, match="models\\[1\\]"):
        ptt.stack([models[0], jrbm.init_bernoulli(jax.random.key(0), I + 1, J)])
    with pytest.raises(TypeError, match="stacked model"):
        ptt.ptt_step(jax.random.key(0), np.zeros(3), state)
    with pytest.raises(ValueError, match="same leading length"):
        ptt.ptt_step(jax.random.key(0), ladder._replace(b=ladder.b[:2]), state)
    with pytest.raises(ValueError, match="state.chains"):
        ptt.ptt_step(jax.random.key(0), ptt.stack(models[:2]), state)
    with pytest.raises(TypeError, match="PTTState"):
        ptt.ptt_step(jax.random.key(0), ladder, state.chains)
    with pytest.raises(TypeError, match="key"):
        ptt.ptt_step(0, ladder, state)
    with pytest.raises(ValueError, match="k"):
        ptt.ptt_step(jax.random.key(0), ladder, state, k=0)
    with pytest.raises(ValueError, match="n_steps"):
        ptt.ptt_chain(jax.random.key(0), ladder, state, 0)
    with pytest.raises(ValueError, match="burn_in"):
        ptt.log_partition_along(jax.random.key(0), ladder, state, 5, burn_in=-1)
    with pytest.raises(ValueError, match="at least 2"):
        ptt.log_partition_along(jax.random.key(0), ladder, ptt.ptt_init(jax.random.key(0), ladder, jnp.zeros((1, I)), 1), 5)
    with pytest.raises(ValueError, match="log_z0"):
        ptt.log_partition_along(jax.random.key(0), ladder, state, 5, log_z0=jnp.inf)
    with pytest.raises(ValueError, match="n_models"):
        ptt.PTT(n_models=1)
    with pytest.raises(ValueError, match="save_every"):
        ptt.PTT(save_every=0)
    with pytest.raises(ValueError, match="x"):
        ptt.integrated_autocorrelation_time(np.zeros((1,)))


def test_integrated_autocorrelation_time_of_an_ar1_process():
    """AR(1) with coefficient a has tau = (1 + a) / (1 - a); 64 chains of 4000 steps estimate it within 10%."""
    a, n, c = 0.8, 4000, 64
    rng = np.random.default_rng(0)
    x = np.zeros((n, c))
    x[0] = rng.normal(size=c) / np.sqrt(1 - a * a)
    for t in range(1, n):
        x[t] = a * x[t - 1] + rng.normal(size=c)
    assert ptt.integrated_autocorrelation_time(x) == pytest.approx((1 + a) / (1 - a), rel=0.1)
    assert ptt.integrated_autocorrelation_time(np.ones(10)) == np.inf
    # With the true mean given: the same AR(1) time, and chains stuck away from it never decorrelate.
    assert ptt.integrated_autocorrelation_time(x, mean=0.0) == pytest.approx((1 + a) / (1 - a), rel=0.1)
    assert ptt.integrated_autocorrelation_time(np.ones((10, 3)), mean=0.0) == pytest.approx(10.0)


def test_swap_rate_is_nan_not_zero_right_after_a_save():
    """Found by a review: the swap counts restart at every save, and the diagnostic then read 0.0 (a 'gap in the
    ladder') where nothing had been measured. It is nan until a distinct pair has been proposed."""
    params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
    est = ptt.PTT(n_models=4, save_every=2, k=1, n_chains=8)
    state = est.init(jax.random.key(1), params, jnp.ones((3, 6)))
    grad = jax.jit(est.grad)
    seen_nan = seen_rate = False
    for i in range(1, 9):
        _, state = grad(jax.random.fold_in(jax.random.key(2), i), params, jnp.ones((3, 6)), state)
        rates, rate = np.asarray(state.sampler.swap_rates), float(est.diagnostics(state)["swap_rate"])
        if np.all(np.isnan(rates)):
            assert np.isnan(rate), (i, rate)
            seen_nan = True
        else:
            assert 0 <= rate <= 1
            seen_rate = True
    assert seen_nan and seen_rate
