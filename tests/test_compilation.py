"""Compiled once: repeated calls with the same shapes do not recompile, and long chains use constant memory.

Compilations are counted with ``jax.monitoring`` (one backend-compile event
per XLA program), so the test sees exactly what a user's eager loop pays.
"""

import jax
import jax.numpy as jnp
import optax
import pytest

import jrbm
import jrbm.tempering as pt
from jrbm import sampling

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_events: list[str] = []
jax.monitoring.register_event_duration_secs_listener(lambda name, duration, **kw: _events.append(name))


def compilations(fn) -> int:
    """The number of XLA programs compiled while running ``fn()`` to completion."""
    start = len(_events)
    jax.block_until_ready(fn())
    return sum(1 for name in _events[start:] if name == COMPILE_EVENT)


P = jrbm.init_bernoulli(jax.random.key(0), 12, 7, weight_std=0.5)
V = [jnp.asarray(jax.random.bernoulli(jax.random.key(i), 0.3, (16, 12)), jnp.float64) for i in range(3)]
KEYS = [jax.random.key(i) for i in range(3)]
STATE = pt.pt_init(KEYS[0], P, V[0], betas=4, n_chains=8)

CALLS = {
    "gibbs_chain": lambda i: jrbm.gibbs_chain(KEYS[i], P, V[i], 20),
    "gibbs_chain trajectory": lambda i: jrbm.gibbs_chain(KEYS[i], P, V[i], 20, trajectory=True),
    "cd_grad": lambda i: jrbm.cd_grad(KEYS[i], P, V[i], k=3),
    "pcd_grad": lambda i: jrbm.pcd_grad(KEYS[i], P, V[i], V[(i + 1) % 3], k=3),
    "pt_step": lambda i: pt.pt_step(KEYS[i], P, STATE, 4),
    "pt_chain": lambda i: pt.pt_chain(KEYS[i], P, STATE, 4, 10),
    "PT.grad": lambda i: jrbm.PT(4, k=2, n_chains=8).grad(KEYS[i], P, V[i], STATE),
    "exact.log_likelihood": lambda i: jrbm.exact.log_likelihood(P, V[i]),
    "exact.grad": lambda i: jrbm.exact.grad(P, V[i]),
    "ais.log_partition": lambda i: jrbm.ais.log_partition(KEYS[i], P, betas=50, n_runs=8).log_z,
}


@pytest.mark.parametrize("name", CALLS)
def test_repeated_eager_calls_do_not_recompile(name):
    call = CALLS[name]
    call(0)  # compiles
    assert compilations(lambda: call(1)) == 0
    assert compilations(lambda: call(2)) == 0


ESTIMATORS = {
    "PCD": lambda: jrbm.PCD(1, 8),
    # made afresh each call from an array ladder, as a user writes it: stored as a tuple, so equal and hashable
    "PT with an array of betas": lambda: jrbm.PT(jnp.linspace(0.25, 1.0, 4), 1, 8),
}


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_fit_compiles_nothing_new_on_a_second_run(estimator):
    with jax.numpy_dtype_promotion("standard"):  # optax's internals; see test_train.py
        opt = optax.sgd(0.1)

        def run(i):
            est = ESTIMATORS[estimator]()
            return jrbm.fit(KEYS[i], P, V[i], optimizer=opt, estimator=est, epochs=3, batch_size=4, progress=False)[0]

        run(0)
        assert compilations(lambda: run(1)) == 0


@pytest.mark.parametrize("trajectory", [False, True])
def test_chain_memory_does_not_grow_with_its_length_unless_the_trajectory_is_kept(trajectory):
    """XLA's own accounting of the compiled chain: scratch memory is the same for 1,000 and 100,000
    sweeps; only the trajectory output grows, by one state per sweep."""

    def memory(n):
        compiled = sampling._chain.lower(KEYS[0], P, V[0], n, trajectory, None).compile()
        return compiled.memory_analysis()

    short, long = memory(1_000), memory(100_000)
    assert long.temp_size_in_bytes == short.temp_size_in_bytes
    state_bytes = V[0].size * V[0].dtype.itemsize
    expected = 100_000 * state_bytes if trajectory else state_bytes
    assert long.output_size_in_bytes == expected
