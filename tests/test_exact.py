"""jrbm.exact against brute-force double sums, quadrature, and jax.grad of the exact likelihood."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import all_binary, random_bernoulli, random_gaussian, tutorial_negative_energy_gb

import jrbm


def brute_log_z_bb(params):
    """log of the double sum over all (v, h) of exp(E_tutorial(v, h)), eqs. 2.2-2.3, vectorised in numpy."""
    W, b, c = (np.asarray(x) for x in params)
    V, H = all_binary(W.shape[0]), all_binary(W.shape[1])
    logits = (V @ W) @ H.T + (V @ b)[:, None] + (H @ c)[None, :]
    m = logits.max()
    return m + np.log(np.exp(logits - m).sum())


@pytest.mark.parametrize("shape", [(4, 3), (3, 7), (10, 6), (5, 10), (10, 10)])
def test_bb_log_partition_equals_double_sum(shape):
    params = random_bernoulli(sum(shape), *shape, scale=1.0)
    assert np.isclose(jrbm.exact.log_partition(params), brute_log_z_bb(params), rtol=1e-12)


def test_gb_log_partition_equals_quadrature_over_two_visible_units():
    """log Z = log of the integral over R^2 of sum_h exp(E_tutorial(v, h)), by a 2-D trapezoid rule.

    The integrand is a mixture of Gaussians (smooth, decaying like exp(-v^2)), for
    which the trapezoid rule on a fine grid is accurate far below the tolerance.
    """
    params = random_gaussian(3, 2, 4, scale=0.8)
    W, b, c, log_sigma = (np.asarray(x) for x in params)
    means = np.asarray(jrbm.p_v_given_h(params, all_binary(4)))
    sigma = np.exp(log_sigma)
    axes = [np.linspace(means[:, i].min() - 12 * sigma[i], means[:, i].max() + 12 * sigma[i], 1201) for i in range(2)]
    g0, g1 = np.meshgrid(*axes, indexing="ij")
    v = np.stack([g0.ravel(), g1.ravel()], axis=1)
    a = np.exp(-log_sigma)
    H = all_binary(4)
    E = (a * v) @ W @ H.T - (a**2 / 2 * (v - b) ** 2).sum(1)[:, None] + (H @ c)[None, :]
    # the vectorised integrand is the tutorial's E (helpers.tutorial_negative_energy_gb), checked on some grid points
    some = np.arange(0, len(v), 99_991)
    np.testing.assert_allclose(E[some], [[tutorial_negative_energy_gb(params, v[n], h) for h in H] for n in some], rtol=1e-12)
    f = np.exp(np.logaddexp.reduce(E, axis=1)).reshape(g0.shape)
    Z = np.trapezoid(np.trapezoid(f, axes[1], axis=1), axes[0])
    assert np.isclose(jrbm.exact.log_partition(params), np.log(Z), rtol=1e-9)


@pytest.mark.parametrize(
    "params",
    [
        random_bernoulli(10, 6, 4, scale=1.5),  # enumerates h
        random_bernoulli(11, 4, 7, scale=1.5),  # enumerates v
        random_gaussian(12, 3, 5, scale=1.3),
    ],
    ids=["bb-hidden", "bb-visible", "gb"],
)
def test_exact_grad_equals_autodiff_of_exact_log_likelihood(params):
    rng = np.random.default_rng(0)
    n_visible = params.W.shape[0]
    if isinstance(params, jrbm.BernoulliRBM):
        v = rng.integers(0, 2, (9, n_visible)).astype(float)
    else:
        v = rng.normal(size=(9, n_visible)) * 1.5
    assert float(jnp.std(params.W)) >= 1.0  # weights that are not small
    hand = jrbm.exact.grad(params, v)
    auto = jax.grad(lambda p: -jrbm.exact.log_likelihood(p, v).mean())(params)
    for name, x, y in zip(params._fields, hand, auto):
        scale = float(jnp.max(jnp.abs(y)))
        assert scale > 1e-3, name  # a non-trivial gradient
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-8 * scale, err_msg=name)


def test_enumerated_layer_choice():
    assert jrbm.exact.enumerated_layer(random_bernoulli(0, 3, 8)) == "visible"
    assert jrbm.exact.enumerated_layer(random_bernoulli(0, 8, 3)) == "hidden"
    assert jrbm.exact.enumerated_layer(random_gaussian(0, 2, 8)) == "hidden"


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 4096])
def test_chunking_does_not_change_the_result(chunk_size):
    params = random_bernoulli(13, 9, 5)
    ref = brute_log_z_bb(params)
    assert np.isclose(jrbm.exact.log_partition(params, chunk_size=chunk_size), ref, rtol=1e-12)
    g = jrbm.exact.grad(params, np.ones((2, 9)), chunk_size=chunk_size)
    g_ref = jrbm.exact.grad(params, np.ones((2, 9)), chunk_size=1 << 9)
    for x, y in zip(g, g_ref):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-13)


def test_two_to_the_twenty_states_in_chunks():
    """2^20 hidden states of a GB model, against a direct numpy sum of eq. 3.18 over all of them."""
    params = random_gaussian(14, 2, 20, scale=0.3)
    W, b, c, log_sigma = (np.asarray(x) for x in params)
    a = np.exp(-log_sigma)
    idx = np.arange(1 << 20, dtype=np.uint32)
    H = ((idx[:, None] >> np.arange(20, dtype=np.uint32)) & 1).astype(np.float64)
    m = H @ W.T
    logf = H @ c + (a * b * m + m * m / 2).sum(1) + np.sum(0.5 * np.log(2 * np.pi) + log_sigma)
    ref = logf.max() + np.log(np.exp(logf - logf.max()).sum())
    assert np.isclose(jrbm.exact.log_partition(params), ref, rtol=1e-12)


def test_bb_likelihood_sums_to_one():
    params = random_bernoulli(15, 7, 5, scale=2.0)
    p = np.exp(jrbm.exact.log_likelihood(params, all_binary(7)))
    assert np.isclose(p.sum(), 1.0, rtol=1e-12)
    # marginal_visible's index s holds bit i as v_i
    s = np.arange(1 << 7)
    in_order = np.exp(jrbm.exact.log_likelihood(params, ((s[:, None] >> np.arange(7)) & 1).astype(np.float64)))
    np.testing.assert_allclose(jrbm.exact.marginal_visible(params), in_order, rtol=1e-10)


def test_log_likelihood_under_jit_and_grad_float32():
    params64 = random_bernoulli(16, 6, 4)
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params64)
    v = jnp.ones((3, 6), jnp.float32)
    ll = jax.jit(jrbm.exact.log_likelihood)(params, v)
    assert ll.dtype == jnp.float32
    np.testing.assert_allclose(ll, jrbm.exact.log_likelihood(params64, v), rtol=1e-5)
    g = jax.jit(jrbm.exact.grad)(params, v)
    assert g.W.dtype == jnp.float32


def test_too_wide_layer_is_a_clear_error():
    params = jrbm.init_bernoulli(jax.random.key(0), 40, 30)
    with pytest.raises(ValueError, match=r"2\^30 states.*max_bits=24"):
        jrbm.exact.log_partition(params)
    with pytest.raises(ValueError, match="max_bits"):
        jrbm.exact.grad(jrbm.init_gaussian(jax.random.key(0), 2, 25), np.zeros((1, 2)))


def test_bb_likelihood_rejects_non_binary_data_unless_asked():
    params = random_bernoulli(17, 4, 3)
    with pytest.raises(ValueError, match=r"v: expected binary values"):
        jrbm.exact.log_likelihood(params, np.full((2, 4), 0.5))
    ll = jrbm.exact.log_likelihood(params, np.full((2, 4), 0.5), check=False)
    assert np.all(np.isfinite(ll))


@pytest.mark.parametrize("dtype, rtol", [(jnp.float64, 1e-13), (jnp.float32, 2e-6)])
@pytest.mark.parametrize("n", [1, 16, 32, 33, 70])
def test_softplus_sum_equals_the_sum_of_softplus(dtype, rtol, n):
    """Against numpy's float64 logaddexp, from -100 to 100 (underflowing and large terms)."""
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.normal(size=(50, n)) * s for s in (0.1, 3.0, 30.0, 100.0)])
    x[0] = 0.0
    want = np.logaddexp(0.0, x).sum(-1)  # float64 reference
    got = jrbm.exact.softplus_sum(jnp.asarray(x, dtype))
    assert got.dtype == dtype
    # the float32 budget: one rounding of the sum per term
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * n)
    np.testing.assert_allclose(jrbm.exact.softplus_sum(jnp.asarray(x.T, dtype), axis=0), got, rtol=rtol)  # summed in another order
    grad = jax.grad(lambda x: jrbm.exact.softplus_sum(x).sum())(jnp.asarray(x, jnp.float64))
    np.testing.assert_allclose(grad, np.exp(-np.logaddexp(0.0, -x)), rtol=1e-12, atol=1e-300)  # sigmoid, also at x = 0


