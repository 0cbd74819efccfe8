"""Jarzynski-weighted PCD (jrbm.JarzynskiPCD) against enumeration of small models.

References are independent of jrbm's model functions: energies, joint and
marginal distributions and the Gibbs kernels are enumerated in numpy
(tests/helpers.py and below). Statistical
checks average over many keys (jax.vmap) and allow five standard errors per
component (estimated from the same draws); no seed was tuned. Where the
self-normalised estimator's own O(1/n) bias enters, its leading term is
computed exactly from the enumerated model and the kernel.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import all_binary, bb_marginal, bb_stats, bb_transition_matrix, random_bernoulli, random_gaussian, sigmoid
from test_sharding import run_script

import jrbm
from jrbm.jarzynski import JarzynskiState, effective_sample_size, systematic_resample

N_VIS, N_HID = 5, 3


def _joint_tables(params):
    """Over all (v, h) of all_binary (row index nH * i_v + i_h): jrbm's energy E(v, h) = -E_tutorial(v, h), p(v, h)."""
    W, b, c = (np.asarray(x, np.float64) for x in params)
    V, H = all_binary(W.shape[0]), all_binary(W.shape[1])
    energy = -((V @ W) @ H.T + (V @ b)[:, None] + (H @ c)[None, :]).reshape(-1)
    p = np.exp(-(energy - energy.min()))
    return energy, p / p.sum()


