"""fit and train_step: composition with optax and the estimators, monitoring, failure modes."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jrbm
from jrbm import datasets

BAS = datasets.bars_and_stripes(3)  # (16, 9)
DIGITS = datasets.digits().train[:200]  # (200, 64) binary; 8 hidden units keep it exact


@pytest.fixture(autouse=True)
def standard_promotion():
    """optax's own internals (Adam's bias correction, schedules) mix int32 step counts with Python
    floats, which strict promotion rejects; jrbm's code under fit is checked strictly elsewhere."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def _fit(params, data=BAS, **kw):
    kw = {"optimizer": optax.sgd(0.1), "estimator": jrbm.CD(1), "epochs": 5, "batch_size": 4, "progress": False} | kw
    return jrbm.fit(jax.random.key(0), params, data, **kw)


@pytest.mark.parametrize(
    "optimizer",
    [
        optax.sgd(0.1),
        optax.sgd(0.05, momentum=0.9),
        optax.adam(1e-2),
        optax.chain(optax.add_decayed_weights(1e-3, mask=lambda p: type(p)(*[n == "W" for n in p._fields])), optax.sgd(0.1)),
    ],
    ids=["sgd", "momentum", "adam", "decay-W-only"],
)
def test_fit_takes_any_optax_optimizer(optimizer):
    params = jrbm.init_bernoulli(jax.random.key(1), 64, 8, data=DIGITS)
    new, history = _fit(params, DIGITS, optimizer=optimizer, epochs=30, batch_size=20, log_likelihood="exact", eval_every=10)
    ll = history["log_likelihood"]
    assert math.isnan(ll[0]) and not math.isnan(ll[9])  # evaluated every 10 epochs
    # It learned: the initial model (independent pixels with the data's means) is beaten.
    assert ll[-1] > float(jrbm.exact.log_likelihood(params, DIGITS).mean()) + 0.3


@pytest.mark.parametrize(
    "estimator, optimizer",
    [(jrbm.CD(3), optax.sgd(0.05, momentum=0.9)), (jrbm.PCD(1, 100), optax.sgd(0.1))],
    ids=["cd", "pcd"],
)
def test_fit_takes_any_estimator(estimator, optimizer):
    """Gains over the start, over keys 0-7 (CD) and 0-5 (PCD): 5.3 +- 0.2 and 1.90 +- 0.06 nats; the
    bound is 0.3. (PCD with 20 chains and momentum 0.9 outruns its chains: -0.1 +- 1.3 nats.)"""
    params = jrbm.init_bernoulli(jax.random.key(1), 64, 8, data=DIGITS)
    new, history = _fit(params, DIGITS, optimizer=optimizer, estimator=estimator,
                        epochs=30, batch_size=20, log_likelihood="exact", eval_every=30)
    assert history["log_likelihood"][-1] > float(jrbm.exact.log_likelihood(params, DIGITS).mean()) + 0.3


def test_momentum_schedule_from_the_docs():
    steps_per_epoch = len(BAS) // 4
    momentum = optax.join_schedules([optax.constant_schedule(0.5), optax.constant_schedule(0.9)], [5 * steps_per_epoch])
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.05, momentum=momentum)
    params = jrbm.init_bernoulli(jax.random.key(1), 9, 6, data=BAS)
    for epochs, want in ((3, 0.5), (8, 0.9)):  # 4 updates an epoch: 0.9 from update 20 on
        trained, _, state = _fit(params, optimizer=opt, epochs=epochs, return_state=True)
        assert float(state.opt_state.hyperparams["momentum"]) == want, epochs
        assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(trained))


def test_history_records_every_epoch():
    params = jrbm.init_bernoulli(jax.random.key(1), 9, 6, data=BAS)
    _, history = _fit(params, validation=BAS[:8], epochs=7, log_likelihood="exact", eval_every=3)
    assert history["epoch"] == list(range(1, 8))
    for name in ("recon_error", "free_energy_gap", "log_likelihood", "val_log_likelihood"):
        assert len(history[name]) == 7, name
    ll = np.asarray(history["log_likelihood"])
    assert np.isfinite(ll[[2, 5, 6]]).all() and np.isnan(ll[[0, 1, 3, 4]]).all()


