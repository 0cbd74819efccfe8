"""The generator of the layers' noise (:mod:`jrbm.rng`).

JAX's default threefry2x32 keys draw their noise with philox4x32 keyed by
the same bits; other keys, and any key inside ``own_generator()``, with their
own. The references are written by hand from ``jax.random`` alone, so a
sampler that drew with another key, or a compiled program reused across the
two modes, shows up as different bits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jrbm
from jrbm import rng

needs_philox = pytest.mark.skipif(
    not rng._has_noise_impl(),
    reason="jax before 0.10.2 has no philox4x32, so every key draws its noise with its own generator "
    "(test_keys_of_other_generators_draw_with_their_own and test_own_generator_nests_and_restores still run)",
)


def _manual_step(key, params, v, noise_key):
    """One Gibbs sweep of a Bernoulli RBM written from ``jax.random`` alone, with ``noise_key`` applied to each half's key."""
    key_h, key_v = jax.random.split(key)
    ph = jax.nn.sigmoid(v @ params.W + params.c)
    h = (jax.random.uniform(noise_key(key_h), ph.shape, ph.dtype) < ph).astype(v.dtype)
    pv = jax.nn.sigmoid(h @ params.W.T + params.b)
    return (jax.random.uniform(noise_key(key_v), pv.shape, pv.dtype) < pv).astype(v.dtype)


def _as_philox(key):
    return jax.random.wrap_key_data(jax.random.key_data(key), impl="philox4x32")


@needs_philox
def test_default_keys_draw_with_philox_keyed_by_the_same_bits():
    key = jax.random.key(3)
    derived = rng.noise_key(key)
    assert str(jax.random.key_impl(derived)) == "philox4x32"
    np.testing.assert_array_equal(jax.random.key_data(derived), jax.random.key_data(key))
    batch = jax.random.split(key, 5)  # a batch of keys, as under vmap
    np.testing.assert_array_equal(jax.random.key_data(rng.noise_key(batch)), jax.random.key_data(batch))

    params = jrbm.init_bernoulli(jax.random.key(0), 7, 5, weight_std=1.0)
    v = (jax.random.uniform(jax.random.key(1), (64, 7)) < 0.5).astype(params.W.dtype)
    np.testing.assert_array_equal(jrbm.gibbs_step(key, params, v), _manual_step(key, params, v, _as_philox))
    with rng.own_generator():
        np.testing.assert_array_equal(jrbm.gibbs_step(key, params, v), _manual_step(key, params, v, lambda k: k))
    # Different generators give different bits: the two references are not the same draw.
    assert not np.array_equal(_manual_step(key, params, v, _as_philox), _manual_step(key, params, v, lambda k: k))


@pytest.mark.parametrize("impl", ["philox2x32", "rbg"])
def test_keys_of_other_generators_draw_with_their_own(impl):
    try:
        key = jax.random.key(5, impl=impl)
    except ValueError:
        pytest.skip(f"jax before 0.10.2 has no {impl} keys; the rbg case still checks that other generators pass through")
    assert rng.noise_key(key) is key
    params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
    v = jnp.zeros((32, 6), params.W.dtype)
    np.testing.assert_array_equal(jrbm.gibbs_step(key, params, v), _manual_step(key, params, v, lambda k: k))


@needs_philox
def test_compiled_programs_are_kept_apart_by_generator():
    """jrbm's compiled samplers are cached per generator: a program traced in one mode is never reused in the other."""
    params = jrbm.init_bernoulli(jax.random.key(0), 8, 5, weight_std=1.0)
    v = (jax.random.uniform(jax.random.key(1), (16, 8)) < 0.5).astype(params.W.dtype)
    key = jax.random.key(2)

    def run():
        return (
            jrbm.gibbs_chain(key, params, v, 30),
            jrbm.cd_grad(key, params, v, k=3).W,
            jrbm.ais.log_partition(key, params, betas=50, n_runs=8).log_weights,
        )

    jax.clear_caches()
    first = run()
    with rng.own_generator():
        own = run()
    again = run()
    jax.clear_caches()
    with rng.own_generator():
        own_fresh = run()  # traced first inside the context
    for a, b, c, d in zip(first, own, again, own_fresh):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert not np.array_equal(first[0], own[0])
    # gibbs_chain's first sweep of its first block equals the hand-written sweep with that block's keys.
    manual = _manual_step(jax.random.fold_in(key, 0), params, v, _as_philox)
    np.testing.assert_array_equal(jrbm.gibbs_chain(key, params, v, 1), manual)


@needs_philox
def test_vmap_over_keys_equals_the_loop_and_float64_works():
    params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
    v = jnp.zeros((10, 6), params.W.dtype)
    keys = jax.random.split(jax.random.key(4), 3)
    batched = jax.vmap(lambda k: jrbm.gibbs_chain(k, params, v, 20))(keys)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], jrbm.gibbs_chain(keys[i], params, v, 20))
    assert jax.config.jax_enable_x64  # tests/conftest.py
    g = jrbm.init_gaussian(jax.random.key(0), 3, 2)
    x = jrbm.sample_v_given_h(jax.random.key(1), g, jnp.zeros((4, 2), jnp.float64))
    assert x.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(x)))


def test_own_generator_nests_and_restores():
    key = jax.random.key(0)
    with rng.own_generator():
        with rng.own_generator(False):  # an inner False does not undo an outer True
            assert rng.noise_key(key) is key
        assert rng.own()
    assert rng.own(mesh=object()) and (rng.own() is False)