def _p_v_given_h(params) -> np.ndarray:
    """P[i_h, i_v] = p(v | h) over all_binary, from the tutorial's energy."""
    W, b, c = (np.asarray(x, np.float64) for x in params)
    V, H = all_binary(W.shape[0]), all_binary(W.shape[1])
    logits = H @ W.T @ V.T + (V @ b)[None, :]
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def _joint_rows(i):
    """The (v, h) rows of joint state indices i."""
    i = np.asarray(i)
    return all_binary(N_VIS)[i // 2**N_HID], all_binary(N_HID)[i % 2**N_HID]


def _state(params, v, h, log_weights, n_resampled=0) -> JarzynskiState:
    """A JarzynskiState of chains (v, h) whose last update was at ``params``."""
    v, h = jnp.asarray(v), jnp.asarray(h)
    return JarzynskiState(v, h, v @ params.W, (params.visible, params.hidden), jnp.asarray(log_weights),
                          jnp.asarray(n_resampled, jnp.int32))


def _stats_table(params) -> np.ndarray:
    """Per visible state, the flat statistics (v (x) P(h=1|v), v, P(h=1|v)) = -dF/dtheta, as rows."""
    W, b, c = (np.asarray(x, np.float64) for x in params)
    V = all_binary(W.shape[0])
    p = sigmoid(V @ W + c)
    return np.concatenate([(V[:, :, None] * p[:, None, :]).reshape(len(V), -1), V, p], axis=1)


def _flat(grads):
    """(W, b, c) as one vector, in _stats_table's order (jax.numpy: used inside vmap)."""
    return jnp.concatenate([grads.W.reshape(grads.W.shape[:-2] + (-1,)), grads.b, grads.c], axis=-1)


def _moved(params, scale=0.8, seed=7):
    step = random_bernoulli(seed, N_VIS, N_HID, scale=scale)
    return jax.tree.map(jnp.add, params, step)


@pytest.fixture(scope="module")
def move():
    """theta0, theta1 = theta0 + a step of scale 0.8, a fixed minibatch, and exact references.

    The step is large enough that the weights matter, and small enough that
    the self-normalised estimate is in the regime of its O(1/n) expansion:
    after it the effective sample size of exact theta0 draws of (v, h) is 38%
    of the chains (72% for weights of v alone, the free energies), and one
    sweep at theta1 leaves PCD's chains visibly short of p_theta1.
    """
    theta0 = random_bernoulli(0, N_VIS, N_HID, scale=1.0)
    theta1 = _moved(theta0)
    batch = np.random.default_rng(0).integers(0, 2, (6, N_VIS)).astype(np.float64)
    p0, p1 = bb_marginal(theta0), bb_marginal(theta1)
    s1 = _stats_table(theta1)
    data_term = np.concatenate([x.reshape(-1) for x in bb_stats(theta1, batch)])
    exact = p1 @ s1 - data_term  # the loss gradient at theta1: E_model[s] - mean_data[s], s = -dF/dtheta
    T1 = bb_transition_matrix(theta1)
    # Leading O(1/n) bias of the self-normalised estimate after one sweep, over joint states (v, h):
    # -E_q[w^2 (f - mu)] / n with q = p0(v, h), w = p1(v, h) / p0(v, h) and f(v, h) = E[s(v') | h], v' ~ p1(v' | h).
    E0, q0 = _joint_tables(theta0)
    E1, q1 = _joint_tables(theta1)
    f = np.tile(_p_v_given_h(theta1) @ s1, (2**N_VIS, 1))  # row nH * i_v + i_h: f(h)
    w = q1 / q0
    b1 = -(q0 * w**2) @ (f - p1 @ s1)
    # PCD from the same start (p0's visible marginal): one sweep at theta1 samples p0 T1, whatever n.
    pcd = (p0 @ T1) @ s1 - data_term
    return dict(theta0=theta0, theta1=theta1, batch=batch, p0=p0, q0=q0, E0=E0, E1=E1, exact=exact, b1=b1, pcd=pcd)


def test_the_move_thins_joint_weights_more_than_free_energy_weights(move):
    """The effective sample sizes the module docstring quotes for this move: exact theta0 draws reweighted to
    theta1, by the joint energy of (v, h) and by the free energy of v (its average over h)."""
    q0, q1 = move["q0"], _joint_tables(move["theta1"])[1]
    p0, p1 = move["p0"], bb_marginal(move["theta1"])
    joint, marginal = 1 / np.sum(q1**2 / q0), 1 / np.sum(p1**2 / p0)
    assert joint < marginal
    assert (round(joint, 2), round(marginal, 2)) == (0.38, 0.72)


def _exact_start_state(key, theta0, q0, n):
    """n chains (v, h) drawn exactly from p_theta0(v, h) (by enumeration), uniform weights, last updated at theta0."""
    idx = jax.random.choice(key, len(q0), (n,), p=jnp.asarray(q0))
    v = jnp.asarray(all_binary(N_VIS))[idx // 2**N_HID]
    h = jnp.asarray(all_binary(N_HID))[idx % 2**N_HID]
    return _state(theta0, v, h, jnp.zeros(n))


def _draws(fn, n_keys, seed=123):
    return np.asarray(jax.jit(jax.vmap(fn))(jax.random.split(jax.random.key(seed), n_keys)))


# --- 1. the weight update ----------------------------------------------------------------------------


def test_log_weights_change_by_the_energy_difference(move):
    theta0, theta1 = move["theta0"], move["theta1"]
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(move["q0"]), 40)
    old = rng.normal(size=40)
    state = _state(theta0, *_joint_rows(rows), old)
    est = jrbm.JarzynskiPCD(k=3, n_chains=40, ess_threshold=0.0)  # never resamples: the chains keep their weights
    _, new = est.grad(jax.random.key(0), theta1, move["batch"], state)
    change = np.asarray(new.log_weights) - old
    expected = move["E0"][rows] - move["E1"][rows]
    # kept normalised (mean weight 1): exact up to one constant shared by every chain
    np.testing.assert_allclose(change - change.mean(), expected - expected.mean(), atol=1e-12)
    assert abs(np.log(np.mean(np.exp(np.asarray(new.log_weights))))) < 1e-12
    # the new state: binary joint states, their hidden inputs and the layers of theta1, the update's parameters
    v, h = np.asarray(new.chains), np.asarray(new.hidden)
    assert set(np.unique(v)) <= {0.0, 1.0} and set(np.unique(h)) <= {0.0, 1.0}
    np.testing.assert_allclose(np.asarray(new.inputs), v @ np.asarray(theta1.W), atol=1e-12)
    for a, b in zip(jax.tree.leaves(new.layers), jax.tree.leaves((theta1.visible, theta1.hidden))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(new.n_resampled) == 0


def _three_models(family):
    """theta0 and two successive random steps from it, every leaf moved (a Gaussian's log sigma included)."""
    if family == "gaussian":
        base = random_gaussian(0, 4, 3)
    else:  # 4 Potts units of 3 states and 2 dReLU units: non-binary states and statistics of both layers
        from jrbm.layers import Potts, dReLU

        k1, k2 = jax.random.split(jax.random.key(3))
        base = jrbm.RBM(Potts(jax.random.normal(k1, (4, 3), jnp.float64)),
                        dReLU(*(0.1 * jnp.arange(2.0, dtype=jnp.float64) + i for i in range(4))),
                        jax.random.normal(k2, (4, 3, 2), jnp.float64))
    leaves, treedef = jax.tree.flatten(base)

    def step(seed):
        keys = jax.random.split(jax.random.key(seed), len(leaves))
        return jax.tree.unflatten(treedef, [0.2 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])

    theta1 = jax.tree.map(jnp.add, base, step(1))
    return base, theta1, jax.tree.map(jnp.add, theta1, step(2))


@pytest.mark.parametrize("family", ["gaussian", "potts-drelu"])
def test_log_weights_follow_the_energy_for_other_layers_over_two_moves(family):
    """init, then updates at theta1 and theta2: each weight change is the energy difference (jrbm.energy) of the
    chains the state holds, so the state an update leaves carries what the next one needs."""
    from jrbm.layers import base as layer_base

    theta0, theta1, theta2 = _three_models(family)
    data = layer_base.sample(jax.random.key(9), theta0.visible, jnp.zeros((6,) + theta0.visible.shape))
    est = jrbm.JarzynskiPCD(k=2, n_chains=24, ess_threshold=0.0)
    state = est.init(jax.random.key(0), theta0, data)

    def centred(x):
        x = np.asarray(x)
        return x - x.mean()

    uncoupled = theta0.assemble(theta0.visible, theta0.hidden, jnp.zeros_like(theta0.W))
    v, h = state.chains, state.hidden
    np.testing.assert_allclose(centred(state.log_weights),
                               centred(jrbm.energy(uncoupled, v, h) - jrbm.energy(theta0, v, h)), atol=1e-9)
    for i, (old, new) in enumerate(((theta0, theta1), (theta1, theta2))):
        _, moved = est.grad(jax.random.key(i + 1), new, data, state)
        v, h = state.chains, state.hidden
        expected = jrbm.energy(old, v, h) - jrbm.energy(new, v, h)
        np.testing.assert_allclose(centred(moved.log_weights - state.log_weights), centred(expected), atol=1e-9)
        state = moved


def test_init_weighs_exact_draws_of_the_uncoupled_model_to_params():
    params = random_bernoulli(3, N_VIS, N_HID, scale=1.0)
    state = jrbm.JarzynskiPCD(1, 64).init(jax.random.key(0), params, np.zeros((2, N_VIS)))
    W = np.asarray(params.W)
    v, h = np.asarray(state.chains), np.asarray(state.hidden)
    # the uncoupled model (W = 0): p(v, h) propto exp(b.v + c.h); the weights carry it to exp(v W h + b.v + c.h)
    log_ratio = np.einsum("ni,ij,nj->n", v, W, h)
    lw = np.asarray(state.log_weights)
    np.testing.assert_allclose(lw - lw.mean(), log_ratio - log_ratio.mean(), atol=1e-12)
    np.testing.assert_allclose(np.asarray(state.inputs), v @ W, atol=1e-12)
    assert int(state.n_resampled) == 0


def test_init_draws_the_uncoupled_model_exactly():
    params = random_bernoulli(4, N_VIS, N_HID, scale=1.0)
    est = jrbm.JarzynskiPCD(1, 1000)
    for name, fields in (("chains", params.b), ("hidden", params.c)):
        x = _draws(lambda k: getattr(est.init(k, params, np.zeros((2, N_VIS))), name), 200)  # (200, 1000, units)
        means = x.mean(1)  # per key: the fraction of chains with each unit on
        se = means.std(0, ddof=1) / np.sqrt(len(means))
        np.testing.assert_array_less(np.abs(means.mean(0) - sigmoid(np.asarray(fields))), 5 * se + 1e-12)


# --- 2. consistency: the bias shrinks with n_chains; PCD's does not --------------------------------------


def test_weighted_estimate_after_a_move_is_consistent_and_pcd_is_not(move):
    exact, b1 = move["exact"], move["b1"]
    est_args = (move["theta0"], move["q0"])
    theta1, batch = move["theta1"], move["batch"]
    def jarzynski(n, n_keys):
        est = jrbm.JarzynskiPCD(k=1, n_chains=n, ess_threshold=0.0)

        def one(key):
            k_start, k_grad = jax.random.split(key)
            grads, _ = est.grad(k_grad, theta1, batch, _exact_start_state(k_start, *est_args, n))
            return _flat(grads)

        return _draws(one, n_keys)

    errors = {}
    for n, n_keys in ((10, 20000), (100, 4000), (1000, 2000)):  # about the same work per n
        d = jarzynski(n, n_keys)
        se = d.std(0, ddof=1) / np.sqrt(n_keys)
        err = np.abs(d.mean(0) - exact)
        errors[n] = (err, se)
        # the self-normalised estimate: exact up to its O(1/n) bias (leading term b1 / n, allowed twice)
        assert np.all(err <= 5 * se + 2 * np.abs(b1) / n + 1e-12), (n, float(np.max(err - 5 * se - 2 * np.abs(b1) / n)))
    # the bias shrinks: clear at 10 chains (beyond five standard errors), and the largest error at 1000 chains is
    # below the largest at 10 by more than five of its standard errors
    e10, s10 = errors[10]
    e1000, s1000 = errors[1000]
    assert np.max(e10 - 5 * s10) > 0, np.max(e10 / s10)
    assert np.max(e1000) + 5 * np.max(s1000) < np.max(e10), (np.max(e10), np.max(e1000))

    # PCD-1 from the same exact start and the same move: its mean is p0 T1's expectation at any n ...
    def pcd(key):
        k_start, k_grad = jax.random.split(key)
        chains = _exact_start_state(k_start, *est_args, 1000).chains  # exact draws of p0's visible marginal
        grads, _ = jrbm.pcd_grad(k_grad, theta1, batch, chains, k=1)
        return _flat(grads)

    d = _draws(pcd, 2000)
    se = d.std(0, ddof=1) / np.sqrt(len(d))
    assert np.all(np.abs(d.mean(0) - move["pcd"]) <= 5 * se + 1e-12)
    # ... which is far from the exact gradient: its bias does not shrink with the chains, and it is several
    # times the whole error bound of the weighted estimate at 1000 chains
    _, s1000 = errors[1000]
    assert np.max(np.abs(move["pcd"] - exact)) > 5 * np.max(5 * s1000 + 2 * np.abs(b1) / 1000)


def test_weighted_estimate_is_consistent_after_resampling(move):
    """With resampling at every update, the estimate is still consistent (resampling preserves the weighted mean)."""
    exact = move["exact"]
    est = jrbm.JarzynskiPCD(k=1, n_chains=1000, ess_threshold=1.0)
    args = (move["theta0"], move["q0"])

    def one(key):
        k_start, k_grad = jax.random.split(key)
        grads, state = est.grad(k_grad, move["theta1"], move["batch"], _exact_start_state(k_start, *args, 1000))
        return _flat(grads), state.n_resampled

    out = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(5), 1000))
    d, n_resampled = np.asarray(out[0]), np.asarray(out[1])
    assert np.all(n_resampled == 1)
    se = d.std(0, ddof=1) / np.sqrt(len(d))
    assert np.all(np.abs(d.mean(0) - exact) <= 5 * se + 2 * np.abs(move["b1"]) / 1000 + 1e-12)