def test_the_estimator_is_traced_twice_per_run():
    """The estimator's grad is traced twice in a whole run (once for the shapes of an epoch's record, once
    for the compiled loop), however many epochs and however they are grouped into calls."""
    traces = []

    class Counting(jrbm.CD):
        def grad(self, key, params, batch, state):
            traces.append(1)
            return super().grad(key, params, batch, state)

    params = jrbm.init_bernoulli(jax.random.key(1), 9, 6, data=BAS)
    for epochs in (3, 300):
        traces.clear()
        _fit(params, estimator=Counting(1), epochs=epochs)
        assert len(traces) == 2, epochs


@pytest.mark.parametrize("estimator", [jrbm.CD(2), jrbm.PCD(1, 8), jrbm.JarzynskiPCD(1, n_chains=16)], ids=["CD", "PCD", "Jarzynski"])
def test_grouping_epochs_into_calls_changes_nothing(monkeypatch, estimator):
    """fit groups its epochs into calls of one compiled loop by timing them; one epoch a call, a timed
    grouping and the most a call allows end bit-identical, and the calls end at evaluations and checkpoints."""
    params = jrbm.init_bernoulli(jax.random.key(1), 9, 6, data=BAS)
    calls = []
    run = jrbm.train.loop.compiled_epochs

    def counting(*args):
        compiled = run(*args)
        return lambda key, first, n, *rest: calls.append((int(first), int(n))) or compiled(key, first, n, *rest)

    monkeypatch.setattr(jrbm.train.loop, "compiled_epochs", counting)
    kw = {"estimator": estimator, "epochs": 40, "log_likelihood": "exact", "eval_every": 15, "validation": BAS[:4]}
    results = {}
    for seconds in (0.0, jrbm.train.loop.SECONDS_PER_CALL, 1e9):
        monkeypatch.setattr(jrbm.train.loop, "SECONDS_PER_CALL", seconds)
        calls.clear()
        results[seconds] = _fit(params, **kw)
        if seconds == 0.0:
            assert calls == [(e, 1) for e in range(1, 41)]
        if seconds == 1e9:  # one epoch, one more to time, then up to each evaluation and the last epoch
            assert calls == [(1, 1), (2, 1), (3, 13), (16, 15), (31, 10)], calls
    (p0, h0), *others = results.values()
    for p, h in others:
        chex.assert_trees_all_equal(p, p0)
        assert h.keys() == h0.keys()
        for name in h0:
            np.testing.assert_array_equal(h[name], h0[name], err_msg=name)


def test_a_divergence_inside_a_call_names_its_epoch(monkeypatch):
    """Epochs after a divergence in the same call do not hide it: the error names the first bad epoch."""
    data = datasets.two_laplace(1000)
    params = jrbm.init_gaussian(jax.random.key(1), 2, 4, data=data)
    # A step that grows 1.1x each update: learning is stable at first and overflows a few epochs in.
    kw = {"optimizer": optax.sgd(optax.exponential_decay(0.01, 1, 1.1)), "batch_size": 100, "epochs": 60, "learn_sigma": True, "sigma_warmup": 0}
    messages = []
    for seconds in (0.0, 1e9):
        monkeypatch.setattr(jrbm.train.loop, "SECONDS_PER_CALL", seconds)
        with pytest.raises(FloatingPointError, match=r"after epoch (\d+);") as error:
            _fit(params, data, **kw)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert int(messages[0].split("after epoch ")[1].split(";")[0]) > 3, messages[0]  # inside the third call, which ran many epochs


