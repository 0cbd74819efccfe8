"""A conformance kit: certify a layer against independent references.

:func:`check_layer` takes a layer with small parameters (a few units, float64
leaves) and checks everything jrbm relies on, pairing it with a small
Bernoulli layer on the other side:

1. its ``cgf`` equals the log of the sum over its states (enumeration, for
   discrete units) or of the integral (1-D Gauss-Legendre quadrature per
   unit, for continuous ones, over the interval of states that its
   ``check_data`` accepts: the real line, a half-line or a bounded
   interval), and is additive over units;
2. its conditional mean equals ``jax.grad`` of ``cgf``; its sampler's draws
   are finite states of the inputs' shape and dtype that ``check_data``
   accepts, their mean and variance match the exact ones within a bound set
   from the sample size (6 standard errors, computed from the exact second and
   fourth moments), and their distribution is the exact one: a chi-square test
   over a discrete unit's states, or over 40 cells of equal probability of a
   continuous unit (from the quadrature); draws from two independent keys are
   uncorrelated (a sampler that ignores its ``noise`` fails), each test at a
   false-alarm rate of 1e-6;
3. the free energies equal ``-log sum exp(-energy)`` over the Bernoulli layer,
   with the layer visible, and over the layer (enumeration or quadrature per
   unit), with the layer hidden;
4. the conditionals equal the joint normalised by enumeration, and the
   layer's conditional means reached through the model equal the enumerated
   or quadrature means;
5. the exact log-likelihood's gradient (:func:`jrbm.exact.grad`) equals
   ``jax.grad`` of :func:`jrbm.exact.log_likelihood`;
6. one Gibbs sweep leaves the exact ``p(v)`` invariant with the layer hidden,
   and, for a discrete layer, three sweeps do with the layer visible (a
   chi-square test of the states reached against ``p(v)``, at a false-alarm
   rate of 1e-6);
7. ``shifted`` adds a field to every unit, and ``affine_bits`` (where the
   layer has it) describes its states and gives the same ``log Z`` by meeting
   in the middle as a double sum;
8. with the layer visible and with it hidden, the annealing path is the
   annealed density (the intermediate's free energy minus
   ``annealed_free_energy`` is one constant over ``v``, and
   ``annealed_log_ratio`` is the difference of annealed free energies), and
   AIS, with a base model made from exact draws of ``p(v)``, lands within 6
   of its own standard errors (plus 0.02 nats) of the exact ``log Z``;
9. cast to float32, jrbm's default dtype, the layer's ``cgf``, its gradient,
   mean, draws, and a pairing's free energy and its gradient are finite and
   agree with float64 to :data:`FLOAT32_RTOL` (a formula that underflows or
   cancels in float32 fails, though float64 hides it).

Before any check, the layer must be an instance with every member of
:class:`jrbm.layers.Layer` and floating-array fields
(:func:`jrbm.layers.base.check_interface`), and its ``check_data`` must
refuse states with a ``ValueError``.

What passing does not show: the kit tests the layer at the parameters it is
given, so give it parameters that make the units differ from one another and
from zero (at ``theta = 0`` a sampler that ignores ``theta`` draws the right
states), and of the optional hooks (see :class:`jrbm.layers.Layer`) it tests
``affine_bits`` and ``annealed_cgf_difference`` but not
``check_training_data``.

A layer written in the user's own code passes the same checks as jrbm's own:
jrbm needs no change to use it.

Example:
  >>> import jax, jax.numpy as jnp, jrbm, jrbm.testing
  >>> from jrbm.layers import Bernoulli
  >>> jax.config.update("jax_enable_x64", True)
  >>> report = jrbm.testing.check_layer(jax.random.key(0), Bernoulli(jnp.array([0.5, -1.0, 0.2])))
  >>> report["gibbs_invariance"]["chi2"] < report["gibbs_invariance"]["limit"]
  True
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jrbm import _checks, ais, exact, model
from jrbm.layers import Bernoulli
from jrbm.layers import base as layer_base
from jrbm.params import RBM
from jrbm.sampling import gibbs_chain

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


def _accepts(layer, value: float) -> bool:
    """Whether ``check_data`` takes every unit of ``layer`` at ``value`` (it must refuse with a ``ValueError``)."""
    try:
        layer.check_data("probe", np.full((1,) + tuple(layer.shape), value))
    except ValueError:
        return False
    except Exception as e:
        _fail("check_data", f"refusing the state {value} it raised {type(e).__name__}: {e}; expected a ValueError, "
              "which is how jrbm's public functions report data outside a layer's states")
    return True


def _bound(layer, inside: float, direction: float) -> float:
    """The end of the layer's support beyond ``inside`` (a state it takes) in ``direction`` (+1 or -1), found by
    probing ``check_data``: infinite when it takes ``inside + direction * 1e8``; else bisected to about 1e-13
    (relative), and put on the nearest integer when that is taken and within 1e-9 (0 for ReLU units, 1 for a unit
    on ``[0, 1]``)."""
    far = inside + direction * 1e8
    if _accepts(layer, far):
        return direction * math.inf
    ok, bad = inside, far
    while abs(bad - ok) > 1e-13 * max(1.0, abs(ok)):
        mid = 0.5 * (ok + bad)
        if mid in (ok, bad):
            break
        ok, bad = (mid, bad) if _accepts(layer, mid) else (ok, mid)
    near = float(round(ok))
    return near if abs(near - ok) < 1e-9 and _accepts(layer, near) else ok


def _support(layer, inside: float) -> tuple[float, float]:
    """``(lo, hi)``: the interval of states of a continuous unit, probed with ``check_data`` from the state ``inside``
    (``(-inf, inf)`` for Gaussian units, ``(0, inf)`` for ReLU units, ``(0, 1)`` for a unit on the unit interval)."""
    return _bound(layer, inside, -1.0), _bound(layer, inside, 1.0)


def _unit_distribution(layer, inputs):
    """``(values, log_weights)`` of one unit's states given ``inputs``: enumeration, or a quadrature grid.

    ``values`` has shape ``(K, *shape)`` (the unit's states embedded in a
    one-unit layer); the weights include the trapezoid rule's spacing.
    """
    if layer_base.is_discrete(layer):
        values = jnp.asarray(layer.unit_states(), inputs.dtype)[:, None]  # (k, 1, *unit shape)
        logw = -layer.energy(values) + jnp.sum((layer.statistic(values) * inputs).reshape(values.shape[0], -1), axis=-1)
        return values, logw
    values, logw, _ = _quadrature(layer, inputs)
    return values, logw


def _quadrature(layer, inputs):
    """``(values, log_weights, edges)`` of one continuous unit: the quadrature nodes (32 per panel, panel by panel
    in increasing order) over the interval that holds its mass, and the panels' edges."""
    mean = float(np.asarray(layer.mean(inputs)).reshape(-1)[0])
    lo, hi = _support(layer, mean)
    spread = 50.0 * max(1.0, abs(mean))
    a, b = max(lo, mean - spread), min(hi, mean + spread)
    nodes, weights, edges = _gauss_legendre(a, b)
    values = jnp.asarray(nodes, inputs.dtype)[:, None]
    logw = -layer.energy(values) + jnp.sum(layer.statistic(values) * inputs, axis=-1) + jnp.log(jnp.asarray(weights, inputs.dtype))
    return values, logw, edges