# --- 3. resampling ---------------------------------------------------------------------------------------


def test_systematic_resampling_counts_are_floor_or_ceil_and_unbiased():
    n = 50
    log_w = jnp.asarray(np.random.default_rng(2).normal(size=n) * 1.5)
    w = np.asarray(jax.nn.softmax(log_w))
    counts = _draws(lambda k: jnp.bincount(systematic_resample(k, log_w), length=n), 4000)
    assert np.all(counts.sum(1) == n)
    assert np.all((counts >= np.floor(n * w) - 1e-9) & (counts <= np.ceil(n * w) + 1e-9))
    se = counts.std(0, ddof=1) / np.sqrt(len(counts))
    np.testing.assert_array_less(np.abs(counts.mean(0) - n * w), 5 * se + 1e-9)
    # so the resampled mean of any function is the weighted mean in expectation
    f = np.random.default_rng(3).normal(size=n)
    means = counts @ f / n
    assert abs(means.mean() - w @ f) <= 5 * means.std(ddof=1) / np.sqrt(len(means)) + 1e-12


def test_effective_sample_size():
    assert float(effective_sample_size(jnp.zeros(7))) == pytest.approx(1.0)
    w = np.array([1.0, 2.0, 3.0, 4.0])
    assert float(effective_sample_size(jnp.log(jnp.asarray(w)) + 100.0)) == pytest.approx(w.sum() ** 2 / (w**2).sum() / 4)