def test_epochs_per_call():
    per_call = jrbm.train.loop.epochs_per_call
    assert per_call(None, 7, 100, []) == 1  # untimed: one epoch
    assert per_call(1e-3, 1, 1000, []) == 100  # 0.1 s of 1 ms epochs
    assert per_call(1e-9, 1, 10**6, []) == jrbm.train.loop.MAX_EPOCHS_PER_CALL
    assert per_call(1e-3, 95, 98, []) == 4  # to the last epoch
    assert per_call(1e-3, 3, 1000, [10, 7]) == 5  # to epoch 7, the first boundary
    assert per_call(1e-3, 10, 1000, [10]) == 1  # a boundary itself ends a call
    assert per_call(10.0, 3, 1000, []) == 1  # slow epochs: one a call


def test_train_step_is_pure_and_jits_once():
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=BAS)
    opt, est = optax.sgd(0.1), jrbm.PCD(1, 8)
    state = jrbm.train.init_state(jax.random.key(1), params, BAS, optimizer=opt, estimator=est)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, batch):
        return jrbm.train_step(key, state, batch, optimizer=opt, estimator=est)

    s1 = step(jax.random.key(2), state, jnp.asarray(BAS[:4], jnp.float32))
    s2 = step(jax.random.key(2), state, jnp.asarray(BAS[:4], jnp.float32))
    chex.assert_trees_all_equal(s1, s2)
    step(jax.random.key(3), s1, jnp.asarray(BAS[4:8], jnp.float32))


def test_gaussian_sigma_frozen_by_default_and_learned_when_asked():
    data = datasets.two_laplace(2000, seed=0)
    params = jrbm.init_gaussian(jax.random.key(0), 2, 4, data=data, sigma=1.0)
    frozen, _ = _fit(params, data, optimizer=optax.sgd(0.01), epochs=3, batch_size=100)
    np.testing.assert_array_equal(frozen.log_sigma, params.log_sigma)
    assert not np.array_equal(frozen.W, params.W)
    learned, _ = _fit(params, data, optimizer=optax.sgd(0.01), epochs=3, batch_size=100, learn_sigma=True)
    assert not np.array_equal(learned.log_sigma, params.log_sigma)


def test_sigma_warmup_holds_sigma_fixed_then_learns_it():
    """log_sigma stays at its start for exactly sigma_warmup epochs (default: half of epochs), then moves;
    the other parameters learn from the first epoch."""
    data = datasets.two_laplace(1000, seed=0)
    params = jrbm.init_gaussian(jax.random.key(0), 2, 4, data=data, sigma=0.7)
    for warmup, epochs, expected in ((3, 6, 3), (None, 10, 5), (0, 4, 0)):
        seen = []
        _fit(params, data, optimizer=optax.adam(0.01), epochs=epochs, batch_size=100, learn_sigma=True,
             sigma_warmup=warmup, callback=lambda e, p, r: seen.append((np.asarray(p.log_sigma), np.asarray(p.W))))
        fixed = [np.array_equal(sigma, params.log_sigma) for sigma, _ in seen]
        assert fixed == [True] * expected + [False] * (epochs - expected), (warmup, fixed)
        assert not np.array_equal(seen[0][1], params.W)


