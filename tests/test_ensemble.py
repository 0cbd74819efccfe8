"""fit_ensemble: N models under jax.vmap in one compiled program, each equal to its own fit.

Model n of an ensemble and ``fit(keys[n], ...)`` run the same per-model epoch
(:func:`jrbm.train.fit_epoch`) with the same keys, so they draw the same random
numbers; only the compiled form differs (a batched matrix product under vmap),
which may reorder floating-point sums. In
float64 that is a few ulps per step; 1e-12 after a few epochs is ample, and a
Bernoulli sample drawn differently (a key mix-up) would show up as a difference
of order the learning rate.
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_sharding import run_script

import jrbm
from jrbm import datasets
from jrbm.train import fit_ensemble

BAS = datasets.bars_and_stripes(3)  # (16, 9)


@pytest.fixture(autouse=True)
def standard_promotion():
    """optax mixes int32 step counts with Python floats, which strict promotion rejects (as in test_train.py)."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def stack(models):
    return jax.tree.map(lambda *x: jnp.stack(x), *models)


# The checks that compile training programs run in fresh interpreters (test_sharding.run_script), where
# XLA may skip LLVM's optimisation of the CPU code: that is most of their compile time. One device here.
PRELUDE = """
import chex
from jrbm.train import fit_ensemble
jax.config.update("jax_numpy_dtype_promotion", "standard")  # optax mixes int32 counts with Python floats
BAS = jrbm.datasets.bars_and_stripes(3)  # (16, 9)
TOL = dict(rtol=1e-12, atol=1e-12)

def stack(models):
    return jax.tree.map(lambda *x: jnp.stack(x), *models)

def model(tree, n):
    return jax.tree.map(lambda x: x[n], tree)
"""


def run(code: str) -> str:
    return run_script(PRELUDE + textwrap.dedent(code), devices=1)


