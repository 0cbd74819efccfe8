"""A conformance kit: certify a layer against independent references.

:func:`check_layer` takes a layer with small parameters (a few units, float64
leaves) and checks everything jrbm relies on, pairing it with a small
Bernoulli layer on the other side:

1. its ``cgf`` equals the log of the sum over its states (enumeration, for
   discrete units) or of the integral (1-D Gauss-Legendre quadrature per
   unit, for continuous ones), and is additive over units;
2. its conditional mean equals ``jax.grad`` of ``cgf``, and its sampler's
   mean and variance match the exact ones within a bound set from the sample
   size (6 standard errors, computed from the exact second and fourth moments);
3. the free energies equal ``-log sum exp(-energy)`` over the Bernoulli layer,
   with the layer visible and hidden;
4. the conditionals equal the joint normalised by enumeration;
5. the exact log-likelihood's gradient (:func:`jrbm.exact.grad`) equals
   ``jax.grad`` of :func:`jrbm.exact.log_likelihood`;
6. one Gibbs sweep leaves the exact ``p(v)`` invariant (a chi-square test of
   the sweep's output against ``p(v)``, at a false-alarm rate of 1e-6);
7. the annealing path is the annealed density (the intermediate's free
   energy minus ``annealed_free_energy`` is one constant over ``v``), and AIS
   lands within 6 of its own standard errors (plus 0.02 nats) of the exact
   ``log Z``.

A layer written in the user's own code passes the same checks as jrbm's own:
jrbm needs no change to use it.

Example:
  >>> import jax, jax.numpy as jnp, jrbm, jrbm.testing
  >>> from jrbm.layers import Bernoulli
  >>> jax.config.update("jax_enable_x64", True)
  >>> report = jrbm.testing.check_layer(Bernoulli(jnp.array([0.5, -1.0, 0.2])), jax.random.key(0))
  >>> sorted(report)[:3]
  ['ais', 'cgf', 'conditionals']
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jrbm import ais, exact, model
from jrbm.layers import Bernoulli, base as layer_base
from jrbm.params import RBM
from jrbm.sampling import gibbs_step

QUADRATURE_PANELS = 400
"""Panels of 32-point Gauss-Legendre quadrature on each side of 0, for continuous units."""

SAMPLE_SIZE = 40000
"""Draws for the sampler's moments and the Gibbs-invariance test."""


class ConformanceError(AssertionError):
    """A layer failed one of the checks of :func:`check_layer`."""


def _fail(check: str, message: str):
    raise ConformanceError(f"{check}: {message}")


def _close(check: str, got, want, rtol: float, atol: float, what: str):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.max(np.abs(got - want)) if got.shape == want.shape else "shape mismatch"
        _fail(check, f"{what}: got {got}, expected {want} (max error {err}; rtol {rtol}, atol {atol})")


def _unit(layer, i):
    """The one-unit layer of unit ``i`` (every field's leading axis is the unit axis)."""
    return jax.tree.map(lambda x: x[i : i + 1], layer)


def _support(layer) -> tuple[float, float]:
    """``(-inf, inf)``, or ``(0, inf)`` when the layer refuses a negative state (probed with ``check_data``)."""
    probe = -np.ones((1,) + tuple(layer.shape))
    try:
        layer.check_data("probe", probe)
    except ValueError:
        return 0.0, math.inf
    return -math.inf, math.inf


def _unit_distribution(layer, inputs):
    """``(values, log_weights)`` of one unit's states given ``inputs``: enumeration, or a quadrature grid.

    ``values`` has shape ``(K, *shape)`` (the unit's states embedded in a
    one-unit layer); the weights include the trapezoid rule's spacing.
    """
    if layer_base.is_discrete(layer):
        values = jnp.asarray(layer.unit_states(), inputs.dtype)[:, None]  # (k, 1, *unit shape)
        logw = -layer.energy(values) + jnp.sum((layer.statistic(values) * inputs).reshape(values.shape[0], -1), axis=-1)
        return values, logw
    lo, hi = _support(layer)
    mean = float(np.asarray(layer.mean(inputs)).reshape(-1)[0])
    spread = 50.0 * max(1.0, abs(mean))
    a, b = max(lo, mean - spread), min(hi, mean + spread)
    nodes, weights = _gauss_legendre(a, b)
    values = jnp.asarray(nodes, inputs.dtype)[:, None]
    logw = -layer.energy(values) + jnp.sum(layer.statistic(values) * inputs, axis=-1) + jnp.log(jnp.asarray(weights, inputs.dtype))
    return values, logw