def test_sigma_warmup_is_checked_and_kept_by_continued_runs():
    data = datasets.two_laplace(500, seed=0)
    params = jrbm.init_gaussian(jax.random.key(0), 2, 4, data=data, sigma=0.7)
    kw = {"optimizer": optax.adam(0.01), "batch_size": 100, "learn_sigma": True}
    with pytest.raises(ValueError, match=r"sigma_warmup: only used with learn_sigma=True, got sigma_warmup=2"):
        _fit(params, data, **(kw | {"learn_sigma": False}), epochs=5, sigma_warmup=2)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"sigma_warmup: expected a non-negative integer number of epochs, got"):
            _fit(params, data, **kw, epochs=5, sigma_warmup=bad)
    # Continuing to more epochs: the default (half of epochs) would change, so the state refuses it ...
    _, _, state = _fit(params, data, **kw, epochs=5, return_state=True)
    assert state.settings["sigma_warmup"] == 2
    with pytest.raises(ValueError, match=r"sigma_warmup: the state passed as params was trained with sigma_warmup=2, this call has sigma_warmup=5"):
        _fit(state, data, **kw, epochs=10)
    # ... and with the first part's value given, 5 + 5 epochs equal 10.
    continued, _ = _fit(state, data, **kw, epochs=10, sigma_warmup=2)
    whole, _ = _fit(params, data, **kw, epochs=10, sigma_warmup=2)
    chex.assert_trees_all_equal(continued, whole)
    # A first part no longer than the warm-up keeps sigma fixed throughout, so 4 + 4 epochs equal 8 with the
    # default warm-up of 8 // 2 = 4 ...
    first, _, state = _fit(params, data, **kw, epochs=4, sigma_warmup=4, return_state=True)
    np.testing.assert_array_equal(first.visible.log_sigma, params.visible.log_sigma)
    continued, _ = _fit(state, data, **kw, epochs=8, sigma_warmup=4)
    whole, _ = _fit(params, data, **kw, epochs=8)
    chex.assert_trees_all_equal(continued, whole)
    assert not np.array_equal(whole.visible.log_sigma, params.visible.log_sigma)
    # ... and a continuation that changes learn_sigma is refused by that name (not as another optimizer state).
    with pytest.raises(ValueError, match=r"learn_sigma: the state passed as params was trained with learn_sigma=True, this call has learn_sigma=False"):
        _fit(state, data, **(kw | {"learn_sigma": False}), epochs=8)


def test_gaussian_rbm_on_the_toy_set_improves_its_exact_likelihood():
    """sigma fixed at 0.7 < 1 on whitened data: the model can only match the unit variance by
    spreading its mixture components (b + sigma W h) along the data, which CD-1 has to learn."""
    data = datasets.two_laplace(5000, seed=0)
    test = datasets.two_laplace(5000, seed=1)
    params = jrbm.init_gaussian(jax.random.key(0), 2, 4, data=data, sigma=0.7)
    before = float(jrbm.exact.log_likelihood(params, test).mean())
    trained, history = _fit(params, data, optimizer=optax.sgd(0.05, momentum=0.9), estimator=jrbm.CD(1),
                            epochs=30, batch_size=100, log_likelihood="exact", eval_every=30)
    after = float(jrbm.exact.log_likelihood(trained, test).mean())
    np.testing.assert_array_equal(trained.log_sigma, params.log_sigma)
    # The gain varies with the training key by a few hundredths of a nat around ~0.29, and held-out means
    # over 5000 points have standard errors of ~0.02 nats: 0.1 is far below the gain and far above noise.
    assert after > before + 0.1, (before, after)