def test_resampling_happens_exactly_below_the_threshold_and_resets_the_weights(move):
    rows = np.random.default_rng(4).integers(0, len(move["q0"]), 30)
    state = _state(move["theta0"], *_joint_rows(rows), np.zeros(30), n_resampled=2)
    lw = move["E0"][rows] - move["E1"][rows]
    ess = (np.exp(lw).sum() ** 2 / np.exp(2 * lw).sum()) / 30  # after reweighting to theta1
    assert 0.05 < ess < 0.95
    for threshold, resampled in ((ess * 0.999, False), (ess * 1.001, True)):
        est = jrbm.JarzynskiPCD(k=1, n_chains=30, ess_threshold=threshold)
        _, new = est.grad(jax.random.key(0), move["theta1"], move["batch"], state)
        assert int(new.n_resampled) == 2 + resampled
        if resampled:
            np.testing.assert_array_equal(np.asarray(new.log_weights), 0.0)
            assert float(est.diagnostics(new)["ess"]) == pytest.approx(1.0)
        else:
            assert float(est.diagnostics(new)["ess"]) == pytest.approx(ess, rel=1e-9)


def test_batched_resampling_equals_each_member_resampling_alone():
    """Under vmap the resampling step branches once for the batch: each member's rows still match its own
    update (members that resample and members that do not, nested vmaps, unbatched arguments, none resampling)."""
    from jrbm.jarzynski import _resample_one, _resampled

    rows = jax.random.normal(jax.random.key(2), (7, 3))
    log_w = jax.random.normal(jax.random.key(1), (2, 5, 7)) * 2.0
    keys = jax.random.split(jax.random.key(3), (2, 5))
    for resample in (jnp.zeros((2, 5), bool).at[1, 2].set(True).at[0, 4].set(True), jnp.zeros((2, 5), bool)):
        expected = np.array([[_resample_one(resample[a, b], keys[a, b], log_w[a, b], rows) for b in range(5)] for a in range(2)])
        inner = jax.vmap(_resampled, in_axes=(0, 0, 0, None))
        np.testing.assert_array_equal(jax.jit(jax.vmap(inner, in_axes=(0, 0, 0, None)))(resample, keys, log_w, rows), expected)
        one_key = jax.vmap(_resampled, in_axes=(0, None, 0, None))(resample[1], keys[1, 2], log_w[1], rows)
        np.testing.assert_array_equal(one_key[2], _resample_one(True, keys[1, 2], log_w[1, 2], rows) if resample[1, 2] else rows)
        assert np.array_equal(expected[1, 2], rows) != bool(resample[1, 2])  # the member that resamples moves its rows
        np.testing.assert_array_equal(expected[1, 3], rows)


