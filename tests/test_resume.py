"""Resumable training: a run killed with SIGKILL and resumed ends bit-identical to one never stopped.

Each case trains in fresh interpreters (the worker script below), for PCD and
PT, on one device and on a mesh of two CPU devices:

1. a reference run of ``EPOCHS`` epochs, uninterrupted, with a checkpoint
   directory (so both runs pay the same saves);
2. the same run in another directory, killed with SIGKILL at a random moment
   after its first epochs (while it trains or while it writes a state file);
3. the same command again, which continues from the last complete state.

The final parameters, optimiser and estimator states and the history of 3
must equal those of 1 bit for bit: nothing in a run depends on where it
stopped. The kill moment is random (``random.Random()``, printed on failure);
the property must hold for every moment, so there is no tolerance to tune.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jrbm

ROOT = Path(jrbm.__file__).resolve().parent.parent
EPOCHS = 24

WORKER = textwrap.dedent(
    """
    import sys, time
    import jax, numpy as np, optax
    jax.config.update("jax_enable_x64", True)  # as the test process (tests/conftest.py)
    import jrbm, jrbm.parallel

    estimator, devices, directory, epochs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    assert jax.device_count() == devices, jax.devices()
    data = jrbm.datasets.bars_and_stripes(4)
    params = jrbm.init_bernoulli(jax.random.key(0), 16, 12, data=data)
    est = jrbm.PCD(1, 8) if estimator == "pcd" else jrbm.PT(4, 1, n_chains=4)
    mesh = jrbm.parallel.make_mesh() if devices > 1 else None

    def announce(epoch, params, record):
        print(f"epoch {epoch}", flush=True)
        time.sleep(0.02)  # widens the window in which a kill lands mid-run

    state_file = jrbm.train.checkpoint.find_state(directory)
    if state_file is not None:
        print("resuming from epoch", jrbm.io.read_tree_header(state_file)["metadata"]["epoch"], flush=True)
    params, history, state = jrbm.fit(
        jax.random.key(1), params, data, optimizer=optax.sgd(0.05, momentum=0.9), estimator=est,
        epochs=epochs, batch_size=8, progress=False, log_likelihood="exact", eval_every=5,
        callback=announce, mesh=mesh, checkpoint_dir=directory, checkpoint_every=1, return_state=True,
    )
    jrbm.io.save_tree(directory + "/final.npz", state.train_state, {"history": {k: [None if v != v else v for v in vals] for k, vals in history.items()}})
    print("done", flush=True)
    """
)


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _command(script: Path, estimator: str, devices: int, directory: Path) -> list:
    return [sys.executable, str(script), estimator, str(devices), str(directory), str(EPOCHS)]


def _run(script, estimator, devices, directory) -> str:
    out = subprocess.run(_command(script, estimator, devices, directory), env=_env(devices), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _kill_midway(script, estimator, devices, directory, rng) -> tuple[int, float]:
    """Starts the run and SIGKILLs it a random moment after a random epoch; returns (epoch, delay)."""
    after_epoch, delay = rng.randint(2, EPOCHS - 6), rng.uniform(0.0, 0.05)
    proc = subprocess.Popen(_command(script, estimator, devices, directory), env=_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        for line in proc.stdout:
            if line.strip() == f"epoch {after_epoch}":
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed (exit {proc.returncode})"
    return after_epoch, delay


def _template():
    """A fresh TrainState of the worker's run, the structure its files are restored into."""
    data = jrbm.datasets.bars_and_stripes(4)
    params = jrbm.init_bernoulli(jax.random.key(0), 16, 12, data=data)
    return {
        "pcd": jrbm.init_state(jax.random.key(0), params, data, optimizer=optax.sgd(0.05, momentum=0.9), estimator=jrbm.PCD(1, 8)),
        "pt": jrbm.init_state(jax.random.key(0), params, data, optimizer=optax.sgd(0.05, momentum=0.9), estimator=jrbm.PT(4, 1, n_chains=4)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 2], ids=["one-device", "mesh"])
@pytest.mark.parametrize("estimator", ["pcd", "pt"])
def test_sigkill_then_resume_is_bit_identical(tmp_path, estimator, devices):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    _run(script, estimator, devices, reference)
    rng = random.Random()
    after_epoch, delay = _kill_midway(script, estimator, devices, resumed, rng)
    moment = f"killed {delay * 1000:.0f} ms after epoch {after_epoch}"
    assert not (resumed / "final.npz").exists(), moment
    out = _run(script, estimator, devices, resumed)
    first = out.splitlines()[0]
    assert first.startswith("resuming from epoch"), (moment, out[:500])
    resumed_from = int(first.split()[-1])
    assert after_epoch - 1 <= resumed_from < EPOCHS, (moment, resumed_from)  # the callback runs just before the save

    template = _template()[estimator]
    (ref_state, ref_meta), (res_state, res_meta) = (jrbm.io.load_tree(d / "final.npz", template) for d in (reference, resumed))
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(ref_state)[0], jax.tree.leaves(res_state)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=f"{jax.tree_util.keystr(path)} ({moment})")
    assert res_meta == ref_meta, moment  # the whole history, likelihoods included


