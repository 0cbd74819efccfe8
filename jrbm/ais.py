"""Annealed importance sampling (AIS) estimates of ``log Z`` and of test log-likelihoods.

AIS (Neal 2001) as applied to RBMs by Salakhutdinov & Murray (2008, section 3)
anneals from a tractable base model ``A`` (``W = 0``: the "base rate" model
of :func:`jrbm.model.base_rate`, whose visible layer matches the data's
marginals and whose hidden layer has no fields) to the model ``B``
through the intermediate unnormalised marginals, with the hidden layer summed
out,

    f_beta(v) = exp(-annealed_free_energy(base, params, beta, v))
              = exp(-(1 - beta) U_A(v) - beta U_B(v) + cgf_hid_beta(beta I_hid(v))),

for ``0 = beta_0 <= ... <= beta_K = 1``, with the layer functions of
:mod:`jrbm.layers` (the physical energy, ``-E_tutorial`` of Cheng eqs. 2.3
and 3.3). At ``beta = 0`` the layers are independent, so
``log Z_0 = cgf_A(0) + cgf_hid_base(0)`` (:func:`base_log_partition`). The
path works for every pairing of layers: each layer interpolates between its
base and itself (:meth:`jrbm.layers.Layer.interpolate`), and every
intermediate is proper. With Bernoulli hidden units it is Salakhutdinov &
Murray's path.

A run draws ``v_0`` exactly from ``A`` and, for ``k = 1 .. K``, multiplies its
weight by ``f_{beta_k}(v_{k-1}) / f_{beta_{k-1}}(v_{k-1})`` and moves
``v_k ~ T_k(v_{k-1})``, one block-Gibbs sweep ``v -> h -> v'`` of the
intermediate model :func:`jrbm.model.interpolate` (``h ~ p_k(h | beta_k I_hid(v))``,
then ``v' ~ p_k(v | h)``), which leaves ``f_{beta_k}`` invariant.
Each weight ``w`` satisfies ``E[w] = Z_B / Z_0``, so with ``M`` runs

    Z_hat = Z_0 mean_m w_m   is unbiased for ``Z_B``, and
    E[log Z_hat] <= log Z_B  (Jensen):

forward AIS is a *stochastic lower bound* on ``log Z`` (and so over-estimates
log-likelihoods). Reverse AIS (:func:`reverse_log_partition`) runs the same
schedule backwards from exact samples of ``B``; its weights are unbiased for
``Z_A / Z_B`` and ``log Z_0 - log mean(w)`` is a *stochastic upper bound* on
``log Z_B`` (Burda, Grosse & Salakhutdinov 2015). The two together bracket
``log Z``; their gap shrinks as the schedule gets finer.

What the standard error does not show: a mode that no run reaches. If the
annealing path from the base model never leads into the mode that holds most
of ``Z``, every run misses it alike, the runs agree with one another, and
the estimate is far too low with a small standard error. A finer schedule
does not help. For example, a GB-RBM of 4 x 8 units with weights of standard
deviation 10 and fields of +-50, annealed from the default base model (no
``data``), has every run end far from the dominant mode: ``log_z`` over
1,000 nats below the exact 1,377.5 with a standard error under 0.1
(``tests/test_ais.py`` reproduces it, and the remedies). Reverse AIS started
from the forward runs' own final states (:func:`bracket` without ``v_init``)
inherits the miss. The remedies: a base model from data that cover the modes
(``data=``), and reverse AIS from independent samples of the model
(``v_init``: exact draws, or long chains from the data), whose upper bound
then exposes the gap.

The runs are a leading batch axis (the model functions are batch-agnostic) and
the temperatures run under one ``lax.scan`` that carries only the current
states and log-weights, so memory does not grow with the number of betas.
Everything works under ``jax.jit`` and ``jax.vmap`` (the schedule's length is
static) and in the parameters' dtype, float32 or wider. ``jax.grad`` through an
estimate is refused (:func:`not_differentiable`): the gradient through the
random draws and the Gibbs moves is lost, so it would be biased however many
runs are taken.

References:
  R. M. Neal, "Annealed importance sampling", Statistics and Computing 11, 2001.
  R. Salakhutdinov and I. Murray, "On the quantitative analysis of deep belief
  networks", ICML 2008.
  Y. Burda, R. Grosse and R. Salakhutdinov, "Accurate and conservative
  estimates of MRF log-likelihood using reverse annealing", AISTATS 2015.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, parallel, rng
from jrbm.layers import base as layer_base
from jrbm.model import (
    annealed_log_ratio,
    base_rate,
    check,
    couple_to_visible,
    free_energy_unchecked,
    hidden_input,
    interpolated_layers,
    visible_data,
)
from jrbm.params import Model
from jrbm.sampling import PREDRAW_LIMIT

N_RUNS = 100
"""Default number of independent AIS runs."""


class AISResult(NamedTuple):
    """An AIS estimate of ``log Z`` and its spread.

    Attributes:
      log_z: the estimate. Forward AIS: ``log mean_m exp(log_weights_m)``, a
        stochastic lower bound on ``log Z``. Reverse AIS:
        ``-log mean_m exp(-log_weights_m)``, a stochastic upper bound.
      log_z_std: the delta-method standard error of ``log_z`` from the runs
        themselves (no bootstrap): with ``r_m = exp(±log_weights_m - max)``
        (``+`` forward, ``-`` reverse), ``std(r, ddof=1) / mean(r) / sqrt(M)``,
        the relative standard error of the mean weight. It measures the spread
        between runs only, not the bias of a short schedule; ``nan`` for one run.
      lower, upper: Salakhutdinov & Murray's ``3 sigma`` interval, mapped to
        log space through the averaged quantity: forward
        ``log(Z_hat -/+ 3 sigma_hat) = log_z + log1p(-/+ 3 log_z_std)`` (``lower``
        is ``-inf`` when ``3 log_z_std >= 1``); reverse, where ``1 / Z`` is the
        average, ``log_z - log1p(+/- 3 log_z_std)`` (``upper`` is ``+inf`` when
        ``3 log_z_std >= 1``). To first order this is ``log_z -/+ 3 log_z_std``.
      log_weights: ``(M,)`` per-run estimates of ``log Z`` (their effective
        number: :attr:`ess`): forward,
        ``exp(log_weights)`` is unbiased for ``Z``; reverse, ``exp(-log_weights)``
        is unbiased for ``1 / Z`` when the starts are exact samples of the model.
      v: ``(M, *visible.shape)`` the runs' last visible states: forward, samples that
        ``exp(log_weights)`` importance-weights towards the model; reverse,
        approximate samples of the base model.
    """

    log_z: Array
    log_z_std: Array
    lower: Array
    upper: Array
    log_weights: Array
    v: Array

    @property
    def ess(self) -> Array:
        """Kish's effective sample size of the runs, ``(sum_m w_m)^2 / sum_m w_m^2``, between 1 and ``M``.

        ``w_m = exp(log_weights_m)`` for a forward estimate and
        ``exp(-log_weights_m)`` for a reverse one (the direction read from
        ``log_z``: a forward estimate is at least the runs' mean log-weight, a
        reverse one at most). Near ``M`` when the runs agree; a few when a few
        runs carry the estimate, and then ``log_z_std``, computed from the same
        runs, is itself unreliable: lengthen the schedule (``betas``). Works on
        stacked results (over the last axis).
        """
        lw = jnp.asarray(self.log_weights)
        y = jnp.where(_is_forward(self)[..., None], lw, -lw)
        r = jnp.exp(y - jnp.max(y, axis=-1, keepdims=True))
        return jnp.sum(r, axis=-1) ** 2 / jnp.sum(r * r, axis=-1)


def _is_forward(result: AISResult) -> Array:
    """Whether ``result`` is a forward estimate: it is at least its runs' mean log-weight (Jensen), a reverse one
    at most (equal only when every run agrees, where the two readings give the same estimate)."""
    return jnp.asarray(result.log_z) >= jnp.mean(jnp.asarray(result.log_weights), axis=-1)


def default_betas() -> np.ndarray:
    """Salakhutdinov & Murray's schedule: 14,500 betas, linear in three pieces.

    500 equally spaced in ``[0, 0.5)``, 4,000 in ``[0.5, 0.9)`` and 10,000 in
    ``[0.9, 1]``, ending at exactly ``1.0`` (float64 numpy; cast to the
    parameters' dtype where used).

    Example:
      >>> import jrbm.ais
      >>> b = jrbm.ais.default_betas()
      >>> b.shape, float(b[0]), float(b[-1])
      ((14500,), 0.0, 1.0)
    """
    return np.concatenate(
        [
            np.linspace(0.0, 0.5, 500, endpoint=False),
            np.linspace(0.5, 0.9, 4000, endpoint=False),
            np.linspace(0.9, 1.0, 10000),
        ]
    )


def schedule(betas, dtype) -> Array:
    """Validates a schedule (``None`` for :func:`default_betas`, an int ``K`` for ``K`` equally spaced values,
    or a non-decreasing array from exactly 0 to exactly 1); returns it in ``dtype``.

    ``dtype`` (the parameters') must be float32 or wider: half precision
    cannot hold the schedule's steps (float16 rounds ``0.9 + 1e-5`` to 0.9)
    nor sum thousands of log-weight increments.
    """
    _checks.float32_or_wider(dtype, "AIS needs", "which cannot hold the schedule's steps nor sum its log-weights")
    if betas is None:
        return jnp.asarray(default_betas(), dtype)
    return _checks.schedule("betas", betas, dtype, from_zero=True)


def base_log_partition(base: Model) -> Array:
    """``log Z_0 = cgf_vis_base(0) + cgf_hid_base(0)``: the intermediate model at ``beta = 0`` (``W`` plays no part)."""
    vis, hid = base.visible, base.hidden
    return vis.cgf(jnp.zeros(vis.shape, base.W.dtype)) + hid.cgf(jnp.zeros(hid.shape, base.W.dtype))


def sample_base(key: Array, base: Model, n: int) -> Array:
    """``n`` exact samples of the base model's visible layer (its units are independent: input 0)."""
    return layer_base.sample(key, base.visible, jnp.zeros((n,) + base.visible.shape, base.W.dtype))


NOT_DIFFERENTIABLE = (
    "jrbm.ais: an AIS estimate is not differentiable: the gradient through its random draws and Gibbs moves is "
    "lost, so jax.grad would return a biased gradient that more runs do not fix; differentiate "
    "jrbm.exact.log_partition for a model small enough to enumerate, or train with an estimator's gradient (jrbm.PCD, ...)"
)


@jax.custom_jvp
def not_differentiable(tree):
    """``tree`` unchanged; differentiating through it raises ``TypeError`` (:data:`NOT_DIFFERENTIABLE`)."""
    return tree


@not_differentiable.defjvp
def _not_differentiable_jvp(primals, tangents):
    raise TypeError(NOT_DIFFERENTIABLE)


def _anneal(key: Array, base: Model, params: Model, betas: Array, v0: Array, mesh=None) -> tuple[Array, Array]:
    """Runs the chains ``v0`` through ``betas`` (in the order given); returns ``(sum of log ratios, last v)``.

    ``sum_k log f_{beta_k}(v_{k-1}) / f_{beta_{k-1}}(v_{k-1})`` with
    ``v_k ~ T_{beta_k}(v_{k-1})`` for ``k = 1 .. K - 1`` (no move after the last
    weight). The hidden inputs ``x = I_hid(v)`` of the model are carried, since
    the weight and the next move both need them: the intermediate's hidden
    layer sees ``beta scale x`` by the definition of ``annealed_free_energy``. The log-weights are summed with Kahan compensation.
    With a ``mesh``, the runs are constrained to be split over its ``"data"`` axis.

    Keys: the moves are taken in blocks of ``B`` temperatures (:func:`_block_size`:
    the noise of at most :data:`jrbm.sampling.PREDRAW_LIMIT` states a block), and each
    block draws the randomness of its ``B`` moves in one call per layer, since a
    small move otherwise spends most of its time in the generator's per-call
    cost: block ``j`` uses ``jax.random.split(key, n_blocks)[j]``, split into
    the keys of the hidden and the visible noise of shape ``(B, n_runs, ...)``.
    The ``K - 2`` moves are padded to whole blocks with moves at the last
    temperature that add nothing to the weights and are dropped.
    """
    base, params, v0 = not_differentiable((base, params, v0))
    v0 = parallel.constrain_rows(v0, mesh)
    x0 = hidden_input(params, v0)
    acc0 = annealed_log_ratio(base, params, v0, x0, betas[0], betas[1])
    vis, hid = params.visible, params.hidden
    dtype = x0.dtype
    batch = v0.shape[: v0.ndim - len(vis.shape)]
    n_moves = betas.shape[0] - 2
    block = _block_size(math.prod(x0.shape) + math.prod(v0.shape), n_moves)
    n_blocks = -(-n_moves // block)
    pad = n_blocks * block - n_moves
    last = jnp.full((pad,), betas[-1], betas.dtype)
    beta_now = jnp.concatenate([betas[1:-1], last]).reshape(n_blocks, block)
    beta_next = jnp.concatenate([betas[2:], last]).reshape(n_blocks, block)
    real = (jnp.arange(n_blocks * block) < n_moves).reshape(n_blocks, block)

    def move(carry, inp):
        v, x, acc, comp = carry
        beta, beta_next, is_real, noise_h, noise_v = inp
        visible_beta, scale_v, hidden_beta, scale_h = interpolated_layers(base, params, beta)
        h = hidden_beta.sample_given_noise(beta * scale_h * x, noise_h)
        field = beta * jnp.broadcast_to(scale_v, vis.shape) * couple_to_visible(params, hid.statistic(h))
        v_new = parallel.constrain_rows(visible_beta.sample_given_noise(field, noise_v), mesh)
        x_new = hidden_input(params, v_new)
        y = annealed_log_ratio(base, params, v_new, x_new, beta, beta_next) - comp
        t = acc + y
        comp_new = (t - acc) - y
        keep = lambda new, old: jnp.where(is_real, new, old)
        return (keep(v_new, v), keep(x_new, x), keep(t, acc), keep(comp_new, comp)), None

    def run_block(carry, inp):
        key_block, beta, beta_next, is_real = inp
        key_h, key_v = jax.random.split(key_block)
        noise = (layer_base.noise(key_h, hid, (block,) + batch, dtype), layer_base.noise(key_v, vis, (block,) + batch, dtype))
        carry, _ = lax.scan(move, carry, (beta, beta_next, is_real) + noise)  # unrolling measured slower
        return carry, None

    keys = jax.random.split(key, n_blocks)
    init = (v0, x0, acc0, jnp.zeros_like(acc0))
    (v, _, acc, _), _ = lax.scan(run_block, init, (keys, beta_now, beta_next, real))
    return acc, v


def _block_size(numbers_per_move: int, n_moves: int) -> int:
    """Moves per block of :func:`_anneal`: as many as :data:`jrbm.sampling.PREDRAW_LIMIT` states allow, 1 to 64."""
    return max(1, min(64, PREDRAW_LIMIT // max(numbers_per_move, 1), n_moves))


def _summary(log_weights: Array, sign: int) -> tuple[Array, Array, Array, Array]:
    """``(log_z, log_z_std, lower, upper)`` from per-run log-estimates; see :class:`AISResult`."""
    n = log_weights.shape[0]
    y = sign * log_weights
    m = lax.stop_gradient(jnp.max(y))
    r = jnp.exp(y - m)
    mean = jnp.mean(r)
    log_mean = m + jnp.log(mean)
    if n == 1:
        nan = jnp.full((), jnp.nan, y.dtype)
        return sign * log_mean, nan, nan, nan
    rel = jnp.std(r, ddof=1) / mean / math.sqrt(n)
    ok = 3 * rel < 1
    lo = jnp.where(ok, jnp.log1p(-3 * jnp.where(ok, rel, 0)), -jnp.inf)
    hi = jnp.log1p(3 * rel)
    if sign > 0:
        return log_mean, rel, log_mean + lo, log_mean + hi
    return -log_mean, rel, -log_mean - hi, -log_mean - lo


@rng.jit(static_argnames=("n_runs", "mesh"))
def forward(key: Array, base: Model, params: Model, betas: Array, n_runs: int, mesh=None) -> AISResult:
    """The compiled forward run of :func:`log_partition` on checked arguments (no validation; jit-able inside a
    caller's program): ``base`` from :func:`jrbm.model.base_rate`, ``betas`` from :func:`schedule`."""
    key_start, key_run = jax.random.split(key)
    acc, v = _anneal(key_run, base, params, betas, sample_base(key_start, base, n_runs), mesh)
    log_weights = base_log_partition(base) + acc
    return AISResult(*_summary(log_weights, +1), log_weights, v)


@rng.jit(static_argnames=("mesh",))
def _reverse(key: Array, base: Model, params: Model, betas: Array, v0: Array, mesh=None) -> AISResult:
    acc, v = _anneal(key, base, params, betas[::-1], v0, mesh)
    log_weights = base_log_partition(base) - acc
    return AISResult(*_summary(log_weights, -1), log_weights, v)


def _base(params, data):
    if data is not None:
        data = _checks.data_batch("data", data, params.visible, params.W.dtype)
        layer_base.check_training_data(params.visible, "data", data)
    return _base_rate(params, data)


_base_rate = jax.jit(base_rate)
"""One compiled program (run eagerly, the layers' ``from_data`` compile their small operations one by one)."""


def log_partition(
    key: Array,
    params: Model,
    *,
    data: ArrayLike | None = None,
    betas: int | ArrayLike | None = None,
    n_runs: int = N_RUNS,
    mesh=None,
    threads: int = 1,
) -> AISResult:
    """Forward AIS estimate of ``log Z`` (Salakhutdinov & Murray 2008); a stochastic lower bound.

    ``E[exp(log_z)] = Z`` but ``E[log_z] <= log Z``: with a short schedule the
    estimate errs low. Pair it with :func:`reverse_log_partition`, which errs
    high, to bracket ``log Z``.

    Args:
      key: a ``jax.random`` key.
      params: a model (:class:`~jrbm.RBM`, :class:`~jrbm.BernoulliRBM`, :class:`~jrbm.GaussianRBM`).
      data: optional ``(n_examples, *visible.shape)`` training data for the base
        model (:func:`jrbm.model.base_rate`: the data's marginals, which lowers
        the variance); without it the visible layer's neutral choice (uniform
        for Bernoulli, Spin and Potts units; the model's own ``b`` and
        ``sigma`` for the tutorial's Gaussian).
      betas: the schedule: ``None`` for :func:`default_betas` (14,500 values),
        an int ``K >= 2`` for ``K`` equally spaced values, or a non-decreasing
        1-D array from exactly 0 to exactly 1. Its length is static under jit.
      n_runs: number of independent runs ``M`` (static).
      mesh: optional :class:`jax.sharding.Mesh` with a ``"data"`` axis: the runs
        are split across its devices (``n_runs`` a multiple of the axis size),
        the model replicated; the estimate equals the single-device one inside
        :func:`jrbm.rng.own_generator` up to floating-point reduction order
        (:mod:`jrbm.parallel`).
      threads: split the runs into this many equal groups (a divisor of
        ``n_runs``), run at once in Python threads on one device: a CPU's
        cores then share the work (the runs' small products keep one core
        busy each). Group ``g`` draws from ``jax.random.fold_in(key, g)``, so the
        result depends on ``threads`` (not on the machine) and differs from
        ``threads=1``'s in the draws only; the estimate pools all runs.

    Returns:
      An :class:`AISResult` (``log_weights`` of shape ``(M,)``).

    Example:
      >>> import jax, jrbm, jrbm.ais
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
      >>> res = jrbm.ais.log_partition(jax.random.key(1), params, betas=1000, n_runs=50)
      >>> bool(abs(res.log_z - jrbm.exact.log_partition(params)) < 0.1)
      True
    """
    _checks.key("key", key)
    check(params)
    n_runs = _checks.positive_int("n_runs", n_runs)
    dtype = params.W.dtype
    betas = schedule(betas, dtype)
    base = _base(params, data)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, need=parallel.DATA_AXIS)
        parallel.check_divisible("n_runs", n_runs, mesh, "AIS runs")
        key, base, params, betas = parallel.place((key, base, params, betas), mesh)
    threads = _threads(threads, n_runs, mesh)
    if threads == 1:
        return forward(key, base, params, betas, n_runs, mesh)
    results: list = [None] * threads

    def run(g):
        results[g] = jax.block_until_ready(forward(jax.random.fold_in(key, g), base, params, betas, n_runs // threads, None))

    workers = [threading.Thread(target=run, args=(g,), name=f"jrbm-ais-{g}") for g in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if any(r is None for r in results):  # a thread failed: run the first failing group here to raise its error
        run(results.index(None))
    return pool(results)


def _threads(threads, n_runs: int, mesh) -> int:
    threads = _checks.positive_int("threads", threads)
    if n_runs % threads:
        raise ValueError(f"threads: expected a divisor of n_runs={n_runs} (equal groups of runs), got {threads}")
    if threads > 1 and mesh is not None:
        raise ValueError(f"threads: expected 1 with a mesh (the mesh splits the runs over its devices), got {threads}")
    return threads


def pool(results) -> AISResult:
    """One :class:`AISResult` from several of the same model and direction: all runs pooled (``log_weights`` and ``v`` joined).

    Forward results pool into a forward estimate, reverse results into a
    reverse one (the direction read from each result as :attr:`AISResult.ess`
    reads it). Results of both directions together are refused when their
    values are concrete (under ``jit`` the first result's direction is used).

    Raises:
      ValueError: no results, or forward and reverse results together.

    Example:
      >>> import jax, jrbm, jrbm.ais
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> a, b = (jrbm.ais.log_partition(jax.random.key(k), params, betas=100, n_runs=10) for k in (1, 2))
      >>> jrbm.ais.pool([a, b]).log_weights.shape
      (20,)
    """
    results = list(results)
    if not results:
        raise ValueError("results: expected at least one AISResult, got none")
    forward = [_is_forward(r) for r in results]
    if all(_checks.is_concrete(f) for f in forward):
        directions = np.asarray([bool(f) for f in forward])
        if directions.any() and not directions.all():
            raise ValueError(
                f"results: expected results of one direction, got forward ones at {np.flatnonzero(directions).tolist()} "
                f"and reverse ones at {np.flatnonzero(~directions).tolist()}; pool each direction on its own"
            )
    return _pooled([r.log_weights for r in results], [r.v for r in results], forward[0])


@jax.jit
def _pooled(log_weights: list, v: list, forward: Array) -> AISResult:
    """:func:`pool`'s arithmetic as one program (run eagerly, its dozen small operations compile one by one)."""
    log_weights = jnp.concatenate(log_weights)
    summary = [jnp.where(forward, f, r) for f, r in zip(_summary(log_weights, +1), _summary(log_weights, -1))]
    return AISResult(*summary, log_weights, jnp.concatenate(v))


def compile_log_partition(
    key: Array, params: Model, *, data: ArrayLike | None = None, betas: int | ArrayLike | None = None, n_runs: int = N_RUNS,
    threads: int = 1,
) -> None:
    """Compiles the program of :func:`log_partition` for these arguments' shapes and dtypes, without running it.

    A later :func:`log_partition` call with arguments of the same shapes and
    dtypes (any values) finds it compiled. Compilation releases Python's
    global lock, so a thread can compile while the caller trains (the
    command line does this).

    Example:
      >>> import jax, jrbm, jrbm.ais
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> jrbm.ais.compile_log_partition(jax.random.key(1), params, betas=100, n_runs=10)
    """
    _checks.key("key", key)
    check(params)
    n_runs = _checks.positive_int("n_runs", n_runs)
    threads = _threads(threads, n_runs, None)
    lowered = forward.lower(key, _base(params, data), params, schedule(betas, params.W.dtype), n_runs // threads, None)
    lowered.compile()
    group = lowered.out_info
    if threads > 1:  # the groups' keys (an eager operation, compiled on its first call) and the pooling of their results
        jax.random.fold_in(key, 0)
        _pooled.lower([group.log_weights] * threads, [group.v] * threads, jax.ShapeDtypeStruct((), jnp.bool_)).compile()


def reverse_log_partition(
    key: Array,
    params: Model,
    v_init: ArrayLike,
    *,
    data: ArrayLike | None = None,
    betas: int | ArrayLike | None = None,
    mesh=None,
) -> AISResult:
    """Reverse AIS estimate of ``log Z`` (Burda, Grosse & Salakhutdinov 2015); a stochastic upper bound.

    One run starts at each row of ``v_init`` and runs the schedule backwards,
    ``beta = 1 -> 0``, with the same transitions as :func:`log_partition`. Its
    weight ``prod_k f_{beta_{k-1}}(v) / f_{beta_k}(v)`` has expectation
    ``Z_0 / Z`` when the starts are exact samples of the model, so
    ``exp(-log_weights)`` is unbiased for ``1 / Z`` and ``E[log_z] >= log Z``
    (Jensen): the estimate errs high, the opposite way to forward AIS.

    The chain state is ``v`` alone (the hidden layer is summed out of the
    weights), so no hidden start state is needed: every move, the first
    included, draws ``h`` from the current intermediate's ``p(h | v)``, which
    is how the hidden units of an exact joint sample ``(v, h) ~ p_B`` would be
    drawn.

    The upper bound holds only if ``v_init`` are samples of the model. Exact
    samples exist for small models (``jrbm.exact.marginal_visible``); the
    states of a long Gibbs chain are approximate ones; the training data are
    a common stand-in (Burda et al.) that makes the bound heuristic: if the
    model fits the data poorly the estimate can fall below ``log Z``.

    Args:
      key: a ``jax.random`` key.
      params: a model.
      v_init: ``(M, *visible.shape)`` start states (any leading shape is flattened
        into runs); binary for a BB-RBM.
      data: optional training data for the base model, as in :func:`log_partition`.
      betas: the schedule, given increasing as in :func:`log_partition`.
      mesh: optional :class:`jax.sharding.Mesh`; the runs are split over its
        ``"data"`` axis, as in :func:`log_partition`.

    Returns:
      An :class:`AISResult`; ``log_weights[m]`` is run ``m``'s estimate of
      ``log Z``, ``log_z = -log mean exp(-log_weights)``.

    Example:
      >>> import jax, jrbm, jrbm.ais
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
      >>> v = jrbm.gibbs_chain(jax.random.key(1), params, jax.numpy.zeros((50, 6)), 200)
      >>> res = jrbm.ais.reverse_log_partition(jax.random.key(2), params, v, betas=1000)
      >>> bool(abs(res.log_z - jrbm.exact.log_partition(params)) < 0.1)
      True
    """
    _checks.key("key", key)
    check(params)
    v0 = visible_data(params, v_init, "v_init").reshape((-1,) + params.visible.shape)
    if v0.shape[0] == 0:
        raise ValueError("v_init: expected at least one start state, got none")
    layer_base.check_data(params.visible, "v_init", v0)
    betas = schedule(betas, params.W.dtype)
    base = _base(params, data)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, need=parallel.DATA_AXIS)
        parallel.check_divisible("v_init", v0.shape[0], mesh, "AIS runs (rows of v_init)")
        key, base, params, betas = parallel.place((key, base, params, betas), mesh)
        v0 = parallel.place_rows(v0, mesh)
    return _reverse(key, base, params, betas, v0, mesh)


def log_likelihood(key: Array, params: Model, v: ArrayLike, **ais_kwargs) -> tuple[Array, AISResult]:
    """Mean AIS log-likelihood ``mean_n [-free_energy(v_n)] - log_z`` and the forward AIS result.

    ``log_z`` is the forward estimate of :func:`log_partition` (``ais_kwargs``:
    ``data``, ``betas``, ``n_runs``), a stochastic lower bound on ``log Z``, so
    this estimate errs *high* (optimistic) in expectation; its standard error
    is ``result.log_z_std``. For a conservative figure, subtract the
    :func:`reverse_log_partition` estimate instead:
    ``-jrbm.free_energy(params, v).mean() - reverse_log_partition(...).log_z``.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.ais
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
      >>> v = jnp.eye(6)
      >>> ll, res = jrbm.ais.log_likelihood(jax.random.key(1), params, v, betas=1000)
      >>> bool(abs(ll - jrbm.exact.log_likelihood(params, v).mean()) < 0.1)
      True
    """
    _checks.key("key", key)
    check(params)
    v = visible_data(params, v)
    layer_base.check_data(params.visible, "v", v)
    result = log_partition(key, params, **ais_kwargs)
    return jnp.mean(-free_energy_unchecked(params, v)) - result.log_z, result


class Bracket(NamedTuple):
    """Forward and reverse AIS estimates of the same ``log Z``: a stochastic lower and upper bound.

    Attributes:
      forward: the :func:`log_partition` result (errs low in expectation).
      reverse: the :func:`reverse_log_partition` result (errs high in expectation when its
        starts are samples of the model).
      gap: ``reverse.log_z - forward.log_z``: near 0 when the schedule is long enough; it
        shrinks as the number of temperatures grows.
    """

    forward: AISResult
    reverse: AISResult

    @property
    def gap(self) -> Array:
        return self.reverse.log_z - self.forward.log_z


def bracket(
    key: Array,
    params: Model,
    *,
    data: ArrayLike | None = None,
    v_init: ArrayLike | None = None,
    betas: int | ArrayLike | None = None,
    n_runs: int = N_RUNS,
    sweeps: int = 1000,
    tolerance: float = 0.1,
) -> Bracket:
    """Forward and reverse AIS of one model in one call, with a warning when they disagree.

    Forward AIS (:func:`log_partition`) errs low and reverse AIS
    (:func:`reverse_log_partition`) errs high, so together they bracket
    ``log Z`` (Burda, Grosse & Salakhutdinov 2015). The reverse runs start at
    ``v_init`` when given (exact samples of the model make its bound hold);
    otherwise at the forward runs' last states resampled by their importance
    weights and moved by ``sweeps`` Gibbs sweeps, approximate samples of the
    model (the bound is then heuristic, as it is from training data).

    A ``UserWarning`` names the remedy when

    * the estimates cross: the forward estimate exceeds the reverse one by
      more than 3 of their combined standard errors (too few runs, or reverse
      starts far from the model: more runs, more ``sweeps``, better ``v_init``);
    * the gap ``reverse - forward`` exceeds ``tolerance`` nats (the schedule
      is too short: more betas);
    * the combined standard error of the two exceeds ``tolerance`` (more runs
      and more betas), or is unknown (one run on a side: more runs).

    Args:
      key: a ``jax.random`` key.
      params: a model.
      data: optional training data for the base model (:func:`log_partition`).
      v_init: optional ``(M, *visible.shape)`` reverse starts.
      betas: the schedule, as in :func:`log_partition` (default: 14,500 betas).
      n_runs: forward runs, and reverse runs when ``v_init`` is not given.
      sweeps: Gibbs sweeps from the resampled forward states to the reverse starts.
      tolerance: the largest gap, in nats, that passes without a warning.

    Returns:
      A :class:`Bracket`.

    Example:
      >>> import jax, jrbm, jrbm.ais
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4, weight_std=1.0)
      >>> b = jrbm.ais.bracket(jax.random.key(1), params, betas=1000, n_runs=50)
      >>> exact = float(jrbm.exact.log_partition(params))
      >>> bool(b.forward.log_z - 0.1 < exact < b.reverse.log_z + 0.1)
      True
    """
    from jrbm.sampling import gibbs_chain

    _checks.key("key", key)
    check(params)
    sweeps = _checks.positive_int("sweeps", sweeps)
    try:
        tol = float(tolerance) if np.ndim(tolerance) == 0 and not isinstance(tolerance, (bool, np.bool_, str)) else None
    except (TypeError, ValueError):
        tol = None
    if tol is None or not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tolerance: expected a positive number of nats, got {tolerance!r}")
    tolerance = tol
    k_fwd, k_pick, k_chain, k_rev = jax.random.split(key, 4)
    forward = log_partition(k_fwd, params, data=data, betas=betas, n_runs=n_runs)
    if v_init is None:
        pick = jax.random.categorical(k_pick, forward.log_weights, shape=(forward.v.shape[0],))
        v_init = gibbs_chain(k_chain, params, forward.v[pick], sweeps)
    reverse = reverse_log_partition(k_rev, params, v_init, data=data, betas=betas)
    result = Bracket(forward, reverse)
    se = math.hypot(float(forward.log_z_std), float(reverse.log_z_std))
    gap = float(result.gap)
    if not math.isfinite(se):
        warnings.warn(
            f"AIS: the standard errors are unknown (forward {float(forward.log_z_std)}, reverse {float(reverse.log_z_std)}: "
            f"one run on a side has no spread), so the gap of {gap:.4f} nats between the estimates cannot be judged; "
            "use more runs (n_runs, or more rows of v_init)",
            stacklevel=2,
        )
    if gap < -3 * se:
        warnings.warn(
            f"AIS: the forward estimate {float(forward.log_z):.4f} exceeds the reverse one {float(reverse.log_z):.4f} by "
            f"{-gap:.4f} nats, more than 3 standard errors ({se:.4f}); use more runs (n_runs), more sweeps or exact "
            "samples as v_init",
            stacklevel=2,
        )
    elif gap > tolerance:
        warnings.warn(
            f"AIS: the reverse estimate exceeds the forward one by {gap:.4f} nats, more than tolerance={tolerance}; "
            "the schedule is too short for this model: use more betas",
            stacklevel=2,
        )
    if se > tolerance:
        warnings.warn(
            f"AIS: the combined standard error of the two estimates, {se:.4f} nats, exceeds tolerance={tolerance}; "
            "use more runs (n_runs) and more betas",
            stacklevel=2,
        )
    return result