def _gauss_legendre(a: float, b: float):
    """Composite Gauss-Legendre nodes and weights on ``[a, b]``, with a panel edge at 0 (where a density may
    have a kink or end), :data:`QUADRATURE_PANELS` panels of 32 points on each side."""
    x, w = np.polynomial.legendre.leggauss(32)
    edges = [a, b] if not a < 0 < b else [a, 0.0, b]
    nodes, weights = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        grid = np.linspace(lo, hi, QUADRATURE_PANELS + 1)
        half = np.diff(grid)[:, None] / 2
        nodes.append(((grid[:-1, None] + grid[1:, None]) / 2 + half * x).reshape(-1))
        weights.append((half * w).reshape(-1))
    return np.concatenate(nodes), np.concatenate(weights)


def _moments(values, logw):
    p = np.exp(np.asarray(logw) - np.max(np.asarray(logw)))
    p /= p.sum()
    x = np.asarray(values, np.float64).reshape(values.shape[0], -1)
    m1 = p @ x
    var = p @ (x - m1) ** 2
    m4 = p @ (x - m1) ** 4
    return m1, var, m4


def _check_cgf_mean_sampler(layer, key, report):
    dtype = jax.tree.leaves(layer)[0].dtype
    n = layer.shape[0]
    inputs = jax.random.normal(key, layer.shape, dtype)
    total = float(layer.cgf(inputs))
    per_unit = []
    exact_mean, exact_var, exact_m4 = [], [], []
    for i in range(n):
        unit = _unit(layer, i)
        unit_inputs = inputs[i : i + 1]
        values, logw = _unit_distribution(unit, unit_inputs)
        reference = float(jax.nn.logsumexp(logw))
        _close("cgf", unit.cgf(unit_inputs), reference, 1e-7, 1e-7, f"unit {i}: cgf against the log of the sum/integral")
        per_unit.append(reference)
        m1, var, m4 = _moments(values, logw)
        exact_mean.append(m1)
        exact_var.append(var)
        exact_m4.append(m4)
    _close("cgf", total, sum(per_unit), 1e-9, 1e-9, "cgf of the layer against the sum over its units")
    report["cgf"] = total

    grad = jax.grad(lambda i: jnp.sum(layer.cgf(i)))(inputs)
    _close("mean", layer.statistic(layer.mean(inputs)), grad, 1e-6, 1e-8, "statistic(mean(I)) against jax.grad of cgf")
    mean = np.asarray(layer.mean(inputs), np.float64).reshape(n, -1)
    _close("mean", mean, np.stack(exact_mean), 1e-6, 1e-7, "mean(I) against the enumerated/quadrature mean")

    draws = layer_base.sample(layer, jax.random.fold_in(key, 1), jnp.broadcast_to(inputs, (SAMPLE_SIZE,) + layer.shape))
    draws = np.asarray(draws, np.float64).reshape(SAMPLE_SIZE, n, -1)
    if draws.shape[0] != SAMPLE_SIZE or not np.all(np.isfinite(draws)):
        _fail("sampler", "draws are not finite or not of shape (N, *shape)")
    var, m4 = np.stack(exact_var), np.stack(exact_m4)
    se_mean = np.sqrt(var / SAMPLE_SIZE)
    se_var = np.sqrt(np.maximum(m4 - var**2, 0) / SAMPLE_SIZE)
    bad = np.abs(draws.mean(0) - mean) > 6 * se_mean + 1e-12
    if bad.any():
        _fail("sampler", f"sample means {draws.mean(0)} differ from {mean} by more than 6 standard errors {se_mean}")
    bad = np.abs(draws.var(0) - var) > 6 * se_var + 1e-12
    if bad.any():
        _fail("sampler", f"sample variances {draws.var(0)} differ from {var} by more than 6 standard errors {se_var}")
    report["sampler"] = {"n": SAMPLE_SIZE, "max_mean_error_in_se": float(np.max(np.abs(draws.mean(0) - mean) / np.maximum(se_mean, 1e-300)))}