def test_ensemble_with_fpcd_equals_single_runs():
    out = run(
        """
        inits = [jrbm.init_bernoulli(k, 9, 6, data=BAS, weight_std=0.1) for k in jax.random.split(jax.random.key(0), 2)]
        keys = jax.random.split(jax.random.key(1), 2)
        kw = dict(optimizer=optax.sgd(0.1), estimator=jrbm.FPCD(1, 8, fast_lr=0.1), epochs=3, batch_size=4, progress=False)
        params, history = fit_ensemble(keys, stack(inits), BAS, **kw)
        for i in range(2):
            single, _ = jrbm.fit(keys[i], inits[i], BAS, **kw)
            chex.assert_trees_all_close(model(params, i), single, **TOL)
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


def test_ensemble_of_8_equals_8_single_runs():
    out = run(
        """
        n = 8
        inits = [jrbm.init_bernoulli(k, 9, 6, data=BAS, weight_std=0.1) for k in jax.random.split(jax.random.key(0), n)]
        keys = jax.random.split(jax.random.key(1), n)
        kw = dict(optimizer=optax.adam(0.05), estimator=jrbm.PCD(1, 8), epochs=4, batch_size=4, validation=BAS[:8],
                  log_likelihood="ais", eval_every=2, ais_kwargs=dict(betas=20, n_runs=8), progress=False)
        params, history = fit_ensemble(keys, stack(inits), BAS, **kw)

        assert params.W.shape == (n, 9, 6)
        assert history["epoch"] == [1, 2, 3, 4]
        names = ("recon_error", "free_energy_gap", "log_likelihood", "val_log_likelihood", "log_z_std")
        for name in names:
            assert history[name].shape == (n, 4), name
        ll = history["log_likelihood"]
        assert np.isnan(ll[:, [0, 2]]).all() and np.isfinite(ll[:, [1, 3]]).all()
        for i in range(n):
            single, h = jrbm.fit(keys[i], inits[i], BAS, **kw)
            chex.assert_trees_all_close(model(params, i), single, **TOL)
            for name in names:
                np.testing.assert_allclose(history[name][i], h[name], **TOL, err_msg=f"model {i}: {name}")
        # The models did differ (different keys and starts), so the comparison is not vacuous: their final
        # errors spread by thousandths, far above the 1e-8 asked and the comparison's 1e-12 tolerance.
        assert np.ptp(history["recon_error"][:, -1]) > 1e-8
        assert np.ptp(np.asarray(params.W), axis=0).min() > 1e-8
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


def test_per_model_learning_rate_and_weight_decay_equal_single_runs_with_those_values():
    """A GB-RBM (log_sigma frozen by fit's multi_transform) with inject_hyperparams inside."""
    out = run(
        """
        data = jrbm.datasets.two_laplace(200, seed=0)
        lrs, decays = np.array([0.01, 0.03, 0.1]), np.array([0.0, 1e-3, 1e-2])

        def optimizer(learning_rate, weight_decay):
            return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=0.5))

        inits = [jrbm.init_gaussian(k, 2, 4, data=data, sigma=0.7) for k in jax.random.split(jax.random.key(2), 3)]
        keys = jax.random.split(jax.random.key(3), 3)
        kw = dict(estimator=jrbm.CD(1), epochs=3, batch_size=50, log_likelihood="exact", progress=False)
        params, history = fit_ensemble(
            keys, stack(inits), data, optimizer=optax.inject_hyperparams(optimizer)(learning_rate=0.0, weight_decay=0.0),
            hyperparams={"learning_rate": lrs, "weight_decay": decays}, **kw,
        )
        np.testing.assert_array_equal(params.log_sigma, stack(inits).log_sigma)
        for i in range(3):
            opt = optax.inject_hyperparams(optimizer)(learning_rate=lrs[i], weight_decay=decays[i])
            single, h = jrbm.fit(keys[i], inits[i], data, optimizer=opt, **kw)
            chex.assert_trees_all_close(model(params, i), single, **TOL)
            np.testing.assert_allclose(history["recon_error"][i], h["recon_error"], **TOL)
            np.testing.assert_allclose(history["log_likelihood"][i, -1], h["log_likelihood"][-1], **TOL)
        # The hyperparameters reached their models: model 0 with model 2's values is another model.
        other, _ = jrbm.fit(keys[0], inits[0], data, optimizer=optax.inject_hyperparams(optimizer)(learning_rate=lrs[2], weight_decay=decays[2]), **kw)
        assert maxdiff(model(params, 0), other) > 1e-3, maxdiff(model(params, 0), other)
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


def test_compiled_once_and_divergence_is_named():
    out = run(
        r"""
        # eval_every=3 over 7 epochs: calls end at epochs 3, 6 and 7, all of one program; the estimator is traced
        # twice (for the shapes of an epoch's record, and for the loop).
        traces = []

        class Counting(jrbm.CD):
            def grad(self, key, params, batch, state):
                traces.append(1)
                return super().grad(key, params, batch, state)

        inits = stack([jrbm.init_bernoulli(k, 9, 6, data=BAS) for k in jax.random.split(jax.random.key(4), 2)])
        _, history = fit_ensemble(jax.random.split(jax.random.key(5), 2), inits, BAS, optimizer=optax.sgd(0.1),
                                  estimator=Counting(1), epochs=7, batch_size=8, eval_every=3, log_likelihood="exact", progress=False)
        assert len(traces) == 2, len(traces)
        assert history["recon_error"].shape == (2, 7) and np.isfinite(history["recon_error"]).all()

        # A GB-RBM learning its variances with a huge step overflows: the error names the model;
        # with check_finite=False the other model trains on and the diverged one holds nan.
        data = jrbm.datasets.two_laplace(1000, seed=0)
        inits = stack([jrbm.init_gaussian(k, 2, 4, data=data) for k in jax.random.split(jax.random.key(6), 2)])
        keys = jax.random.split(jax.random.key(7), 2)
        kw = dict(optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.01), estimator=jrbm.CD(1), epochs=2,
                  batch_size=100, learn_sigma=True, sigma_warmup=0, hyperparams={"learning_rate": np.array([0.01, 100.0])}, progress=False)
        try:
            fit_ensemble(keys, inits, data, **kw)
        except FloatingPointError as e:
            assert re.search(r"model 1: params\.\w+ has non-finite values after epoch 1", str(e)), e
        else:
            raise AssertionError("no FloatingPointError")
        params, history = fit_ensemble(keys, inits, data, check_finite=False, **kw)
        assert np.isfinite(history["recon_error"][0]).all() and np.isnan(history["recon_error"][1]).all()
        assert all(np.isfinite(leaf[0]).all() for leaf in params)
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"keys": jax.random.split(jax.random.key(0), 3)}, ValueError, r"keys: expected one key per model, got 3 keys for the 2 models stacked in params"),
        ({"keys": jax.random.key(0)}, TypeError, r"keys: expected a 1-D array of jax.random keys"),
        ({"hyperparams": {"learning_rate": np.ones(2)}}, ValueError,
         r"hyperparams: 'learning_rate' is not a numeric hyper-parameter.*optax.inject_hyperparams"),
        ({"optimizer": optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), "hyperparams": {"learning_rate": np.ones(3)}},
         ValueError, r"hyperparams\['learning_rate'\]: expected shape \(2,\)"),
        ({"optimizer": optax.inject_hyperparams(optax.sgd)(learning_rate=optax.linear_schedule(0.1, 0.0, 10)),
          "hyperparams": {"learning_rate": np.ones(2)}}, ValueError, r"'learning_rate' follows a schedule"),
        ({"batch_size": 17}, ValueError, r"batch_size: expected at most the number of examples \(16\), got 17"),
        ({"optimizer": optax.inject_hyperparams(optax.sgd)(learning_rate=1), "hyperparams": {"learning_rate": [0.05, 0.1]}},
         ValueError, r"hyperparams\['learning_rate'\]: the optimizer holds it as int(32|64), which cannot hold \[0.05, 0.1\]"),
        ({"optimizer": optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), "hyperparams": {"learning_rate": [0.1 + 5j, 0.1]}},
         ValueError, r"hyperparams\['learning_rate'\]: expected finite real numbers"),
    ],
    ids=["models-vs-keys", "one-key", "not-injected", "wrong-length", "schedule", "batch-size", "int-placeholder", "complex"],
)
def test_bad_arguments(kwargs, error, match):
    inits = stack([jrbm.init_bernoulli(k, 9, 6) for k in jax.random.split(jax.random.key(8), 2)])
    kw = dict(keys=jax.random.split(jax.random.key(9), 2), optimizer=optax.sgd(0.1), epochs=1, batch_size=4,
              progress=False) | kwargs
    keys = kw.pop("keys")
    with pytest.raises(error, match=match):
        fit_ensemble(keys, inits, BAS, **kw)