@pytest.mark.parametrize("dtype, rtol", [(jnp.float64, 1e-15), (jnp.float32, 1e-6)])
def test_elementwise_softplus_matches_logaddexp_and_its_derivative_is_sigmoid(dtype, rtol):
    from jrbm.layers.base import softplus

    x = np.concatenate([[0.0, -np.inf, np.inf, -800.0, 800.0], np.random.default_rng(0).normal(size=200) * 40])
    got = softplus(jnp.asarray(x, dtype))
    assert got.dtype == dtype
    want = np.logaddexp(0.0, x.astype(dtype)).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=np.finfo(dtype).tiny)
    finite = x[np.isfinite(x)]
    grad = jax.vmap(jax.grad(softplus))(jnp.asarray(finite, jnp.float64))
    np.testing.assert_allclose(grad, np.exp(-np.logaddexp(0.0, -finite)), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("chunk_size", [2, 1 << 16])
def test_exact_grad_stays_normalised_at_large_free_energies(chunk_size):
    """log Z near 6e7 (Spin-dReLU, fields of 1e4): the model term's weights are normalised by their own sum,
    so exact.grad agrees with jax.grad of the log-likelihood to float64 rounding (4e-13 of the gradient's
    scale). Normalised by log_partition, which sums the same terms in another order, it missed by 2e-5."""
    from jrbm.layers import Spin, dReLU

    rng = np.random.default_rng(0)
    u = lambda *shape: jnp.asarray(rng.uniform(-1, 1, shape), jnp.float64)  # noqa: E731
    params = jrbm.RBM(Spin(1e4 * u(4)), dReLU(1e4 * u(3), 1e4 * u(3), jnp.zeros(3), jnp.zeros(3)), u(4, 3))
    v = jnp.asarray(2.0 * rng.integers(0, 2, (5, 4)) - 1)
    assert float(jrbm.exact.log_partition(params)) > 1e7
    got = jrbm.exact.grad(params, v, chunk_size=chunk_size)
    want = jax.grad(lambda p: -jrbm.exact.log_likelihood(p, v).mean())(params)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-10 * max(1.0, np.abs(w).max()))