def _pairings(layer, key, n_bernoulli):
    dtype = jax.tree.leaves(layer)[0].dtype
    k1, k2, k3 = jax.random.split(key, 3)
    other = Bernoulli(0.5 * jax.random.normal(k1, (n_bernoulli,), dtype))
    w_vis = 0.5 * jax.random.normal(k2, layer.shape + other.shape, dtype)
    w_hid = 0.5 * jax.random.normal(k3, other.shape + layer.shape, dtype)
    return RBM(layer, other, w_vis), RBM(other, layer, w_hid)


def _bernoulli_states(n, dtype):
    return layer_base.enumerate_states(Bernoulli(jnp.zeros((n,), dtype)), 0, 2**n, dtype)


def _check_free_energies_and_conditionals(as_visible, as_hidden, key, report):
    dtype = as_visible.W.dtype
    layer = as_visible.visible
    n_b = as_visible.hidden.shape[0]
    H = _bernoulli_states(n_b, dtype)
    v = layer_base.sample(layer, key, jnp.zeros((5,) + layer.shape, dtype))
    joint = -jax.vmap(lambda x: model.energy(as_visible, x, H))(v)  # (5, 2^n)
    _close("free energy", model.free_energy(as_visible, v), -jax.nn.logsumexp(joint, axis=1), 1e-9, 1e-9,
           "free_energy with the layer visible against -log sum_h exp(-energy)")
    post = jax.nn.softmax(joint, axis=1)
    _close("conditionals", model.p_h_given_v(as_visible, v), post @ H, 1e-9, 1e-12,
           "p_h_given_v (Bernoulli hidden) against the joint normalised by enumeration")
    h = as_hidden.hidden
    x = layer_base.sample(h, jax.random.fold_in(key, 1), jnp.zeros((5,) + h.shape, dtype))
    V = _bernoulli_states(n_b, dtype)
    joint = -jax.vmap(lambda s: model.energy(as_hidden, V, s))(x)  # (5, 2^n)
    _close("free energy", model.hidden_free_energy(as_hidden, x), -jax.nn.logsumexp(joint, axis=1), 1e-9, 1e-9,
           "hidden_free_energy with the layer hidden against -log sum_v exp(-energy)")
    _close("conditionals", model.p_v_given_h(as_hidden, x), jax.nn.softmax(joint, axis=1) @ V, 1e-9, 1e-12,
           "p_v_given_h (Bernoulli visible) against the joint normalised by enumeration")
    report["free_energy"] = report["conditionals"] = "ok"


def _check_exact_grad(as_visible, key, report):
    v = layer_base.sample(as_visible.visible, key, jnp.zeros((7,) + as_visible.visible.shape, as_visible.W.dtype))
    hand = exact.grad(as_visible, v)
    auto = jax.grad(lambda p: -jnp.mean(exact.log_likelihood(p, v)))(as_visible)
    for name, a, b in zip(("visible", "hidden", "W"), hand, auto):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            _close("exact gradient", x, y, 1e-7, 1e-9, f"jrbm.exact.grad ({name}) against jax.grad of exact.log_likelihood")
    report["exact_grad"] = "ok"