# --- 4. training: fit, fit_ensemble, resume, checkpoints, a mesh -------------------------------------------


def _fit_kw(est, epochs):
    return dict(optimizer=optax.sgd(0.1), estimator=est, epochs=epochs, batch_size=8, progress=False)


def test_fit_records_the_ess_and_resumes_exactly(tmp_path):
    data = jrbm.datasets.bars_and_stripes(3)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    est = jrbm.JarzynskiPCD(k=1, n_chains=16, ess_threshold=0.99)
    with jax.numpy_dtype_promotion("standard"):
        p6, h6 = jrbm.fit(jax.random.key(1), params, data, **_fit_kw(est, 6), log_likelihood="exact", eval_every=6)
        _, h3, state = jrbm.fit(jax.random.key(1), params, data, return_state=True, **_fit_kw(est, 3))
        p_resumed, _ = jrbm.fit(jax.random.key(1), state, data, **_fit_kw(est, 6))
        run_dir = str(tmp_path / "run")
        jrbm.fit(jax.random.key(1), params, data, checkpoint_dir=run_dir, checkpoint_every=3, **_fit_kw(est, 3))
        p_file, _ = jrbm.fit(jax.random.key(1), params, data, checkpoint_dir=run_dir, checkpoint_every=3, **_fit_kw(est, 6))
    assert len(h6["ess"]) == 6 and len(h6["n_resampled"]) == 6
    assert all(1 / 16 - 1e-12 <= e <= 1 + 1e-12 for e in h6["ess"])
    assert h6["n_resampled"] == sorted(h6["n_resampled"]) and h6["n_resampled"][-1] > 0  # resampled as it trained
    assert np.isfinite(h6["log_likelihood"][-1])
    assert isinstance(state.estimator_state, JarzynskiState)
    assert float(est.diagnostics(state.estimator_state)["ess"]) == pytest.approx(h3["ess"][-1])
    for p in (p_resumed, p_file):
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(p6)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fit_ensemble_equals_fit():
    data = jrbm.datasets.bars_and_stripes(3)
    est = jrbm.JarzynskiPCD(k=1, n_chains=16, ess_threshold=0.99)
    keys = jax.random.split(jax.random.key(2), 2)
    inits = [jrbm.init_bernoulli(jax.random.key(i), 9, 6, data=data) for i in range(2)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *inits)
    with jax.numpy_dtype_promotion("standard"):
        params, history = jrbm.fit_ensemble(keys, stacked, data, **_fit_kw(est, 3))
        single, h0 = jrbm.fit(keys[1], inits[1], data, **_fit_kw(est, 3))
    assert np.asarray(history["ess"]).shape == (2, 3)
    np.testing.assert_allclose(np.asarray(history["ess"])[1], h0["ess"], rtol=1e-9)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(a)[1], np.asarray(b), atol=1e-10)


