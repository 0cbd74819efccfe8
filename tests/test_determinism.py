"""Determinism: the same key gives the same result with ``jit`` on and off, and whatever the batching.

What is guaranteed (and documented in the README's "Guarantees" section):

* the same key, arguments, jax version and backend give bit-identical results,
  call to call and process to process;
* ``jit`` on or off (``jax.disable_jit()`` runs every ``lax.scan`` as a Python
  loop of single operations): the random streams are the same, so binary samples
  are identical; floating-point results agree to rounding, because XLA may fuse
  and reorder arithmetic inside a compiled program;
* deterministic per-example functions (free energies, conditionals, exact
  likelihoods, metrics) give each example the same value whatever batch it is
  computed in, and exact enumeration does not depend on its block size;
* random draws depend on the key and on the *shape* of the batch (one array of
  uniforms per call); drawing with one key per example (``jax.random.split``
  and ``jax.vmap``) makes them independent of how the examples are batched.
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import random_bernoulli, random_gaussian
from test_sharding import run_script

import jrbm

# Rounding of float64 arithmetic reordered by fusion: a few ulps of the largest
# intermediate (values here are O(10)), far below any statistical effect.
RTOL, ATOL = 1e-12, 1e-12

BB = random_bernoulli(0, 6, 4)
GB = random_gaussian(1, 6, 4)
DATA = np.random.default_rng(0).integers(0, 2, (12, 6)).astype(np.float64)
REAL = np.random.default_rng(1).normal(size=(12, 6))
KEY = jax.random.key(42)


def _data(params):
    return DATA if isinstance(params, jrbm.BernoulliRBM) else REAL


def _assert_same(jitted, eager, binary):
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager)):
        a, b = np.asarray(a), np.asarray(b)
        if binary:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def _jit_on_and_off(fn, *args):
    jitted = jax.jit(fn)(*args)
    with jax.disable_jit():
        eager = fn(*args)
    return jitted, eager


SAMPLERS = {
    "sample_h_given_v": lambda k, p, v: jrbm.sample_h_given_v(k, p, v),
    "sample_v_given_h": lambda k, p, v: jrbm.sample_v_given_h(k, p, jrbm.p_h_given_v(p, v) > 0.5),
    "gibbs_step": lambda k, p, v: jrbm.gibbs_step(k, p, v),
    "gibbs_chain": lambda k, p, v: jrbm.gibbs_chain(k, p, v, 5),
    "gibbs_chain trajectory": lambda k, p, v: jrbm.gibbs_chain(k, p, v, 3, trajectory=True),
}


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("params", [BB, GB], ids=["bernoulli", "gaussian"])
def test_samplers_with_jit_on_and_off(name, params):
    fn = SAMPLERS[name]
    jitted, eager = _jit_on_and_off(lambda k, v: fn(k, params, v), KEY, _data(params))
    # Binary draws compare uniforms with probabilities: identical unless a uniform falls within
    # rounding (1e-16) of its probability. Gaussian draws are mean + std * normal: equal to rounding.
    binary = isinstance(params, jrbm.BernoulliRBM) or name == "sample_h_given_v"
    _assert_same(jitted, eager, binary)


ESTIMATORS = {
    "cd_grad": lambda k, p, v: jrbm.cd_grad(k, p, v, k=3),
    "pcd_grad": lambda k, p, v: jrbm.pcd_grad(k, p, v, v[::-1], k=2),
    "PT": lambda k, p, v: jrbm.PT(2, k=1, n_chains=2).grad(k, p, v, jrbm.PT(2, k=1, n_chains=2).init(k, p, v)),
    "ais.log_partition": lambda k, p, v: jrbm.ais.log_partition(k, p, data=v, betas=4, n_runs=2).log_weights,
}
# Without jit every operation is dispatched alone; the family-specific parts of PT and AIS are the
# samplers and free energies above, so their loops are run for one family to keep this quick.
CASES = [(n, BB) for n in ESTIMATORS] + [(n, GB) for n in ("cd_grad", "pcd_grad")]


@pytest.mark.parametrize("name, params", CASES, ids=[f"{type(p).__name__}-{n}" for n, p in CASES])
def test_estimators_with_jit_on_and_off(name, params):
    jitted, eager = _jit_on_and_off(lambda k, p: ESTIMATORS[name](k, p, jnp.asarray(_data(params))), KEY, params)
    _assert_same(jitted, eager, binary=False)


@pytest.mark.parametrize("estimator", [jrbm.CD(2), jrbm.PCD(1, n_chains=4)], ids=["CD-2", "PCD-1"])
def test_fit_with_jit_on_and_off(estimator):
    def run():
        return jrbm.fit(KEY, BB, DATA, optimizer=optax.sgd(0.1), estimator=estimator, epochs=2, batch_size=4,
                        progress=False)

    jitted, history = run()
    with jax.disable_jit():
        eager, eager_history = run()
    _assert_same(jitted, eager, binary=False)
    np.testing.assert_allclose(history["recon_error"], eager_history["recon_error"], rtol=RTOL)


PER_EXAMPLE = {
    "free_energy": jrbm.free_energy,
    "p_h_given_v": jrbm.p_h_given_v,
    "p_v_given_h": lambda p, v: jrbm.p_v_given_h(p, jrbm.p_h_given_v(p, v)),
    "exact.log_likelihood": jrbm.exact.log_likelihood,
    "metrics.pseudo_log_likelihood": jrbm.metrics.pseudo_log_likelihood,
}


# The pseudo-likelihood is defined for binary visible units only.
PER_EXAMPLE_CASES = [(n, p) for n in PER_EXAMPLE for p in (BB, GB) if not (n.startswith("metrics.pseudo") and p is GB)]


@pytest.mark.parametrize("name, params", PER_EXAMPLE_CASES, ids=[f"{type(p).__name__}-{n}" for n, p in PER_EXAMPLE_CASES])
def test_per_example_results_do_not_depend_on_the_batch(name, params):
    fn, data = PER_EXAMPLE[name], _data(params)
    whole = np.asarray(fn(params, data))
    for size in (1, 2, 3, 4, 6):  # the batch sizes that divide the 12 examples
        parts = np.concatenate([np.asarray(fn(params, data[i : i + size])) for i in range(0, len(data), size)])
        np.testing.assert_allclose(parts, whole, rtol=RTOL, atol=ATOL, err_msg=f"batch size {size}")
        np.testing.assert_allclose(np.asarray(fn(params, data[0])), whole[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("params", [BB, GB], ids=["bernoulli", "gaussian"])
def test_mean_metrics_are_means_over_batches(params):
    data = _data(params)
    whole = float(jrbm.metrics.reconstruction_error(params, data))
    for size in (1, 3, 4):
        parts = [float(jrbm.metrics.reconstruction_error(params, data[i : i + size])) for i in range(0, len(data), size)]
        np.testing.assert_allclose(np.mean(parts), whole, rtol=RTOL)


@pytest.mark.parametrize("params", [random_bernoulli(2, 9, 7), random_gaussian(3, 4, 9)], ids=["bernoulli", "gaussian"])
def test_exact_results_do_not_depend_on_the_block_size(params):
    data = np.random.default_rng(2).integers(0, 2, (8, params.W.shape[0])).astype(np.float64)
    ref_z, ref_g = jrbm.exact.log_partition(params), jrbm.exact.grad(params, data)
    for chunk_size in (1, 4, 64):  # the references use the default, one block for these models
        np.testing.assert_allclose(jrbm.exact.log_partition(params, chunk_size=chunk_size), ref_z, rtol=RTOL)
        g = jrbm.exact.grad(params, data, chunk_size=chunk_size)
        _assert_same(g, ref_g, binary=False)
    # The loss gradient is a mean over examples: the mean of the per-batch gradients.
    halves = [jrbm.exact.grad(params, data[i : i + 4]) for i in (0, 4)]
    _assert_same(jax.tree.map(lambda a, b: (a + b) / 2, *halves), ref_g, binary=False)


@pytest.mark.parametrize("params", [BB, GB], ids=["bernoulli", "gaussian"])
def test_draws_with_per_example_keys_do_not_depend_on_the_batch(params):
    data = _data(params)
    keys = jax.random.split(KEY, len(data))
    chain = jax.vmap(lambda k, v: jrbm.gibbs_chain(k, params, v, 4))
    whole = np.asarray(chain(keys, data))
    for size in (1, 3, 4):
        parts = np.concatenate([np.asarray(chain(keys[i : i + size], data[i : i + size])) for i in range(0, len(data), size)])
        _assert_same(parts, whole, binary=isinstance(params, jrbm.BernoulliRBM))


SCRIPT = textwrap.dedent(
    """
    import hashlib, jax, numpy as np, optax, jrbm
    data = jrbm.datasets.bars_and_stripes(3)
    params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
    params, _ = jrbm.fit(jax.random.key(1), params, data, optimizer=optax.sgd(0.1), estimator=jrbm.PCD(1, 8),
                         epochs=3, batch_size=4, progress=False)
    v = jrbm.gibbs_chain(jax.random.key(2), params, data, 10)
    print(hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in (*params, v))).hexdigest())
    """
)


def test_same_key_same_bits_in_fresh_processes():
    first, second = (run_script(SCRIPT, devices=1).strip() for _ in range(2))
    assert len(first) == 64 and first == second