def test_state_round_trip_and_refusals(tmp_path):
    """In memory and on disk: 4 + 6 epochs equal 10; another key, data, settings, optimizer (its type, learning rate
    or momentum) or initial parameters is refused by name."""
    data = jrbm.datasets.bars_and_stripes(3)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    key = jax.random.key(1)
    kw = dict(optimizer=optax.sgd(0.1, momentum=0.9), estimator=jrbm.PCD(1, 8), batch_size=4, progress=False)
    whole, history = jrbm.fit(key, params, data, epochs=10, **kw)
    _, _, state = jrbm.fit(key, params, data, epochs=4, return_state=True, **kw)
    assert state.epoch == 4 and len(state.history["recon_error"]) == 4
    continued, history2 = jrbm.fit(key, state, data, epochs=10, **kw)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(continued)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert history2["recon_error"] == history["recon_error"]

    directory = tmp_path / "run"
    jrbm.fit(key, params, data, epochs=3, checkpoint_dir=directory, checkpoint_every=2, **kw)
    assert jrbm.io.read_tree_header(directory / "state.npz")["metadata"]["epoch"] == 3  # the last epoch is always written
    continued, _ = jrbm.fit(key, params, data, epochs=10, checkpoint_dir=directory, **kw)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(continued)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="^key: .*another key"):
        jrbm.fit(jax.random.key(2), params, data, epochs=12, checkpoint_dir=directory, **kw)
    with pytest.raises(ValueError, match="^data: .*other data"):
        jrbm.fit(key, params, data[:-1], epochs=12, checkpoint_dir=directory, **kw)
    with pytest.raises(ValueError, match="^batch_size: .*batch_size=4, this call has batch_size=2"):
        jrbm.fit(key, params, data, epochs=12, checkpoint_dir=directory, **{**kw, "batch_size": 2})
    with pytest.raises(ValueError, match="^estimator: "):
        jrbm.fit(key, params, data, epochs=12, checkpoint_dir=directory, **{**kw, "estimator": jrbm.PCD(2, 8)})
    with pytest.raises(ValueError, match="^optimizer: .*updates differ from this call's"):
        jrbm.fit(key, params, data, epochs=12, checkpoint_dir=directory, **{**kw, "optimizer": optax.adam(0.1)})
    # another learning rate or momentum, which leave the optimiser state's structure as it was
    for other in (optax.sgd(0.2, momentum=0.9), optax.sgd(0.1, momentum=0.5)):
        with pytest.raises(ValueError, match=r"^optimizer: .*first two updates of a probe gradient: -0.1, 0.1\d* against"):
            jrbm.fit(key, params, data, epochs=12, checkpoint_dir=directory, **{**kw, "optimizer": other})
        with pytest.raises(ValueError, match="^optimizer: the state passed as params "):
            jrbm.fit(key, state, data, epochs=10, **{**kw, "optimizer": other})
    with pytest.raises(ValueError, match="^params: .*started from other initial parameters"):
        jrbm.fit(key, params._replace(W=params.W + 1e-3), data, epochs=12, checkpoint_dir=directory, **kw)
    with pytest.raises(ValueError, match="^epochs: .*already at epoch 10, beyond epochs=5"):
        jrbm.fit(key, params, data, epochs=5, checkpoint_dir=directory, **kw)
    same, _ = jrbm.fit(key, params, data, epochs=10, checkpoint_dir=directory, **kw)  # a finished run: nothing to do
    np.testing.assert_array_equal(np.asarray(same.W), np.asarray(whole.W))


def test_a_checkpoint_dir_that_cannot_be_a_folder_is_refused_before_training(tmp_path):
    data = jrbm.datasets.bars_and_stripes(3)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 4, data=data)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    trained = []
    kw = dict(optimizer=optax.sgd(0.1), epochs=3, batch_size=4, progress=False, callback=lambda *a: trained.append(a[0]))
    for bad, error, message in [
        (a_file, ValueError, r"checkpoint_dir: expected a folder, got '.*file', which is a file"),
        (a_file / "run", ValueError, r"checkpoint_dir: cannot create the folder '.*file/run' \(Not a directory\)"),
        (5, TypeError, r"checkpoint_dir: expected a folder path \(str or os.PathLike\), got int"),
        ("", ValueError, r"checkpoint_dir: expected a folder path, got ''"),
    ]:
        with pytest.raises(error, match=message):
            jrbm.fit(jax.random.key(1), params, data, checkpoint_dir=bad, checkpoint_every=2, **kw)
    assert trained == []  # not one epoch ran


def test_a_state_file_of_another_learn_sigma_is_refused_by_that_name(tmp_path):
    data = jrbm.datasets.two_laplace(200, seed=0)
    params = jrbm.init_gaussian(jax.random.key(0), 2, 3, data=data, sigma=0.7)
    kw = dict(optimizer=optax.adam(0.01), batch_size=50, progress=False, checkpoint_dir=tmp_path / "run")
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int32 counts with Python floats
        jrbm.fit(jax.random.key(1), params, data, epochs=4, learn_sigma=True, sigma_warmup=2, **kw)
    with pytest.raises(ValueError, match=r"^learn_sigma: .* was trained with learn_sigma=True, this call has learn_sigma=False"):
        jrbm.fit(jax.random.key(1), params, data, epochs=8, **kw)