def test_sharded_fit_matches_single_device():
    """On a 4-device mesh (chains and their weights split, resampling gathering across devices), as on one device."""
    out = run_script(
        """
        mesh = jrbm.parallel.make_mesh()  # 'data': 4
        data = jrbm.datasets.bars_and_stripes(3)
        params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
        est = jrbm.JarzynskiPCD(1, 16, ess_threshold=0.99)
        kw = dict(optimizer=optax.sgd(0.1), estimator=est, epochs=4, batch_size=8, progress=False)
        with jax.numpy_dtype_promotion("standard"):
            with jrbm.rng.own_generator():  # a run with a mesh draws with the keys' own generator
                single, h1, s1 = jrbm.fit(jax.random.key(1), params, data, return_state=True, **kw)
            sharded, h2, s2 = jrbm.fit(jax.random.key(1), params, data, mesh=mesh, return_state=True, **kw)
        assert h1["n_resampled"][-1] > 0, h1
        assert h1["n_resampled"] == h2["n_resampled"], (h1["n_resampled"], h2["n_resampled"])
        assert np.array_equal(np.asarray(s1.estimator_state.chains), np.asarray(s2.estimator_state.chains))
        assert maxdiff(single, sharded) < 1e-10, maxdiff(single, sharded)
        assert maxdiff(s1.estimator_state.log_weights, s2.estimator_state.log_weights) < 1e-10
        assert s2.estimator_state.chains.sharding.spec[0] == "data", s2.estimator_state.chains.sharding
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


# --- 5. validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(k=0), ValueError, "k: expected a positive integer"),
        (dict(k=1.5), TypeError, "k: expected a positive integer"),
        (dict(n_chains=0), ValueError, "n_chains: expected a positive integer"),
        (dict(ess_threshold=1.5), ValueError, r"ess_threshold: expected a float in \[0, 1\]"),
        (dict(ess_threshold=-0.1), ValueError, "ess_threshold"),
        (dict(ess_threshold=float("nan")), ValueError, "ess_threshold"),
        (dict(ess_threshold="half"), TypeError, "ess_threshold"),
        (dict(ess_threshold=True), TypeError, "ess_threshold"),
    ],
)
def test_invalid_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        jrbm.JarzynskiPCD(**kwargs)


def test_invalid_states_and_arguments():
    params = random_bernoulli(0, N_VIS, N_HID)
    est = jrbm.JarzynskiPCD(1, 4)
    batch = np.zeros((2, N_VIS))
    state = est.init(jax.random.key(0), params, batch)
    with pytest.raises(TypeError, match="JarzynskiState"):
        est.grad(jax.random.key(1), params, batch, state.chains)
    with pytest.raises(ValueError, match="state.log_weights: expected shape \\(4,\\)"):
        est.grad(jax.random.key(1), params, batch, state._replace(log_weights=jnp.zeros(3)))
    with pytest.raises(ValueError, match="state.chains"):
        est.grad(jax.random.key(1), params, batch, state._replace(chains=jnp.zeros((4, N_VIS + 1))))
    with pytest.raises(ValueError, match="state.n_resampled"):
        est.grad(jax.random.key(1), params, batch, state._replace(n_resampled=jnp.zeros(2, jnp.int32)))
    with pytest.raises(ValueError, match="state.hidden: expected shape"):
        est.grad(jax.random.key(1), params, batch, state._replace(hidden=jnp.zeros((4, N_HID + 1))))
    with pytest.raises(ValueError, match="state.hidden"):
        est.grad(jax.random.key(1), params, batch, state._replace(hidden=jnp.full((4, N_HID), jnp.nan)))
    with pytest.raises(ValueError, match=r"state.inputs: expected shape \(4, 3\)"):
        est.grad(jax.random.key(1), params, batch, state._replace(inputs=jnp.zeros((3, N_HID))))
    other = random_bernoulli(1, N_VIS + 1, N_HID)
    with pytest.raises(ValueError, match="state.layers: expected the \\(visible, hidden\\) layers"):
        est.grad(jax.random.key(1), params, batch, state._replace(layers=(other.visible, other.hidden)))
    with pytest.raises(ValueError, match="state.layers"):
        est.grad(jax.random.key(1), params, batch, state._replace(layers=params.visible))
    with pytest.raises(TypeError, match="key"):
        est.grad(0, params, batch, state)
    with pytest.raises(ValueError, match="data"):
        est.init(jax.random.key(0), params, np.zeros((0, N_VIS)))
    with pytest.raises(ValueError, match="log_weights"):
        effective_sample_size(jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="log_weights"):
        systematic_resample(jax.random.key(0), jnp.zeros(0))