@pytest.mark.parametrize("chunk_size", [1, 64, 4096, 1 << 16])
def test_sixteen_unit_float32_log_partition_of_a_stack_of_models(chunk_size):
    """The split enumeration of 2^16 hidden states in float32 under vmap (the bars-and-stripes size) against float64 numpy."""
    models = [random_bernoulli(30 + i, 16, 16, scale=s, dtype=jnp.float32) for i, s in enumerate((0.01, 1.0, 3.0, 10.0))]
    stack = jax.tree.map(lambda *x: jnp.stack(x), *models)
    got = jax.jit(jax.vmap(lambda p: jrbm.exact.log_partition(p, chunk_size=chunk_size)))(stack)
    for g, p in zip(np.asarray(got), models):
        W, b, c = (np.asarray(x, np.float64) for x in p)
        H = all_binary(16)
        log_w = H @ c + np.logaddexp(0.0, b + H @ W.T).sum(1)
        ref = log_w.max() + np.log(np.exp(log_w - log_w.max()).sum())
        assert np.isclose(g, ref, rtol=1e-6), (g, ref)


@pytest.mark.parametrize("chunk_size", [1, 2, 8, 4096])
def test_split_enumeration_of_an_odd_number_of_visible_units(chunk_size):
    """The visible layer (7 units < 9 hidden) with high and low halves of unequal widths."""
    params = random_bernoulli(18, 7, 9, scale=1.5)
    assert jrbm.exact.enumerated_layer(params) == "visible"
    assert np.isclose(jrbm.exact.log_partition(params, chunk_size=chunk_size), brute_log_z_bb(params), rtol=1e-12)