def test_divergence_is_a_clear_error():
    """A GB-RBM learning its variances with a huge step overflows; fit stops and says where."""
    data = datasets.two_laplace(1000)
    params = jrbm.init_gaussian(jax.random.key(1), 2, 4, data=data)
    with pytest.raises(FloatingPointError, match=r"params\.\w+ has non-finite values after epoch 1; lower the learning rate"):
        _fit(params, data, optimizer=optax.sgd(100.0), batch_size=100, learn_sigma=True, sigma_warmup=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 17}, ValueError, r"batch_size: expected at most the number of examples \(16\), got 17"),
        ({"epochs": 0}, ValueError, r"epochs: expected a positive integer"),
        ({"log_likelihood": "ml"}, ValueError, r"log_likelihood: expected None, 'exact' or 'ais'"),
        ({"learn_sigma": True}, ValueError, r"learn_sigma: only a GaussianRBM"),
        ({"validation": np.zeros((3, 8))}, ValueError, r"validation: expected 9 columns"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    params = jrbm.init_bernoulli(jax.random.key(1), 9, 6, data=BAS)
    with pytest.raises(error, match=match):
        _fit(params, **kwargs)


def test_likelihood_monitoring_needs_binary_data():
    params = jrbm.init_bernoulli(jax.random.key(1), 9, 6)
    with pytest.raises(ValueError, match=r"data: expected binary values"):
        _fit(params, np.full((16, 9), 0.5), log_likelihood="exact")
    _fit(params, np.full((16, 9), 0.5))  # real-valued data trains (mean-field use)


@pytest.mark.parametrize("log_sigma", [-4.0, 4.0])
def test_gaussian_at_extreme_log_sigma_trains_or_says_why(log_sigma):
    """sigma = e^-4 on unit-variance data makes the visible-bias curvature a^2 ~ 3000: SGD at 0.01
    oscillates with growth |1 - 0.01 a^2| ~ 29 per step. fit stops at the first epoch whose
    reconstruction error overflows (the biases are still finite floats). With the step scaled by
    sigma^2, or at sigma = e^4, learning the variances moves the log-likelihood from its extreme
    starting value (-2975 or -9.8 nats) towards that of a unit-variance model (about -2.9)."""
    data = datasets.two_laplace(2000)
    params = jrbm.init_gaussian(jax.random.key(0), 2, 4, data=data, sigma=math.exp(log_sigma))
    before = float(jrbm.exact.log_likelihood(params, data).mean())
    kw = {"epochs": 10, "batch_size": 100, "estimator": jrbm.CD(1)}
    if log_sigma < 0:
        with pytest.raises(FloatingPointError, match=r"the reconstruction error is not finite .* after epoch \d+; lower the learning rate"):
            _fit(params, data, optimizer=optax.sgd(0.01), **kw)
    lr = 0.01 * math.exp(2 * min(log_sigma, 0.0))  # the step scaled by sigma^2 when sigma < 1
    trained, _ = _fit(params, data, optimizer=optax.sgd(lr), learn_sigma=True, sigma_warmup=0, **kw)
    after = float(jrbm.exact.log_likelihood(trained, data).mean())
    assert all(np.all(np.isfinite(np.asarray(x))) for x in trained)
    # Closing a third of the gap to -2.9 nats; the standard error of a mean over 2000 points is ~0.03.
    assert after > before + (-2.9 - before) / 3, (log_sigma, before, after)


def test_monitors_use_the_documented_fixed_subset():
    """recon_error and free_energy_gap are measured on jrbm.train.monitor_rows of the training data, every epoch."""
    data = np.asarray(DIGITS)
    rows = jrbm.train.monitor_rows(len(data), size=40)
    assert len(rows) == 40 and rows[0] == 0 and rows[-1] == len(data) - 1 and np.all(np.diff(rows) > 0)
    old = jrbm.train.step.MONITOR_SIZE
    jrbm.train.step.MONITOR_SIZE = 40
    try:
        params = jrbm.init_bernoulli(jax.random.key(1), data.shape[1], 6, data=data)
        trained, history = _fit(params, data, validation=data[:30], epochs=1, batch_size=20)
    finally:
        jrbm.train.step.MONITOR_SIZE = old
    watched = data[rows]
    np.testing.assert_allclose(history["recon_error"][0], jrbm.metrics.reconstruction_error(trained, watched), rtol=1e-6)
    np.testing.assert_allclose(history["free_energy_gap"][0], jrbm.metrics.free_energy_gap(trained, watched, data[:30]), rtol=1e-6, atol=1e-9)


class _WatchedPCD(jrbm.PCD):
    """PCD with a diagnostics method: the mean of its chains after each epoch."""

    __slots__ = ()

    def diagnostics(self, state):
        return {"chain_mean": jnp.mean(state)}


def test_estimator_diagnostics_enter_the_history():
    data = jrbm.datasets.bars_and_stripes(3)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 4, data=data)
    est = _WatchedPCD(1, 8)
    seen = []
    kw = dict(optimizer=optax.sgd(0.1), estimator=est, epochs=3, batch_size=4, progress=False)
    with jax.numpy_dtype_promotion("standard"):
        _, history, state = jrbm.fit(jax.random.key(1), params, data, return_state=True,
                                     callback=lambda e, p, r: seen.append(r["chain_mean"]), **kw)
        np.testing.assert_allclose(history["chain_mean"][-1], float(jnp.mean(state.estimator_state)), rtol=1e-12)
        assert history["chain_mean"] == seen and len(seen) == 3
        stacked = jax.tree.map(lambda *x: jnp.stack(x), params, params)
        _, h2 = jrbm.fit_ensemble(jax.random.split(jax.random.key(1), 2), stacked, data, **kw)
    assert h2["chain_mean"].shape == (2, 3)