def _gauss_legendre(a: float, b: float):
    """Composite Gauss-Legendre nodes, weights and panel edges on ``[a, b]``, with a panel edge at 0 (where a
    density may have a kink or end), :data:`QUADRATURE_PANELS` panels of 32 points on each side."""
    x, w = np.polynomial.legendre.leggauss(32)
    sides = [a, b] if not a < 0 < b else [a, 0.0, b]
    nodes, weights, edges = [], [], [np.array([a])]
    for lo, hi in zip(sides[:-1], sides[1:]):
        grid = np.linspace(lo, hi, QUADRATURE_PANELS + 1)
        half = np.diff(grid)[:, None] / 2
        nodes.append(((grid[:-1, None] + grid[1:, None]) / 2 + half * x).reshape(-1))
        weights.append((half * w).reshape(-1))
        edges.append(grid[1:])
    return np.concatenate(nodes), np.concatenate(weights), np.concatenate(edges)


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
    per_unit, units = [], []
    exact_mean, exact_var, exact_m4 = [], [], []
    for i in range(n):
        unit = _unit(layer, i)
        unit_inputs = inputs[i : i + 1]
        values, logw = _unit_distribution(unit, unit_inputs)
        units.append((values, logw))
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

    batch = jnp.broadcast_to(inputs, (SAMPLE_SIZE,) + layer.shape)
    raw = layer_base.sample(jax.random.fold_in(key, 1), layer, batch)
    _check_draws(layer, raw, batch)
    draws = np.asarray(raw, np.float64).reshape(SAMPLE_SIZE, n, -1)
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
    report["sampler"]["distribution"] = _check_sampler_distribution(layer, inputs, raw, units)
    again = layer_base.sample(jax.random.fold_in(key, 2), layer, batch)
    report["sampler"]["max_key_correlation_z"] = _check_noise_used(raw, again)