def test_marginal_visible_in_blocks_matches_the_likelihoods_and_refuses_like_log_partition():
    """Found by a review: marginal_visible built every state and free energy at once (1.2 GB for 22 bits).
    Block by block now: equal to exp(log_likelihood) of every state for any block size, and refused by plan's
    message (the state count, not the unit count) when too wide; visible_states is guarded the same way."""
    from jrbm import layers

    key = jax.random.key(0)
    for vis, hid in ((layers.Bernoulli.init(7), layers.Bernoulli.init(3)), (layers.Potts.init(4, 3), layers.ReLU.init(2))):
        params = jrbm.init(key, vis, hid, weight_std=1.0)
        reference = np.exp(np.asarray(jrbm.exact.log_likelihood(params, jrbm.exact.visible_states(params))))
        for chunk_size in (1, 5, 4096):
            np.testing.assert_allclose(jrbm.exact.marginal_visible(params, chunk_size=chunk_size), reference, rtol=1e-10)
    potts = jrbm.init(key, layers.Potts.init(16, 3), layers.Bernoulli.init(30))
    for fn in (jrbm.exact.marginal_visible, jrbm.exact.visible_states):
        with pytest.raises(ValueError, match=r"params: exact enumeration of the visible layer needs 3\^16 = 2\^25.36 states"):
            fn(potts)
    with pytest.raises(TypeError, match="params: visible_states needs a discrete visible layer, got Gaussian"):
        jrbm.exact.visible_states(random_gaussian(0, 3, 2))


def test_enumerations_of_two_to_the_thirty_one_states_and_more_trace_without_x64():
    """Found by a review: with x64 off, a model of 2^31 states or more (max_bits allows 32) failed with an
    OverflowError where the last block's mask compared with the state count as int32. Traced only (no run)."""
    from jrbm import layers

    key = jax.random.key(0)
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)  # the global flag: jax before 0.8 has no jax.enable_x64
    try:
        wide = jrbm.init(key, layers.Bernoulli.init(31), layers.Bernoulli.init(32))
        assert jax.eval_shape(lambda p: jrbm.exact.grad(p, jnp.zeros((2, 31)), max_bits=31), wide).W.shape == (31, 32)
        potts = jrbm.init(key, layers.Potts.init(20, 3), layers.Bernoulli.init(33))  # 3^20 states: a last block that overruns
        assert jax.eval_shape(lambda p: jrbm.exact.log_partition(p, max_bits=32), potts).shape == ()
    finally:
        jax.config.update("jax_enable_x64", x64)


def test_grad_enumerates_the_layer_it_is_asked_to():
    params = random_bernoulli(3, 5, 4)
    v = np.random.default_rng(0).integers(0, 2, (6, 5)).astype(np.float64)
    reference = jax.grad(lambda p: -jnp.mean(jrbm.exact.log_likelihood(p, v)))(params)
    for layer in ("visible", "hidden"):
        for a, b in zip(jax.tree.leaves(jrbm.exact.grad(params, v, layer=layer)), jax.tree.leaves(reference)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
