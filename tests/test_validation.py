"""Bad input at the public boundary: one row per case, each error naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jrbm
from helpers import random_bernoulli, random_gaussian

BB = random_bernoulli(0, 5, 3)
GB = random_gaussian(0, 5, 3)
KEY = jax.random.key(0)
V = np.zeros((4, 5))
NAN_V = V.copy()
NAN_V[2, 1] = np.nan

CASES = [
    ("v of the wrong length", lambda: jrbm.free_energy(BB, np.zeros(4)), ValueError, r"v: expected shape \(\.\.\., 5\).*got shape \(4,\)"),
    ("scalar v", lambda: jrbm.p_h_given_v(BB, 1.0), ValueError, r"v: expected shape \(\.\.\., 5\)"),
    ("h of the wrong length", lambda: jrbm.p_v_given_h(GB, np.zeros(5)), ValueError, r"h: expected shape \(\.\.\., 3\)"),
    ("NaN in v", lambda: jrbm.free_energy(GB, NAN_V), ValueError, r"v: expected finite values, got nan at index \(2, 1\)"),
    ("inf in h", lambda: jrbm.energy(BB, V[0], np.array([0, np.inf, 0])), ValueError, r"h: expected finite values"),
    ("string data", lambda: jrbm.free_energy(BB, np.array(["a"] * 5)), TypeError, r"v: expected a real numeric"),
    ("complex data", lambda: jrbm.free_energy(BB, np.zeros(5, complex)), TypeError, r"v: expected a real numeric"),
    ("unknown params type", lambda: jrbm.free_energy((BB.W, BB.b, BB.c), V), TypeError, r"params: expected one of BernoulliRBM, GaussianRBM, got tuple"),
    ("b of the wrong shape", lambda: jrbm.free_energy(BB._replace(b=jnp.zeros(4)), V), ValueError, r"params.b: expected shape \(5,\).*got \(4,\)"),
    ("c of the wrong shape", lambda: jrbm.free_energy(BB._replace(c=jnp.zeros(5)), V), ValueError, r"params.c: expected shape \(3,\)"),
    ("log_sigma of the wrong shape", lambda: jrbm.free_energy(GB._replace(log_sigma=jnp.zeros(3)), V), ValueError, r"params.log_sigma: expected shape \(5,\)"),
    ("W not a matrix", lambda: jrbm.free_energy(BB._replace(W=jnp.zeros(5)), V), ValueError, r"params.W: expected shape \(n_visible, n_hidden\)"),
    ("mixed leaf dtypes", lambda: jrbm.free_energy(BB._replace(b=BB.b.astype(jnp.float32)), V), TypeError, r"params.b: expected dtype float64"),
    ("integer weights", lambda: jrbm.free_energy(BB._replace(W=jnp.zeros((5, 3), jnp.int32)), V), TypeError, r"params.W: expected a floating dtype"),
    ("k = 0", lambda: jrbm.cd_grad(KEY, BB, V, k=0), ValueError, r"k: expected a positive integer, got 0"),
    ("k not an int", lambda: jrbm.cd_grad(KEY, BB, V, k=1.5), TypeError, r"k: expected a positive integer"),
    ("key not a key", lambda: jrbm.cd_grad(0, BB, V), TypeError, r"key: expected a jax.random key"),
    ("key after params", lambda: jrbm.gibbs_chain(BB, KEY, V, 3), TypeError, r"key: expected a jax.random key"),
    ("n_steps = 0", lambda: jrbm.gibbs_chain(KEY, BB, V, 0), ValueError, r"n_steps: expected a positive integer"),
    ("v0 of the wrong length", lambda: jrbm.gibbs_chain(KEY, BB, np.zeros((2, 6)), 3), ValueError, r"v0: expected shape \(\.\.\., 5\)"),
    ("chains of the wrong length", lambda: jrbm.pcd_grad(KEY, BB, V, np.zeros((2, 4))), ValueError, r"chains: expected shape \(\.\.\., 5\)"),
    ("PCD with no chains", lambda: jrbm.PCD(1, 0).init(KEY, BB, V), ValueError, r"n_chains: expected a positive integer"),
    ("layer too wide for exact", lambda: jrbm.exact.log_partition(jrbm.init_bernoulli(KEY, 30, 30)), ValueError, r"max_bits=24"),
    ("non-binary data to a Bernoulli likelihood", lambda: jrbm.exact.log_likelihood(BB, np.full(5, 0.3)), ValueError, r"v: expected binary values \(0 or 1\).*got 0.3"),
    ("NaN to exact.grad", lambda: jrbm.exact.grad(GB, NAN_V), ValueError, r"v: expected finite values"),
    ("n_visible = 0", lambda: jrbm.init_bernoulli(KEY, 0, 3), ValueError, r"n_visible: expected a positive integer, got 0"),
    ("data with the wrong width", lambda: jrbm.init_bernoulli(KEY, 4, 3, data=V), ValueError, r"data: expected 4 columns"),
    ("empty data", lambda: jrbm.init_gaussian(KEY, 5, 3, data=np.zeros((0, 5))), ValueError, r"data: expected at least one example"),
    ("non-positive sigma", lambda: jrbm.init_gaussian(KEY, 5, 3, sigma=0.0), ValueError, r"sigma: expected positive finite values"),
]


@pytest.mark.parametrize("fn, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(fn, error, match):
    with pytest.raises(error, match=match):
        fn()


def test_shape_errors_are_raised_under_jit_too():
    with pytest.raises(ValueError, match=r"v: expected shape \(\.\.\., 5\)"):
        jax.jit(jrbm.free_energy)(BB, jnp.zeros(4))


def test_bernoulli_conditionals_accept_real_valued_data():
    """Documented: the BB conditionals and free energy are formulas valid for real v (mean-field use)."""
    v = np.full(5, 0.25)
    np.testing.assert_allclose(jrbm.p_h_given_v(BB, v), jax.nn.sigmoid(v @ BB.W + BB.c), rtol=1e-13)
    assert np.isfinite(jrbm.free_energy(BB, v))
