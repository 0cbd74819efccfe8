"""Data parallelism over a device mesh: sharded runs equal single-device runs.

The test process initialised JAX with one CPU device, so every check runs in a
fresh interpreter with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(four CPU devices); the script asserts and the test checks its exit status.

Tolerances: with a mesh, jrbm draws every layer's noise with the keys' own
generator (:mod:`jrbm.rng`), so the references run on one device inside
``jrbm.rng.own_generator()``. With the default partitionable threefry, a
sharded run then draws the same random bits as the single-device run, so the only difference is the order
of floating-point reductions (the gradient's sum over a minibatch becomes
per-device partial sums plus an all-reduce). In float64 that moves results by
a few ulps per step; over a handful of epochs 1e-12 is ample, and a binary
sample that flipped (a real bug) would show up as a difference of order 1.
Chains (Gibbs, PT) involve no cross-device reduction and must match exactly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

import jrbm

ROOT = Path(jrbm.__file__).resolve().parent.parent  # the checkout (or site-packages) that holds jrbm


def _env(devices: int) -> dict:
    """Fresh interpreters with ``devices`` CPU devices.

    ``--xla_backend_optimization_level=0`` skips LLVM's optimisation of the
    generated CPU code, which is most of the compile time of these small
    programs (about 30 s of this file's 40 otherwise); the partitioning under
    test happens earlier, in XLA's HLO passes, and the sharded and reference
    runs of a comparison share the setting.
    """
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def run_script(code: str, devices: int = 4, timeout: float = 240) -> str:
    """Runs ``code`` in a fresh interpreter with ``devices`` CPU devices; fails the test on a non-zero exit."""
    prelude = textwrap.dedent(
        """
        import re
        import jax, jax.numpy as jnp, numpy as np, optax
        jax.config.update("jax_enable_x64", True)
        import jrbm, jrbm.parallel, jrbm.tempering
        assert jax.device_count() == {devices}, jax.devices()

        def maxdiff(a, b):
            return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                       for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        """
    ).format(devices=devices)
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=_env(devices), capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_sharded_fit_matches_single_device_and_all_reduces_in_the_step():
    out = run_script(
        """
        mesh = jrbm.parallel.make_mesh()  # 'data': 4
        data = jrbm.datasets.bars_and_stripes(3)  # (16, 9)
        params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
        opt, est = optax.adam(0.05), jrbm.PCD(1, 8)
        kw = dict(optimizer=opt, estimator=est, epochs=4, batch_size=8, validation=data[:8],
                  log_likelihood="exact", eval_every=2, progress=False)
        with jax.numpy_dtype_promotion("standard"):
            with jrbm.rng.own_generator():
                single, h1 = jrbm.fit(jax.random.key(1), params, data, **kw)
            sharded, h2 = jrbm.fit(jax.random.key(1), params, data, mesh=mesh, **kw)

            # The parameters come back replicated on the four devices.
            assert sharded.W.sharding.is_fully_replicated and len(sharded.W.sharding.device_set) == 4
            d = maxdiff(single, sharded)
            assert d < 1e-12, d
            for name in ("recon_error", "free_energy_gap", "log_likelihood", "val_log_likelihood"):
                np.testing.assert_allclose(h1[name], h2[name], rtol=1e-12, atol=1e-12, err_msg=name)

            # Inside fit's compiled epoch (the same cached program): the minibatch and the
            # chains are split across the devices and the gradient is all-reduced.
            step = jrbm.train.loop.compiled_epochs(8, opt, est, type(est), mesh, True)
            state = jrbm.train.init_state(jax.random.key(2), params, jnp.asarray(data), optimizer=opt, estimator=est)
            compiled = step.lower(jax.random.key(3), np.int32(1), np.int32(1), state, jnp.asarray(data), None).compile()
            assert "all-reduce" in compiled.as_text()
            chains = compiled(jax.random.key(3), np.int32(1), np.int32(1), state, jnp.asarray(data), None)[0].estimator_state
            assert chains.sharding.spec[0] == "data", chains.sharding
            assert [s.data.shape for s in chains.addressable_shards] == [(2, 9)] * 4

            # FPCD: the chains split, the fast parameters replicated, the same result.
            kw_f = kw | {"estimator": jrbm.FPCD(1, 8, fast_lr=0.05)}
            with jrbm.rng.own_generator():
                f1, _ = jrbm.fit(jax.random.key(1), params, data, **kw_f)
            f2, _ = jrbm.fit(jax.random.key(1), params, data, mesh=mesh, **kw_f)
            assert maxdiff(f1, f2) < 1e-12, maxdiff(f1, f2)
            fstate = jrbm.FPCD(1, 8).init(jax.random.key(2), params, data)
            specs = jrbm.parallel.estimator_state_specs(fstate, mesh)
            assert specs.chains[0] == "data" and specs.fast.W == jrbm.parallel.P(), specs

            # A minibatch that does not split evenly is a clear error, not a silent reshuffle.
            try:
                jrbm.fit(jax.random.key(1), params, data, mesh=mesh, **(kw | {"batch_size": 6}))
            except ValueError as e:
                assert "batch_size: expected a multiple of the 4 devices" in str(e), e
            else:
                raise AssertionError("batch_size 6 on 4 devices was accepted")
        print("fit ok", d)
        """
    )
    assert "fit ok" in out


def test_sharded_chains_tempering_and_ais_match_single_device():
    out = run_script(
        """
        mesh = jrbm.parallel.make_mesh()
        params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, weight_std=1.0)
        v0 = jnp.asarray(jrbm.datasets.bars_and_stripes(3)[:8], jnp.float64)

        with jrbm.rng.own_generator():
            a = jrbm.gibbs_chain(jax.random.key(1), params, v0, 25)
        b = jrbm.gibbs_chain(jax.random.key(1), params, v0, 25, mesh=mesh)
        assert b.sharding.spec[0] == "data", b.sharding
        np.testing.assert_array_equal(a, b)

        state = jrbm.tempering.pt_init(jax.random.key(2), params, v0, betas=4, n_chains=8)
        with jrbm.rng.own_generator():
            a = jrbm.tempering.pt_chain(jax.random.key(3), params, state, 4, 20)
        b = jrbm.tempering.pt_chain(jax.random.key(3), params, state, 4, 20, mesh=mesh)
        np.testing.assert_array_equal(a.chains, b.chains)
        np.testing.assert_allclose(a.n_accepted, b.n_accepted, rtol=1e-12)
        assert b.chains.sharding.spec[0] == "data"

        with jrbm.rng.own_generator():
            a = jrbm.ais.log_partition(jax.random.key(4), params, betas=200, n_runs=32)
        b = jrbm.ais.log_partition(jax.random.key(4), params, betas=200, n_runs=32, mesh=mesh)
        assert b.log_weights.sharding.spec[0] == "data", b.log_weights.sharding
        np.testing.assert_allclose(a.log_weights, b.log_weights, rtol=1e-12)
        np.testing.assert_allclose([a.log_z, a.log_z_std], [b.log_z, b.log_z_std], rtol=1e-12)

        with jrbm.rng.own_generator():
            a = jrbm.ais.reverse_log_partition(jax.random.key(5), params, v0, betas=200)
        b = jrbm.ais.reverse_log_partition(jax.random.key(5), params, v0, betas=200, mesh=mesh)
        np.testing.assert_allclose(a.log_weights, b.log_weights, rtol=1e-12)
        np.testing.assert_allclose(a.log_z, b.log_z, rtol=1e-12)
        print("chains ok")
        """
    )
    assert "chains ok" in out


def test_ensemble_split_over_models_and_data_matches_the_unsharded_ensemble():
    out = run_script(
        """
        data = jrbm.datasets.bars_and_stripes(3)
        n = 4
        init = jax.vmap(lambda k: jrbm.init_bernoulli(k, 9, 6, data=data))(jax.random.split(jax.random.key(0), n))
        keys = jax.random.split(jax.random.key(1), n)
        kw = dict(optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), estimator=jrbm.PCD(1, 8),
                  epochs=3, batch_size=8, hyperparams={"learning_rate": jnp.array([0.02, 0.05, 0.1, 0.2])},
                  progress=False)
        with jax.numpy_dtype_promotion("standard"):
            with jrbm.rng.own_generator():
                ref, h0 = jrbm.train.fit_ensemble(keys, init, data, **kw)
            for model, dat in [(2, 2)]:  # two models per device pair, each model's batches split in two
                mesh = jrbm.parallel.make_mesh(data=dat, model=model)
                got, h1 = jrbm.train.fit_ensemble(keys, init, data, mesh=mesh, **kw)
                assert got.W.sharding.spec[0] == "model", got.W.sharding
                assert len(got.W.addressable_shards) == 4 and got.W.addressable_shards[0].data.shape[0] == n // model
                d = maxdiff(ref, got)
                assert d < 1e-12, (model, dat, d)
                np.testing.assert_allclose(h0["recon_error"], h1["recon_error"], rtol=1e-12)
        print("ensemble ok")
        """
    )
    assert "ensemble ok" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_multihost_example_runs_on_two_processes(tmp_path):
    """examples/multihost.py with jax.distributed: 2 processes x 2 CPU devices (gloo collectives).

    Each process also trains the same model on one of its own devices
    (``--check``); the sharded result must match it. float64, so the only
    difference is reduction order (see the module docstring).
    """
    script = Path(__file__).resolve().parent.parent / "examples" / "multihost.py"  # the checkout's example
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "--epochs", "2", "--hidden", "8", "--float64", "--check",
             "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)]
            + (["--out", str(tmp_path / "run.json")] if i == 0 else []),
            env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["processes"], run["devices"]) == (2, 4)
    assert run["max_abs_diff_to_single_device"] < 1e-10, run


def test_the_mesh_check_counts_the_axes_a_state_splits():
    """Only the axes a state's partition specs split over 'data' must divide evenly: a trajectory-tempering
    ladder of 3 saved models and a running average declared replicated are not chains."""
    out = run_script(
        """
        from typing import NamedTuple
        from jrbm.train.loop import check_chains
        mesh = jrbm.parallel.make_mesh()  # 'data': 4
        data = jrbm.datasets.bars_and_stripes(3)
        params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)

        class Avg(NamedTuple):
            avg: jax.Array
            def partition_specs(self, mesh):
                return Avg(jrbm.parallel.P())

        class AvgCD(NamedTuple):
            def init(self, key, params, data):
                return Avg(jnp.zeros_like(params.W))  # (9, 6): 9 rows, not a multiple of 4
            def grad(self, key, params, batch, state):
                g = jrbm.cd_grad(key, params, batch)
                return g, Avg(0.9 * state.avg + 0.1 * g.W)

        check_chains(jrbm.PTT(3, 2, 1, 8).init(jax.random.key(1), params, data), mesh)  # 3 models, 8 chains
        check_chains(AvgCD().init(jax.random.key(1), params, data), mesh)
        check_chains(jrbm.Centered(AvgCD()).init(jax.random.key(1), params, data), mesh)
        for state, where in ((jrbm.PTT(4, 2, 1, 6).init(jax.random.key(1), params, data), ".sampler.chains"),
                             (jrbm.PCD(1, 6).init(jax.random.key(1), params, data), ""),
                             ((jnp.zeros((9, 6)),), "[0]")):
            try:
                check_chains(state, mesh)
            except ValueError as e:
                assert f"estimator state{where}: expected its axis 0 (split over the mesh's 'data' axis) to be a multiple of the 4 devices" in str(e), e
            else:
                raise AssertionError(f"accepted {where}")
        params, _ = jrbm.fit(jax.random.key(2), params, data, optimizer=optax.sgd(0.1), estimator=AvgCD(), epochs=2,
                             batch_size=8, mesh=mesh, progress=False)
        print("mesh check ok")
        """
    )
    assert "mesh check ok" in out


@pytest.mark.skipif(not hasattr(jax, "set_mesh"), reason="jax.set_mesh, the mesh context this test enters, is absent from jax 0.6 and older")
def test_explicit_mesh_contexts_sharded_inputs_and_keys_that_cannot_be_split(tmp_path):
    """Found by a review: inside the user's ``jax.set_mesh`` of an Explicit mesh, with inputs placed on several
    devices and no ``mesh=``, and in ``train_epoch`` jitted with a mesh, jrbm crashed in XLA; philox keys crashed
    there too, and a mesh run continued without a mesh silently changed its noise."""
    out = run_script(
        f"""
        import functools
        from jax.sharding import NamedSharding, PartitionSpec as P
        emesh = jax.make_mesh((4,), ("data",))  # Explicit axes, jax's default
        data = jnp.asarray(jrbm.datasets.bars_and_stripes(4), jnp.float64)
        params = jrbm.init_bernoulli(jax.random.key(0), 16, 8, data=data, weight_std=0.5)
        v0 = data[:8]
        fit = functools.partial(jrbm.fit, optimizer=optax.sgd(0.1), estimator=jrbm.PCD(1, 8), epochs=2, batch_size=8,
                                progress=False)
        with jrbm.rng.own_generator():
            chain = jrbm.gibbs_chain(jax.random.key(1), params, v0, 20)
            fitted = fit(jax.random.key(1), params, data)[0]
        with jax.set_mesh(emesh):  # arrays made in the context, then jrbm with and without mesh=
            key = jax.random.key(1)
            for m in (emesh, None):
                np.testing.assert_array_equal(jrbm.gibbs_chain(key, params, v0, 20, mesh=m), chain)
                assert maxdiff(fit(key, params, data, mesh=m)[0], fitted) < 1e-12
                jrbm.ais.log_partition(key, params, betas=20, n_runs=8, mesh=m)
        # an input placed on several devices, no mesh=
        mesh = jrbm.parallel.make_mesh()
        placed = jax.device_put(v0, NamedSharding(mesh, P(None, None)))
        np.testing.assert_array_equal(jrbm.gibbs_chain(jax.random.key(1), params, placed, 20), chain)
        # train_epoch jitted with a mesh, as its docstring says
        opt, est = optax.sgd(0.1), jrbm.PCD(1, 8)
        state = jrbm.train.init_state(jax.random.key(1), params, data, optimizer=opt, estimator=est)
        epoch = jax.jit(functools.partial(jrbm.train.train_epoch, batch_size=8, optimizer=opt, estimator=est, mesh=mesh))
        epoch(jax.random.key(2), state, data)
        # refusals by name
        for impl in ("philox4x32", "philox2x32"):
            try:
                jrbm.gibbs_chain(jax.random.key(1, impl=impl), params, v0, 5, mesh=mesh)
                raise SystemExit("a philox key was not refused")
            except ValueError as e:
                assert str(e).startswith(f"key: expected a key that compiles when XLA splits the work over devices (here a mesh), got a {{impl}} key"), e
        try:
            fit(jax.random.key(1), params, data, estimator=jrbm.PCD(1, 6), mesh=mesh)
            raise SystemExit("6 chains on 4 devices were not refused")
        except ValueError as e:
            assert "give the estimator a number of chains (n_chains) that is a multiple of 4" in str(e), e
        try:
            jrbm.fit_ensemble(jax.random.split(jax.random.key(1), 4), jax.vmap(lambda k: params)(jax.random.split(jax.random.key(0), 4)),
                              data, optimizer=optax.sgd(0.1), epochs=1, batch_size=8, progress=False,
                              mesh=jax.sharding.Mesh(np.array(jax.devices()), ("foo",)))
            raise SystemExit("a mesh without 'model' or 'data' was not refused")
        except ValueError as e:
            assert str(e).startswith("mesh: expected an axis named 'model' or 'data', got axes ('foo',)"), e
        # a run on a mesh continues on a mesh (of any size), not without one
        run = {str(tmp_path / "run")!r}
        fit(jax.random.key(3), params, data, mesh=mesh, checkpoint_dir=run)
        try:
            fit(jax.random.key(3), params, data, epochs=4, checkpoint_dir=run)
            raise SystemExit("a mesh run continued without a mesh")
        except ValueError as e:
            assert str(e).startswith("mesh: ") and "own_generator" in str(e), e
        with jrbm.rng.own_generator():
            fit(jax.random.key(3), params, data, epochs=4, checkpoint_dir=run)
        print("contexts ok")
        """
    )
    assert "contexts ok" in out


@pytest.mark.skipif(not hasattr(jax, "set_mesh"), reason="jax.set_mesh, the mesh context this test enters, is absent from jax 0.6 and older")
def test_every_public_sampler_draws_with_the_keys_own_generator_on_several_devices():
    """Found by a review: the eager samplers (gibbs_step, sample_h_given_v, sample_v_given_h, layers.sample,
    reconstruction_error with a key) drew philox noise inside ``jax.set_mesh`` and crashed in XLA with two
    devices; with an input placed on several devices they drew philox noise unsplit. Each now equals its call
    inside ``own_generator()`` in both cases, and refuses a philox key by name there."""
    out = run_script(
        """
        from jax.sharding import NamedSharding, PartitionSpec as P
        p = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
        v = (jax.random.uniform(jax.random.key(1), (8, 6)) < 0.5).astype(jnp.float64)
        h = jnp.ones((8, 4))
        calls = {
            "gibbs_step": lambda k, v: jrbm.gibbs_step(k, p, v),
            "sample_h_given_v": lambda k, v: jrbm.sample_h_given_v(k, p, v),
            "sample_v_given_h": lambda k, v: jrbm.sample_v_given_h(k, p, h + 0 * v[:, :4]),
            "layers.sample": lambda k, v: jrbm.layers.sample(k, p.hidden, v[:, :4]),
            "reconstruction_error": lambda k, v: jrbm.metrics.reconstruction_error(p, v, key=k),
        }
        mesh = jrbm.parallel.make_mesh()
        placed = jax.device_put(v, NamedSharding(mesh, P("data", None)))
        key = jax.random.key(2)
        for name, f in calls.items():
            with jrbm.rng.own_generator():
                own = np.asarray(f(key, v))
            assert not np.array_equal(np.asarray(f(key, v)), own) or name == "reconstruction_error", name  # philox off the mesh
            with jax.set_mesh(mesh):
                np.testing.assert_array_equal(np.asarray(f(key, v)), own, err_msg=name)
            np.testing.assert_array_equal(np.asarray(f(key, placed)), own, err_msg=name)
            philox = jax.random.key(2, impl="philox4x32")  # made outside the context: making it inside fails in XLA
            try:
                with jax.set_mesh(mesh):
                    f(philox, v)
                raise SystemExit(f"{name}: a philox key was not refused")
            except ValueError as e:
                assert str(e).startswith("key: expected a key that compiles when XLA splits the work over devices (here a mesh context)"), (name, e)
        print("samplers ok")
        """,
        devices=2,
    )
    assert "samplers ok" in out