def _check_draws(layer, draws, inputs):
    """Draws of the inputs' shape and dtype, finite, and states that the layer's ``check_data`` accepts."""
    if draws.shape != inputs.shape or draws.dtype != inputs.dtype:
        _fail("sampler", f"draws of shape {draws.shape} and dtype {draws.dtype}, expected the inputs' {inputs.shape} and {inputs.dtype}")
    if not np.all(np.isfinite(np.asarray(draws))):
        _fail("sampler", "draws are not finite")
    try:
        layer.check_data("draws", draws)
    except ValueError as e:
        _fail("sampler", f"it drew a state that the layer's check_data refuses: {e}")


def _normal_quantile(tail: float) -> float:
    """The upper ``tail`` quantile of the standard normal."""
    return math.sqrt(2) * _erfinv(1 - 2 * tail)


CHI2_MIN_EXPECTED = 50
"""Cells expected fewer times are pooled: at 5 (the textbook rule) Pearson's statistic exceeds its 1e-6 quantile
16-20 times as often as it should; at 50, at most 1.2 times."""


def _chi2_statistic(counts, p):
    """``(statistic, dof)`` of Pearson's test of ``counts`` against probabilities ``p``, cells expected fewer than
    :data:`CHI2_MIN_EXPECTED` times pooled into one (and that one into the smallest other while still below)."""
    counts, expected = np.asarray(counts, np.float64), counts.sum() * np.asarray(p, np.float64)
    rare = expected < CHI2_MIN_EXPECTED
    if rare.any():
        counts = np.append(counts[~rare], counts[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
        if expected[-1] < CHI2_MIN_EXPECTED and expected.size > 1:
            j = int(np.argmin(expected[:-1]))
            counts[j] += counts[-1]
            expected[j] += expected[-1]
            counts, expected = counts[:-1], expected[:-1]
    return float(np.sum((counts - expected) ** 2 / expected)), expected.size - 1


def _chi2_test(check: str, counts, p, tail: float, where: str, what: str) -> dict:
    """Pearson's test of ``counts`` against ``p`` (:func:`_chi2_statistic`) at a false-alarm rate of ``tail``:
    fails ``check`` naming ``where`` and ``what``; skipped when one cell holds (nearly) all the mass."""
    stat, dof = _chi2_statistic(counts, p)
    if dof < 1:
        return {"chi2": stat, "dof": 0, "skipped": "one cell holds all the mass"}
    limit = _chi2_quantile(dof, tail)
    if stat > limit:
        _fail(check, f"{where}chi-square {stat:.1f} ({dof} degrees of freedom) of {what} exceeds {limit:.1f} (false-alarm rate {tail:.2g})")
    return {"chi2": stat, "dof": dof, "limit": limit, "ratio": stat / limit}


CONTINUOUS_BINS = 40
"""Equal-probability cells (to a quadrature panel) of a continuous unit's chi-square test of its draws."""


def _check_sampler_distribution(layer, inputs, draws, units) -> dict:
    """Each unit's draws against its exact distribution given ``inputs``, at a false-alarm rate of 1e-6 in all.

    Pearson's chi-square of the draws' counts against the exact probabilities: over a discrete unit's states
    (enumerated), or over :data:`CONTINUOUS_BINS` cells of a continuous unit (cut at the quadrature's panel
    edges nearest its quantiles, so that each cell's probability is a sum of whole panels' quadratures; the
    first and last cells reach out to the support's ends). Counts are bounded, so no tail of the unit's
    distribution can break the test's false-alarm rate, as an empirical moment generating function's can. A
    distribution with the right mean and variance and a wrong shape fails it.
    """
    n = layer.shape[0]
    if layer_base.is_discrete(layer):
        worst = 0.0
        for i, (values, logw) in enumerate(units):
            states = np.asarray(values, np.float64).reshape(values.shape[0], -1)
            x = np.asarray(draws[:, i], np.float64).reshape(draws.shape[0], -1)
            match = np.all(x[:, None, :] == states[None], axis=-1)  # (N, k)
            if not match.any(axis=1).all():
                _fail("sampler", f"unit {i}: a draw {x[~match.any(axis=1)][0]} is none of the unit's states {states.tolist()}")
            counts = np.bincount(np.argmax(match, axis=1), minlength=states.shape[0])
            result = _chi2_test("sampler", counts, np.asarray(jax.nn.softmax(logw), np.float64), 1e-6 / n,
                                f"unit {i}: ", "the draws' counts over the unit's states against the enumerated probabilities")
            worst = max(worst, result.get("ratio", 0.0))
        return {"test": "chi-square", "max_statistic_over_limit": worst}
    worst = 0.0
    for i in range(n):
        values, logw, edges = _quadrature(_unit(layer, i), inputs[i : i + 1])
        p = np.asarray(jax.nn.softmax(logw), np.float64)
        cumulative = np.concatenate([[0.0], np.cumsum(p.reshape(-1, 32).sum(axis=1))])  # at the panel edges
        cuts = np.unique(np.searchsorted(cumulative, np.arange(1, CONTINUOUS_BINS) / CONTINUOUS_BINS))
        cuts = cuts[(cuts > 0) & (cuts < len(edges) - 1)]
        probs = np.diff(np.concatenate([[0.0], cumulative[cuts], [1.0]]))
        x = np.asarray(draws[:, i], np.float64).reshape(-1)
        counts = np.bincount(np.searchsorted(edges[cuts], x, side="right"), minlength=len(probs))
        result = _chi2_test("sampler", counts, probs, 1e-6 / n,
                            f"unit {i}: ", f"the draws' counts in {len(probs)} cells of equal probability against the quadrature's probabilities")
        worst = max(worst, result.get("ratio", 0.0))
    return {"test": "chi-square over cells", "max_statistic_over_limit": worst}


def _check_noise_used(a, b) -> float:
    """Draws from two independent keys are uncorrelated, unit by unit (a sampler that ignores its ``noise`` draws the
    same states from every key): ``sqrt(N) |r|`` within a normal bound at a false-alarm rate of 1e-6."""
    n = a.shape[0]
    weights = np.arange(1.0, 1.0 + math.prod(a.shape[2:]))  # distinguishes the states of a unit of several entries
    x = np.asarray(a, np.float64).reshape(n, a.shape[1], -1) @ weights
    y = np.asarray(b, np.float64).reshape(n, b.shape[1], -1) @ weights
    limit = _normal_quantile(1e-6 / (2 * a.shape[1]))
    worst = 0.0
    for i in range(a.shape[1]):
        if np.std(x[:, i]) == 0 or np.std(y[:, i]) == 0:
            continue
        z = math.sqrt(n) * abs(float(np.corrcoef(x[:, i], y[:, i])[0, 1]))
        if z > limit:
            _fail("sampler", f"unit {i}: draws from two independent keys are correlated ({z:.1f} standard errors, limit {limit:.1f}): "
                  "the sampler does not draw from the noise it is given")
        worst = max(worst, z)
    return worst


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
    v = layer_base.sample(key, layer, jnp.zeros((5,) + layer.shape, dtype))
    joint = -jax.vmap(lambda x: model.energy(as_visible, x, H))(v)  # (5, 2^n)
    _close("free energy", model.free_energy(as_visible, v), -jax.nn.logsumexp(joint, axis=1), 1e-9, 1e-9,
           "free_energy with the layer visible against -log sum_h exp(-energy)")
    post = jax.nn.softmax(joint, axis=1)
    _close("conditionals", model.p_h_given_v(as_visible, v), post @ H, 1e-9, 1e-12,
           "p_h_given_v (Bernoulli hidden) against the joint normalised by enumeration")
    h = as_hidden.hidden
    x = layer_base.sample(jax.random.fold_in(key, 1), h, jnp.zeros((5,) + h.shape, dtype))
    V = _bernoulli_states(n_b, dtype)
    joint = -jax.vmap(lambda s: model.energy(as_hidden, V, s))(x)  # (5, 2^n)
    _close("free energy", model.hidden_free_energy(as_hidden, x), -jax.nn.logsumexp(joint, axis=1), 1e-9, 1e-9,
           "hidden_free_energy with the layer hidden against -log sum_v exp(-energy)")
    _close("conditionals", model.p_v_given_h(as_hidden, x), jax.nn.softmax(joint, axis=1) @ V, 1e-9, 1e-12,
           "p_v_given_h (Bernoulli visible) against the joint normalised by enumeration")
    # The layer's own cgf and mean, reached through the model functions (the layer hidden, then visible),
    # against per-unit enumeration or quadrature at the inputs the coupling gives (computed here in numpy).
    v = np.asarray(V[:3])
    inputs_h = np.tensordot(v, np.asarray(as_hidden.W), axes=1)  # (3, *layer.shape)
    u_v = -v @ np.asarray(as_hidden.visible.theta)
    ref_f, ref_mean = [], []
    for row in range(3):
        total, means = 0.0, []
        for i in range(h.shape[0]):
            values, logw = _unit_distribution(_unit(h, i), jnp.asarray(inputs_h[row, i : i + 1], dtype))
            total += float(jax.nn.logsumexp(logw))
            means.append(_moments(values, logw)[0])
        ref_f.append(u_v[row] - total)
        ref_mean.append(np.stack(means))
    _close("free energy", model.free_energy(as_hidden, v), np.array(ref_f), 1e-7, 1e-7,
           "free_energy with the layer hidden against the per-unit sum/integral")
    _close("conditionals", np.asarray(model.p_h_given_v(as_hidden, v)).reshape(3, h.shape[0], -1), np.stack(ref_mean), 1e-6, 1e-7,
           "p_h_given_v with the layer hidden against the per-unit enumerated/quadrature mean")
    hb = np.asarray(H[:3])
    inputs_v = np.tensordot(hb, np.moveaxis(np.asarray(as_visible.W), -1, 0), axes=1)  # (3, *layer.shape)
    ref_mean = [np.stack([_moments(*_unit_distribution(_unit(layer, i), jnp.asarray(inputs_v[row, i : i + 1], dtype)))[0]
                          for i in range(layer.shape[0])]) for row in range(3)]
    _close("conditionals", np.asarray(model.p_v_given_h(as_visible, hb)).reshape(3, layer.shape[0], -1), np.stack(ref_mean), 1e-6, 1e-7,
           "p_v_given_h with the layer visible against the per-unit enumerated/quadrature mean")
    report["free_energy"] = report["conditionals"] = "ok"


def _check_shifted_and_bits(layer, key, n_bernoulli, report):
    """``shifted`` adds a field to every unit; ``affine_bits`` (if any) describes the states and the fast enumeration."""
    dtype = jax.tree.leaves(layer)[0].dtype
    k1, k2, k3 = jax.random.split(key, 3)
    inputs = jax.random.normal(k1, layer.shape, dtype)
    x = layer_base.sample(k2, layer, jnp.zeros((8,) + layer.shape, dtype))
    coupling = jnp.sum((layer.statistic(x) * inputs).reshape(8, -1), axis=-1)
    offset = np.asarray(layer.energy(x) - coupling - layer.shifted(inputs).energy(x))
    if np.ptp(offset) > 1e-9 * max(1.0, np.max(np.abs(offset))):
        _fail("shifted", f"energy(x) - <I, s(x)> - shifted(I).energy(x) varies over x: {offset}")
    report["shifted"] = "ok"
    if not hasattr(layer, "affine_bits"):
        return
    o, g = (float(a) for a in layer.affine_bits())
    _close("affine_bits", layer.unit_states(), np.array([o, o + g]), 0, 0, "unit_states against offset + scale * {0, 1}")
    params = RBM(layer, Bernoulli(0.5 * jax.random.normal(k3, (n_bernoulli,), dtype)),
                 0.5 * jax.random.normal(jax.random.fold_in(k3, 1), layer.shape + (n_bernoulli,), dtype))
    S = exact.visible_states(params)
    H = _bernoulli_states(n_bernoulli, dtype)
    brute = float(jax.nn.logsumexp(-jax.vmap(lambda s: model.energy(params, s, H))(S)))
    fast = float(exact.log_partition(params, layer="visible"))  # the layer enumerated
    _close("affine_bits", fast, brute, 1e-10, 1e-10, "log Z enumerating the layer by meeting in the middle against a double sum")
    report["affine_bits"] = "ok"


def _check_exact_grad(as_visible, key, report):
    v = layer_base.sample(key, as_visible.visible, jnp.zeros((7,) + as_visible.visible.shape, as_visible.W.dtype))
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


def _check_gibbs_invariance(params, key, report, report_key: str, sweeps: int = 1):
    """A discrete visible layer: start at exact draws of ``p(v)``, ``sweeps`` Gibbs sweeps, chi-square of the
    states reached against ``p(v)`` (states expected fewer than 5 times pooled)."""
    dtype = params.W.dtype
    p = np.asarray(exact.marginal_visible(params), np.float64)
    V = exact.visible_states(params)
    k1, k2 = jax.random.split(key)
    idx = jax.random.choice(k1, p.shape[0], (SAMPLE_SIZE,), p=jnp.asarray(p, dtype))
    v1 = np.asarray(gibbs_chain(k2, params, V[idx], sweeps), np.float64).reshape(SAMPLE_SIZE, -1)
    index = {row.tobytes(): i for i, row in enumerate(np.asarray(V, np.float64).reshape(p.shape[0], -1))}
    codes = np.array([index.get(row.tobytes(), -1) for row in v1])
    if (codes < 0).any():
        _fail("Gibbs invariance", f"{report_key}: a sweep reached {v1[codes < 0][0]}, which is no state of the visible layer")
    result = _chi2_test("Gibbs invariance", np.bincount(codes, minlength=p.shape[0]), p, 1e-6,
                        f"{report_key}: ", f"the states after {sweeps} sweep(s) against p(v)")
    report[report_key] = dict(result, sweeps=sweeps)


FLOAT32_RTOL = 1e-4
"""How far float32 results may stray from float64 ones, relative (about 800 float32 roundings): a stable formula
loses a few roundings per unit; an underflow, overflow or cancellation loses every digit."""


def _check_float32(layer, as_visible, key, report):
    """The layer cast to float32 (jrbm's default dtype) at inputs of a few standard normals: ``cgf``, its
    ``jax.grad``, the mean, draws, and the free energy of a pairing and its gradient are finite and in float32,
    and agree with float64 to :data:`FLOAT32_RTOL`."""
    f32 = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)  # noqa: E731
    inputs = (3 * jax.random.normal(key, (16,) + layer.shape, jnp.float64)).astype(jnp.float32)
    layer32, params32 = f32(layer), f32(as_visible)

    def cgf_grad(lay, x):
        return jax.value_and_grad(lambda i: jnp.sum(lay.cgf(i)))(x)

    got = {"cgf": cgf_grad(layer32, inputs)[0], "jax.grad of cgf": cgf_grad(layer32, inputs)[1], "mean": layer32.mean(inputs)}
    want = {"cgf": cgf_grad(layer, inputs.astype(jnp.float64))[0], "jax.grad of cgf": cgf_grad(layer, inputs.astype(jnp.float64))[1],
            "mean": layer.mean(inputs.astype(jnp.float64))}
    v = layer_base.sample(jax.random.fold_in(key, 1), layer32, inputs)
    _check_draws(layer32, v, inputs)
    v64 = v.astype(jnp.float64)
    got["free energy"] = model.free_energy(params32, v)
    want["free energy"] = model.free_energy(as_visible, v64)
    got["jax.grad of the free energy"] = jax.grad(lambda p: jnp.sum(model.free_energy(p, v)))(params32)
    want["jax.grad of the free energy"] = jax.grad(lambda p: jnp.sum(model.free_energy(p, v64)))(as_visible)
    for what in got:
        for a, b in zip(jax.tree.leaves(got[what]), jax.tree.leaves(want[what])):
            if a.dtype != jnp.float32 or not np.all(np.isfinite(np.asarray(a))):
                _fail("float32", f"{what}: expected finite float32 values with the layer in float32, got {a.dtype} {np.asarray(a)}")
            scale = max(1.0, float(np.max(np.abs(np.asarray(b)))))
            _close("float32", a, b, FLOAT32_RTOL, FLOAT32_RTOL * scale, f"{what} in float32 against float64")
    report["float32"] = "ok"


def _check_annealing(params, data, v, report_key, key, report):
    """The annealing path of ``params`` (the layer on either side) and AIS against the exact ``log Z``."""
    base = model.base_rate(params, data)
    for beta in (0.0, 0.3, 1.0):
        mid = model.interpolate(base, params, beta)
        offset = np.asarray(model.free_energy(mid, v) - model.annealed_free_energy(base, params, beta, v))
        if np.ptp(offset) > 1e-8 * max(1.0, np.max(np.abs(offset))):
            _fail("annealing path", f"{report_key}: at beta={beta} the intermediate's free energy minus annealed_free_energy varies over v: {offset}")
    x = model.hidden_input(params, v)
    for b0, b1 in ((0.0, 0.3), (0.3, 0.3001), (0.5, 1.0)):
        step = model.annealed_log_ratio(base, params, v, x, b0, b1)
        diff = model.annealed_free_energy(base, params, b0, v) - model.annealed_free_energy(base, params, b1, v)
        _close("annealing path", step, diff, 1e-8, 1e-10, f"{report_key}: annealed_log_ratio against the difference of annealed free energies")
    log_z = float(exact.log_partition(params))
    res = ais.log_partition(key, params, data=data, betas=1000, n_runs=200)
    err = abs(float(res.log_z) - log_z)
    # 6 of the runs' own standard errors (a false alarm below 1e-8 for a normal estimate), plus 0.02 nats
    # for a heavy-tailed spread of the weights that 200 runs can under-estimate.
    if not err <= 6 * float(res.log_z_std) + 0.02:
        _fail("AIS", f"{report_key}: estimate {float(res.log_z):.5f} +- {float(res.log_z_std):.5f} is {err:.4f} from the exact log Z {log_z:.5f}")
    report[report_key] = {"log_z": float(res.log_z), "log_z_std": float(res.log_z_std), "exact": log_z}


def _check_annealing_and_ais(as_visible, as_hidden, key, report):
    dtype = as_visible.W.dtype
    layer = as_visible.visible
    k1, k2, k3, k4 = jax.random.split(key, 4)
    # The data whose marginals make AIS's base model are exact draws of the model's p(v), as a trained model's
    # data would be: draws of the layer at a field of its own can all sit in one mode of a multimodal model
    # (a dReLU unit's minor side), and AIS from there never reaches the other.
    H = _bernoulli_states(as_visible.hidden.shape[0], dtype)
    log_ph = -model.hidden_free_energy(as_visible, H)
    h = H[jax.random.categorical(k1, log_ph, shape=(200,))]
    data = model.sample_v_given_h(jax.random.fold_in(k1, 1), as_visible, h)
    v = layer_base.sample(k2, layer, jnp.zeros((6,) + layer.shape, dtype))
    _check_annealing(as_visible, data, v, "ais", k3, report)
    V = exact.visible_states(as_hidden)
    data_b = V[jax.random.categorical(k1, jnp.log(exact.marginal_visible(as_hidden)), shape=(200,))]
    _check_annealing(as_hidden, data_b, data_b[:6], "ais_layer_hidden", k4, report)


def check_layer(key: jax.Array, layer, *, n_bernoulli: int = 3, max_states: int = 4096) -> dict:
    """Certifies ``layer`` against enumeration, quadrature, ``jax.grad`` and sampling bounds; returns a report.

    Args:
      key: a ``jax.random`` key for the random inputs, weights and draws
        (first, as in every random function of jrbm).
      layer: a layer (:class:`jrbm.layers.Layer`) with small float64
        parameters: a few units, and at most ``max_states`` states if discrete;
        nonzero and unequal across units, so that every field is exercised.
      n_bernoulli: units of the Bernoulli layer it is paired with (``2^n`` states).
      max_states: the largest discrete layer it will enumerate.

    Returns:
      A dict of what was measured, one entry per check.

    Raises:
      ConformanceError: naming the check, the quantity, and what was expected.
      TypeError: the object is not a layer (naming the members it lacks, or a
        field that is not a floating array), or its fields are not float64.
      ValueError: the layer has more states than the kit can enumerate.
    """
    _checks.key("key", key)
    layer_base.check_interface(layer, "layer")
    leaves = jax.tree.leaves(layer)
    if not leaves or leaves[0].dtype != jnp.float64:
        raise TypeError("layer: expected float64 fields (enable jax_enable_x64): the kit's tolerances are float64 ones")
    layer.check("layer")
    _checks.finite_leaves("layer", layer)
    n_bernoulli = _checks.positive_int("n_bernoulli", n_bernoulli)
    max_states = _checks.positive_int("max_states", max_states)
    if layer_base.is_discrete(layer) and layer.unit_states().shape[0] ** layer.shape[0] > max_states:
        raise ValueError(f"layer: expected at most {max_states} states for the kit to enumerate, got more; use fewer units")
    report: dict = {}
    keys = jax.random.split(key, 6)
    _check_cgf_mean_sampler(layer, keys[0], report)
    as_visible, as_hidden = _pairings(layer, keys[1], n_bernoulli)
    as_visible.check("params")
    _check_free_energies_and_conditionals(as_visible, as_hidden, keys[2], report)
    _check_shifted_and_bits(layer, jax.random.fold_in(keys[2], 1), n_bernoulli, report)
    _check_exact_grad(as_visible, keys[3], report)
    _check_gibbs_invariance(as_hidden, keys[4], report, "gibbs_invariance")
    if layer_base.is_discrete(layer):  # the layer visible too: its own sampler drives the chain, over several sweeps
        _check_gibbs_invariance(as_visible, jax.random.fold_in(keys[4], 1), report, "gibbs_invariance_layer_visible", sweeps=3)
    _check_float32(layer, as_visible, jax.random.fold_in(keys[0], 3), report)
    _check_annealing_and_ais(as_visible, as_hidden, keys[5], report)
    return report


__all__ = ["ConformanceError", "check_layer"]