def _chi2_quantile(dof: int, tail: float) -> float:
    """Wilson-Hilferty approximation of the upper ``tail`` quantile of chi-square with ``dof`` degrees of freedom."""
    z = math.sqrt(2) * _erfinv(1 - 2 * tail)
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def _erfinv(y: float) -> float:
    x = 0.0
    for _ in range(100):  # Newton on erf(x) = y
        x -= (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def _check_gibbs_invariance(as_hidden, key, report):
    """Bernoulli visible, the layer hidden: start at exact draws of p(v), one sweep, chi-square against p(v)."""
    dtype = as_hidden.W.dtype
    p = np.asarray(exact.marginal_visible(as_hidden), np.float64)
    V = exact.visible_states(as_hidden)
    k1, k2 = jax.random.split(key)
    idx = jax.random.choice(k1, p.shape[0], (SAMPLE_SIZE,), p=jnp.asarray(p, dtype))
    v1 = np.asarray(gibbs_step(k2, as_hidden, V[idx]), np.float64)
    codes = (v1 @ (2 ** np.arange(v1.shape[1]))).astype(int)
    counts = np.bincount(codes, minlength=p.shape[0])
    expected = SAMPLE_SIZE * p
    stat = float(np.sum((counts - expected) ** 2 / expected))
    limit = _chi2_quantile(p.shape[0] - 1, 1e-6)
    if stat > limit:
        _fail("Gibbs invariance", f"chi-square {stat:.1f} of one sweep's states against p(v) exceeds {limit:.1f} (false-alarm rate 1e-6)")
    report["gibbs_invariance"] = {"chi2": stat, "limit": limit}


def _check_annealing_and_ais(as_visible, key, report):
    dtype = as_visible.W.dtype
    layer = as_visible.visible
    k1, k2, k3 = jax.random.split(key, 3)
    data = layer_base.sample(layer, k1, jnp.full((200,) + layer.shape, 0.7, dtype))
    base = model.base_rate(as_visible, data)
    v = layer_base.sample(layer, k2, jnp.zeros((6,) + layer.shape, dtype))
    for beta in (0.0, 0.3, 1.0):
        mid = model.interpolate(base, as_visible, beta)
        offset = np.asarray(model.free_energy(mid, v) - model.annealed_free_energy(base, as_visible, beta, v))
        if np.ptp(offset) > 1e-8 * max(1.0, np.max(np.abs(offset))):
            _fail("annealing path", f"at beta={beta} the intermediate's free energy minus annealed_free_energy varies over v: {offset}")
    log_z = float(exact.log_partition(as_visible))
    res = ais.log_partition(k3, as_visible, data=data, betas=1000, n_runs=200)
    err = abs(float(res.log_z) - log_z)
    if not err <= 6 * float(res.log_z_std) + 0.02:
        _fail("AIS", f"estimate {float(res.log_z):.5f} +- {float(res.log_z_std):.5f} is {err:.4f} from the exact log Z {log_z:.5f}")
    report["ais"] = {"log_z": float(res.log_z), "log_z_std": float(res.log_z_std), "exact": log_z}


def check_layer(layer, key: jax.Array, *, n_bernoulli: int = 3, max_states: int = 4096) -> dict:
    """Certifies ``layer`` against enumeration, quadrature, ``jax.grad`` and sampling bounds; returns a report.

    Args:
      layer: a layer (:class:`jrbm.layers.Layer`) with small float64
        parameters: a few units, and at most ``max_states`` states if discrete.
      key: a ``jax.random`` key for the random inputs, weights and draws.
      n_bernoulli: units of the Bernoulli layer it is paired with (``2^n`` states).
      max_states: the largest discrete layer it will enumerate.

    Returns:
      A dict of what was measured, one entry per check.

    Raises:
      ConformanceError: naming the check, the quantity, and what was expected.
      TypeError, ValueError: the layer is not a float64 layer of a size the kit can enumerate.
    """
    leaves = jax.tree.leaves(layer)
    if not leaves or leaves[0].dtype != jnp.float64:
        raise TypeError("layer: expected float64 fields (enable jax_enable_x64): the kit's tolerances are float64 ones")
    layer.check("layer")
    if layer_base.is_discrete(layer) and layer.unit_states().shape[0] ** layer.shape[0] > max_states:
        raise ValueError(f"layer: expected at most {max_states} states for the kit to enumerate, got more; use fewer units")
    report: dict = {}
    keys = jax.random.split(key, 6)
    _check_cgf_mean_sampler(layer, keys[0], report)
    as_visible, as_hidden = _pairings(layer, keys[1], n_bernoulli)
    as_visible.check("params")
    _check_free_energies_and_conditionals(as_visible, as_hidden, keys[2], report)
    _check_exact_grad(as_visible, keys[3], report)
    _check_gibbs_invariance(as_hidden, keys[4], report)
    _check_annealing_and_ais(as_visible, keys[5], report)
    return report


__all__ = ["ConformanceError", "check_layer"]