def test_grouping_epochs_into_calls_changes_nothing(monkeypatch):
    """As in fit: one epoch a call and the most a call allows end bit-identical, evaluations where asked."""
    inits = stack([jrbm.init_bernoulli(k, 9, 6, data=BAS) for k in jax.random.split(jax.random.key(4), 2)])
    kw = dict(optimizer=optax.sgd(0.1), estimator=jrbm.PCD(1, 8), epochs=7, batch_size=8, eval_every=3,
              log_likelihood="exact", progress=False)
    results = []
    for seconds in (0.0, 1e9):
        monkeypatch.setattr(jrbm.train.loop, "SECONDS_PER_CALL", seconds)
        results.append(fit_ensemble(jax.random.split(jax.random.key(5), 2), inits, BAS, **kw))
    (p0, h0), (p1, h1) = results
    jax.tree.map(np.testing.assert_array_equal, p0, p1)
    assert h0.keys() == h1.keys()
    for name in h0:
        np.testing.assert_array_equal(h0[name], h1[name], err_msg=name)
    evaluated = np.isfinite(h0["log_likelihood"])
    assert evaluated[:, [2, 5, 6]].all() and not evaluated[:, [0, 1, 3, 4]].any()


def test_no_models_is_refused_by_name():
    empty = jax.tree.map(lambda x: x[:0], stack([jrbm.init_bernoulli(jax.random.key(8), 9, 6)]))
    with pytest.raises(ValueError, match="keys: expected at least one model, got 0 keys"):
        fit_ensemble(jax.random.split(jax.random.key(9), 0), empty, BAS, optimizer=optax.sgd(0.1), epochs=1, batch_size=4, progress=False)