def test_save_tree_refuses_mismatches(tmp_path):
    path = tmp_path / "tree.npz"
    tree = {"w": jnp.ones((2, 3), jnp.bfloat16), "key": jax.random.key(4), "n": jnp.int32(3)}
    jrbm.io.save_tree(path, tree, {"note": "x"})
    restored, meta = jrbm.io.load_tree(path, tree)
    assert meta == {"note": "x"}
    assert restored["w"].dtype == jnp.bfloat16 and np.array_equal(np.asarray(restored["w"], np.float32), np.ones((2, 3)))
    assert jrbm.train.checkpoint.same_key(restored["key"], tree["key"])
    with pytest.raises(ValueError, match=r"at leaf \['w'\]: shape \[2, 3\] in the file, expected \[3, 2\]"):
        jrbm.io.load_tree(path, {**tree, "w": jnp.ones((3, 2), jnp.bfloat16)})
    with pytest.raises(ValueError, match=r"at leaf \['n'\]: dtype 'int32' in the file, expected 'float32'"):
        jrbm.io.load_tree(path, {**tree, "n": jnp.float32(3)})
    with pytest.raises(ValueError, match="holds 3 leaves, expected 2"):
        jrbm.io.load_tree(path, {"w": tree["w"], "n": tree["n"]})
    jrbm.save(tmp_path / "model.npz", jrbm.init_bernoulli(jax.random.key(0), 3, 2))
    with pytest.raises(ValueError, match="not a jrbm tree file"):
        jrbm.io.load_tree(tmp_path / "model.npz", tree)
    # Leaves that are not numbers are refused by path, and nothing is written.
    with pytest.raises(TypeError, match=r"tree\['s'\]: expected an array or a number, got str 'i8'"):
        jrbm.io.save_tree(tmp_path / "bad.npz", {**tree, "s": "i8"})
    with pytest.raises(TypeError, match=r"tree\['s'\]: expected a numeric or boolean array, got dtype <U5"):
        jrbm.io.save_tree(tmp_path / "bad.npz", {**tree, "s": np.array(["hello"])})
    assert not (tmp_path / "bad.npz").exists()


class _PlainCD:
    """An estimator of one's own as a plain class: hashed by identity, a repr with a memory address."""

    def __init__(self, k=1):
        self.k = k

    def init(self, key, params, data):
        return ()

    def grad(self, key, params, batch, state):
        return jrbm.cd_grad(key, params, batch, self.k), state


class _KeyState(NamedTuple):
    chains: jax.Array
    key: jax.Array  # a typed key in the state, as the key-first convention invites


class _KeyPCD(NamedTuple):
    def init(self, key, params, data):
        k1, k2 = jax.random.split(key)
        return _KeyState(jax.random.bernoulli(k1, 0.5, (8, data.shape[1])).astype(data.dtype), k2)

    def grad(self, key, params, batch, state):
        k, nk = jax.random.split(state.key)
        g, chains = jrbm.pcd_grad(k, params, batch, state.chains, 1)
        return g, _KeyState(chains, nk)


def test_estimators_of_ones_own_resume_and_are_not_cached_by_identity(tmp_path):
    """A plain-class estimator (a new instance, as a new process makes) continues its checkpoint; a typed key
    in an estimator's state is checkpointed; changing an estimator's attribute between fit calls takes effect."""
    data = jrbm.datasets.bars_and_stripes(3)
    p0 = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    kw = dict(optimizer=optax.sgd(0.1), batch_size=8, progress=False)
    for name, make in (("plain", lambda: _PlainCD(2)), ("key", _KeyPCD)):
        d = str(tmp_path / name)
        jrbm.fit(jax.random.key(1), p0, data, estimator=make(), epochs=4, checkpoint_dir=d, checkpoint_every=2, **kw)
        resumed, _ = jrbm.fit(jax.random.key(1), p0, data, estimator=make(), epochs=8, checkpoint_dir=d, checkpoint_every=2, **kw)
        whole, _ = jrbm.fit(jax.random.key(1), p0, data, estimator=make(), epochs=8, **kw)
        for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(whole)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert jrbm.train.checkpoint.describe(jrbm.Centered(_PlainCD(3))).endswith("Centered(estimator=test_resume._PlainCD(k=3), rate=0.01, mix=0.5)")
    est = _PlainCD(1)
    first, _ = jrbm.fit(jax.random.key(1), p0, data, estimator=est, epochs=3, **kw)
    est.k = 20
    changed, _ = jrbm.fit(jax.random.key(1), p0, data, estimator=est, epochs=3, **kw)
    fresh, _ = jrbm.fit(jax.random.key(1), p0, data, estimator=_PlainCD(20), epochs=3, **kw)
    np.testing.assert_array_equal(np.asarray(changed.W), np.asarray(fresh.W))
    assert np.abs(np.asarray(changed.W) - np.asarray(first.W)).max() > 1e-3