def test_estimator_diagnostics_must_be_scalars():
    class Rows(jrbm.PCD):
        def diagnostics(self, state):
            return {"rows": jnp.mean(state, axis=0)[:2]}

    params = jrbm.init_bernoulli(jax.random.key(0), 9, 4, data=BAS)
    with pytest.raises(ValueError, match=r"estimator.diagnostics: expected a scalar for 'rows', got shape \(2,\)"):
        _fit(params, estimator=Rows(1, 8))


def test_a_state_passed_with_a_checkpoint_dir_must_be_of_the_folders_run_and_not_behind_it(tmp_path):
    """Found by a review: a FitState passed with a checkpoint_dir overwrote the folder's state without a check,
    though it belonged to another run or an earlier epoch of the same one."""
    data = jnp.asarray(BAS, jnp.float64)
    p0 = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    kw = dict(optimizer=optax.sgd(0.1, momentum=0.9), estimator=jrbm.PCD(1, 8), batch_size=8, progress=False)
    jrbm.fit(jax.random.key(5), p0, data, epochs=6, checkpoint_dir=tmp_path, **kw)
    other = jrbm.fit(jax.random.key(3), p0, data, epochs=2, return_state=True, **kw)[2]
    with pytest.raises(ValueError, match="key: .* belongs to a run started with another key"):
        jrbm.fit(jax.random.key(3), other, data, epochs=4, checkpoint_dir=tmp_path, **kw)
    behind = jrbm.fit(jax.random.key(5), p0, data, epochs=4, return_state=True, **kw)[2]
    with pytest.raises(ValueError, match="params: the state passed stops at epoch 4, but .* holds epoch 6 of the same run"):
        jrbm.fit(jax.random.key(5), behind, data, epochs=8, checkpoint_dir=tmp_path, **kw)
    level = jrbm.fit(jax.random.key(5), p0, data, epochs=6, return_state=True, **kw)[2]
    assert jrbm.fit(jax.random.key(5), level, data, epochs=8, checkpoint_dir=tmp_path, **kw)[1]["epoch"][-1] == 8
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "state.npz").mkdir()
    with pytest.raises(ValueError, match=r"checkpoint_dir: .*state.npz exists and is not a file"):
        jrbm.fit(jax.random.key(5), p0, data, epochs=2, checkpoint_dir=tmp_path / "odd", **kw)
    with pytest.raises(ValueError, match="batch_size: expected at most the number of examples"):  # refused before the folder is made
        jrbm.fit(jax.random.key(5), p0, data, epochs=2, checkpoint_dir=tmp_path / "new", **{**kw, "batch_size": 17})
    assert not (tmp_path / "new").exists()


def test_the_callbacks_record_has_every_monitor_from_the_first_epoch():
    """Found by a review: with eval_every=2 the record of epoch 1 had no log_likelihood (a KeyError), where the
    history has nan; the record now holds every monitor of the history, nan where the epoch has none."""
    data = jnp.asarray(BAS, jnp.float64)
    records = []
    _, history = jrbm.fit(jax.random.key(1), jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data), data, optimizer=optax.sgd(0.1),
                          estimator=jrbm.CD(1), epochs=3, batch_size=8, progress=False, log_likelihood="exact", eval_every=2,
                          validation=data[:4], callback=lambda epoch, params, record: records.append(record))
    for i, record in enumerate(records):
        assert set(record) == set(history)
        for name, value in record.items():
            np.testing.assert_equal(value, history[name][i])
    assert math.isnan(records[0]["log_likelihood"]) and not math.isnan(records[1]["log_likelihood"])
