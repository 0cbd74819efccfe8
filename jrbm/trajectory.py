"""Parallel trajectory tempering (PTT): replicas of models saved along training that swap states.

Parallel tempering (:mod:`jrbm.tempering`) connects the model to an easy
distribution through a ladder of temperatures. Béreux, Decelle, Furtlehner,
Rosset & Seoane (2024) use instead the models ``theta_1, ..., theta_T`` saved
along one training run, ``theta_T`` the latest: the early models are smooth
(the couplings start small), so their replicas mix, and modes that appeared
during training appeared gradually, so neighbouring models overlap even where
a temperature ladder crosses a first-order transition.

A *ladder* is a stack of models of one type and shape: every leaf has a
leading axis of length ``T`` (:func:`stack`). One :func:`ptt_step` is

1. ``k`` block-Gibbs sweeps of every replica under its own model, vmapped
   over the ladder;
2. one round of swap proposals between neighbours ``(t, t + 1)``, the even
   pairs then the odd pairs on alternate steps (as :func:`jrbm.tempering.pt_step`).
   The swap of ``v_t`` (at ``theta_t``) and ``v_{t+1}`` (at ``theta_{t+1}``)
   is accepted with probability ``min(1, r)``::

       log r = F_t(v_t) + F_{t+1}(v_{t+1}) - F_t(v_{t+1}) - F_{t+1}(v_t)

   with ``F_t`` the free energy of model ``t`` (hidden layer summed out,
   :func:`jrbm.model.free_energy_unchecked`). It is a Metropolis move on the
   product of the marginals, so each replica keeps its model's ``p_t(v)``.

``log Z`` along the ladder (:func:`log_partition_along`). The free energies
of the swap are also the importance weights between neighbours: with
``w_t(v) = F_t(v) - F_{t+1}(v)``,

    Z_{t+1} / Z_t = E_t[exp(w_t)] = E_t[exp(w_t / 2)] / E_{t+1}[exp(-w_t / 2)],

the right-hand side being the bridge-sampling identity with the geometric
bridge ``sqrt(f_t f_{t+1})`` (Meng & Wong 1996; Bennett's estimator with
that bridge). It uses the replicas at both ends of each link, so it stays
accurate where one-sided importance sampling (``E_t[exp(w_t)]``) is
dominated by rare states, and it costs nothing beyond the swap. The links are
chained from ``log Z`` of the first model (exact by enumeration by default,
or given). Its standard error is the delta method applied to per-run means:
each of the ``n_chains`` independent PTT runs averages its own weights over
the steps, and the spread of those run averages (their influence on
``log Z_t``, summed over the links below ``t``) gives the variance. Time
correlations within a run are thus accounted for; the approximation is the
delta method's (first order, good when the runs are many and the relative
spread of their averages is small).

:class:`PTT` is an estimator for :func:`jrbm.fit` that grows its ladder
during training (its docstring says how).

Reference:
  N. Béreux, A. Decelle, C. Furtlehner, L. Rosset and B. Seoane, "Fast,
  accurate training and sampling of restricted Boltzmann machines",
  arXiv:2405.15376 (2024).
  X.-L. Meng and W. H. Wong, "Simulating ratios of normalizing constants via
  a simple identity", Statistica Sinica 6, 1996.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, exact, parallel, rng
from jrbm.estimators import contrast_grad
from jrbm.layers import base as layer_base
from jrbm.model import check, flat_batch, free_energy_unchecked, hidden_input, visible_data, visible_input
from jrbm.params import Model
from jrbm.sampling import draw_rows
from jrbm.tempering import PTState, swap_moves, take_replicas

# --- ladders -----------------------------------------------------------------------------------------


def stack(models) -> Model:
    """A ladder: models of one type and shape stacked along a new leading axis.

    Args:
      models: a non-empty sequence of models (``T`` of them), ordered from the
        earliest (smoothest) to the latest.

    Returns:
      A model of the same type whose every leaf has a leading axis of length ``T``.

    Example:
      >>> import jax, jrbm, jrbm.trajectory as ptt
      >>> models = [jrbm.init_bernoulli(jax.random.key(i), 6, 4) for i in range(3)]
      >>> ptt.stack(models).W.shape
      (3, 6, 4)
    """
    models = list(models)
    if not models:
        raise ValueError("models: expected at least one model, got none")
    first = check(models[0], "models[0]")
    for i, m in enumerate(models[1:], 1):
        check(m, f"models[{i}]")
        if not _checks.same_tree(m, first):
            raise ValueError(f"models[{i}]: expected the type and shapes of models[0] ({type(first).__name__}), got a different model")
    return jax.tree.map(lambda *xs: jnp.stack(xs), *models)


def model_at(ladder: Model, t) -> Model:
    """Model ``t`` of a ladder: an int in ``[-T, T)``, negative counting from the end (a traced ``t`` is not
    range-checked, and JAX clamps it to the ladder).

    Example:
      >>> import jax, jrbm, jrbm.trajectory as ptt
      >>> ladder = ptt.stack([jrbm.init_bernoulli(jax.random.key(i), 6, 4) for i in range(3)])
      >>> ptt.model_at(ladder, -1).W.shape
      (6, 4)
    """
    n_models = check_ladder_axis(ladder)
    if _checks.is_concrete(t):
        a = np.asarray(t)
        if a.shape != () or not np.issubdtype(a.dtype, np.integer) or not -n_models <= int(a) < n_models:
            raise ValueError(f"t: expected an int in [-{n_models}, {n_models}) for a ladder of {n_models} models, got {t!r}")
    return jax.tree.map(lambda x: x[t], ladder)


def check_ladder_axis(ladder, name: str = "ladder") -> int:
    """The ladder's length ``T``, refusing a model without a ladder axis (``W`` of one dimension more than its layers)."""
    if not (hasattr(ladder, "W") and hasattr(ladder, "visible")):
        raise TypeError(f"{name}: expected a stacked model (jrbm.trajectory.stack of models), got {type(ladder).__name__}")
    # A stacked layer's shape carries the ladder axis too: W has one dimension fewer than the two shapes together
    # when stacked, as many when not.
    layer_dims = len(getattr(ladder.visible, "shape", ())) + len(getattr(ladder.hidden, "shape", ()))
    if getattr(ladder.W, "ndim", 0) + 1 != layer_dims:
        raise ValueError(
            f"{name}: expected a ladder axis in front of every leaf, got W of shape {tuple(getattr(ladder.W, 'shape', ()))} "
            "with layers of the same rank: an unstacked model; use jrbm.trajectory.stack"
        )
    return int(ladder.W.shape[0])


def check_ladder(ladder, name: str = "ladder") -> int:
    """Validates a ladder (a stacked model, :func:`stack`); returns its length ``T``."""
    if not (hasattr(ladder, "W") and hasattr(ladder, "visible") and hasattr(ladder, "assemble")):
        raise TypeError(f"{name}: expected a stacked model (jrbm.trajectory.stack of models), got {type(ladder).__name__}")
    leaves = jax.tree.leaves(ladder)
    if any(getattr(x, "ndim", 0) < 1 for x in leaves):
        raise ValueError(f"{name}: expected every leaf to have a leading ladder axis (use jrbm.trajectory.stack)")
    n = int(leaves[0].shape[0])
    if any(x.shape[0] != n for x in leaves):
        raise ValueError(f"{name}: expected every leaf to have the same leading length, got {[x.shape[0] for x in leaves]}")
    if n < 1:
        raise ValueError(f"{name}: expected at least one model, got an empty ladder")
    check(model_at(ladder, 0), f"{name}[0]")
    _checks.finite_leaves(name, ladder)  # every model's values (an index's first entry is the model's)
    return n


# --- the sampler ---------------------------------------------------------------------------------------


class PTTState(PTState):
    """The state of ``n_chains`` independent PTT runs on a ladder of ``T`` models.

    Laid out as :class:`jrbm.tempering.PTState`, with models in place of
    temperatures (its ``swap_rates`` and mesh layout too; a rate near 0 is a
    gap in the ladder: save models more often there).

    Attributes:
      chains: ``(n_chains, T, *visible.shape)`` visible states; ``chains[:, t]``
        is the replica of model ``t``, ``chains[:, -1]`` that of the latest model.
      step: int32 scalar, the number of swap rounds so far; its parity picks
        the pairs of the next round.
      n_accepted: ``(T - 1,)`` for each pair ``(t, t + 1)``, the sum over
        rounds of the fraction of runs whose swap was accepted.
      n_proposed: ``(T - 1,)`` the number of rounds in which pair ``(t, t + 1)`` was proposed.
    """

    __slots__ = ()


def _check_state(ladder: Model, state, n_models: int) -> PTTState:
    if not isinstance(state, PTTState):
        raise TypeError(f"state: expected a jrbm.trajectory.PTTState (from ptt_init), got {type(state).__name__}")
    first = model_at(ladder, 0)
    chains = visible_data(first, state.chains, "state.chains")
    vs = first.visible.shape
    if chains.ndim != 2 + len(vs) or chains.shape[1] != n_models:
        raise ValueError(
            f"state.chains: expected shape (n_chains, {n_models}, {', '.join(map(str, vs))}) for a ladder of {n_models} models, "
            f"got {tuple(chains.shape)}"
        )
    if state.n_accepted.shape != (n_models - 1,) or state.n_proposed.shape != (n_models - 1,):
        raise ValueError(f"state: expected swap counts of shape ({n_models - 1},), got {state.n_accepted.shape}")
    dtype = first.W.dtype
    return PTTState(chains, jnp.asarray(state.step, jnp.int32), state.n_accepted.astype(dtype), state.n_proposed.astype(dtype))


def _slice(ladder: Model, s: slice) -> Model:
    return jax.tree.map(lambda x: x[s], ladder)


def _sweep(key: Array, ladder: Model, v: Array) -> Array:
    """A Gibbs sweep of every replica ``v[:, t]`` (``(n, T, ...)``) under its own model ``t`` of the ladder.

    Each half-sweep draws the noise of every chain and replica in one call
    (:func:`jrbm.layers.base.sample_replicas`).
    """
    key_h, key_v = jax.random.split(key)
    h = layer_base.sample_replicas(key_h, ladder.hidden, _per_model(hidden_input)(ladder, v))
    return layer_base.sample_replicas(key_v, ladder.visible, _per_model(visible_input)(ladder, h))


def _per_model(fn):
    """``fn(params, x)`` for every model of a ladder and its replicas ``x[:, t]``: ``(T,) x (n, T, ...) -> (n, T, ...)``."""
    return jax.vmap(fn, in_axes=(0, 1), out_axes=1)


_free_energies = _per_model(free_energy_unchecked)  # models (T,), states (n, T, ...) -> (n, T)


def _step(key: Array, ladder: Model, state: PTTState, k: int):
    """One PTT step on checked inputs; returns ``(state, w_forward, w_reverse)``.

    ``w_forward[n, t] = F_t(v_t) - F_{t+1}(v_t)`` and ``w_reverse[n, t] =
    F_{t+1}(v_{t+1}) - F_t(v_{t+1})`` are the log importance weights of the
    replicas after the sweeps (each a draw of its own model), before the swaps.
    """
    n_models = state.chains.shape[1]
    dtype = state.chains.dtype
    key_gibbs, key_swap = jax.random.split(key)

    def body(v, key):
        return _sweep(key, ladder, v), None

    v, _ = lax.scan(body, state.chains, jax.random.split(key_gibbs, k))
    if n_models == 1:
        empty = jnp.zeros((v.shape[0], 0), dtype)
        return state._replace(chains=v, step=state.step + 1), empty, empty
    lower, upper = _slice(ladder, slice(None, -1)), _slice(ladder, slice(1, None))
    f_self = _free_energies(ladder, v)  # F_t(v_t)
    f_down = _free_energies(upper, v[:, :-1])  # F_{t+1}(v_t)
    f_up = _free_energies(lower, v[:, 1:])  # F_t(v_{t+1})
    w_forward = f_self[:, :-1] - f_down
    w_reverse = f_self[:, 1:] - f_up
    log_r = w_forward + w_reverse  # (n_chains, T - 1)
    accept, active, source = swap_moves(key_swap, log_r, state.step)
    chains = take_replicas(v, source)
    new = PTTState(
        chains=chains,
        step=state.step + 1,
        n_accepted=state.n_accepted + jnp.mean(accept.astype(dtype), axis=0),
        n_proposed=state.n_proposed + active.astype(dtype),
    )
    return new, w_forward, w_reverse


_step_jit = rng.jit(_step, static_argnames=("k",))


def ptt_init(key: Array, ladder: Model, data: ArrayLike, n_chains: int = 100) -> PTTState:
    """A :class:`PTTState` whose ``n_chains x T`` replicas start at rows of ``data`` drawn with replacement.

    Args:
      key: a ``jax.random`` key.
      ladder: ``T`` stacked models (:func:`stack`).
      data: ``(n, *visible.shape)`` start states to draw from (training data,
        or exact draws of the first model).
      n_chains: independent PTT runs, a positive int.

    Returns:
      A :class:`PTTState` with ``chains`` of shape ``(n_chains, T, *visible.shape)`` and zero counts.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.trajectory as ptt
      >>> ladder = ptt.stack([jrbm.init_bernoulli(jax.random.key(i), 6, 4) for i in range(3)])
      >>> ptt.ptt_init(jax.random.key(1), ladder, jnp.ones((10, 6)), n_chains=5).chains.shape
      (5, 3, 6)
    """
    _checks.key("key", key)
    n = _checks.positive_int("n_chains", n_chains)
    t = check_ladder(ladder)
    first = model_at(ladder, 0)
    data = flat_batch(first, data, "data")
    chains = draw_rows(key, data, (n, t))
    zeros = jnp.zeros((t - 1,), first.W.dtype)
    return PTTState(chains=chains, step=jnp.zeros((), jnp.int32), n_accepted=zeros, n_proposed=zeros)


def ptt_step(key: Array, ladder: Model, state: PTTState, k: int = 1) -> PTTState:
    """One PTT step: ``k`` Gibbs sweeps of every replica under its own model, then one round of swaps.

    Args:
      key: a ``jax.random`` key.
      ladder: ``T`` stacked models (:func:`stack`).
      state: a :class:`PTTState` for this ladder.
      k: Gibbs sweeps per step (static, >= 1).

    Returns:
      The new :class:`PTTState`.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.trajectory as ptt
      >>> ladder = ptt.stack([jrbm.init_bernoulli(jax.random.key(i), 6, 4) for i in range(3)])
      >>> state = ptt.ptt_init(jax.random.key(1), ladder, jnp.ones((10, 6)), n_chains=8)
      >>> state = ptt.ptt_step(jax.random.key(2), ladder, state)
      >>> state.chains.shape, state.swap_rates.shape
      ((8, 3, 6), (2,))
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    state = _check_state(ladder, state, check_ladder(ladder))
    return _step_jit(key, ladder, state, k)[0]


def ptt_chain(key: Array, ladder: Model, state: PTTState, n_steps: int, *, k: int = 1, trajectory: bool = False):
    """Runs ``n_steps`` :func:`ptt_step` under ``lax.scan``.

    Step ``t`` (from 0) uses ``jax.random.fold_in(key, t)``.

    Args:
      key: a ``jax.random`` key.
      ladder: ``T`` stacked models (:func:`stack`).
      state: a :class:`PTTState` for this ladder.
      n_steps: number of steps, a positive int.
      k: Gibbs sweeps per step (static, >= 1).
      trajectory: also return the replicas of the latest model after every step.

    Returns:
      The final :class:`PTTState`; with ``trajectory=True`` the pair
      ``(state, samples)``, ``samples`` of shape ``(n_steps, n_chains, *visible.shape)``.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.trajectory as ptt
      >>> ladder = ptt.stack([jrbm.init_bernoulli(jax.random.key(i), 6, 4) for i in range(3)])
      >>> state = ptt.ptt_init(jax.random.key(1), ladder, jnp.ones((10, 6)), n_chains=8)
      >>> state, samples = ptt.ptt_chain(jax.random.key(2), ladder, state, 50, trajectory=True)
      >>> samples.shape
      (50, 8, 6)
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    n_steps = _checks.static_positive_int("n_steps", n_steps)
    trajectory = _checks.flag("trajectory", trajectory)
    state = _check_state(ladder, state, check_ladder(ladder))
    return _chain(key, ladder, state, n_steps, k, trajectory)


@rng.jit(static_argnames=("n_steps", "k", "trajectory"))
def _chain(key, ladder, state, n_steps, k, trajectory):
    def body(carry, _):
        s, t = carry
        s, _, _ = _step(jax.random.fold_in(key, t), ladder, s, k)
        return (s, t + 1), (s.chains[:, -1] if trajectory else None)

    (state, _), traj = lax.scan(body, (state, jnp.zeros((), jnp.uint32)), None, length=n_steps)
    return (state, traj) if trajectory else state


# --- log Z along the ladder --------------------------------------------------------------------------


class LadderLogZ(NamedTuple):
    """``log Z`` of every model of a ladder (:func:`log_partition_along`).

    Attributes:
      log_z: ``(T,)`` estimates of ``log Z_t``; ``log_z[0]`` is the given or exact start.
      std: ``(T,)`` their standard errors (``std[0]`` is the start's, 0 when exact).
      links: ``(T - 1,)`` estimates of ``log Z_{t+1} - log Z_t``.
      links_std: ``(T - 1,)`` their standard errors.
      state: the :class:`PTTState` after the run (pass it to a next call to continue).
    """

    log_z: Array
    std: Array
    links: Array
    links_std: Array
    state: PTTState


def log_partition_along(
    key: Array,
    ladder: Model,
    state: PTTState,
    n_steps: int,
    *,
    k: int = 1,
    burn_in: int = 0,
    log_z0: ArrayLike | None = None,
    log_z0_std: ArrayLike = 0.0,
) -> LadderLogZ:
    """``log Z`` of every model of a ladder, chained from the first by bridge sampling between neighbours.

    Runs ``burn_in`` PTT steps, then ``n_steps`` more whose replicas (after
    the sweeps, before the swaps) give, for each link ``(t, t + 1)``, each
    run's averages of ``exp(w_t / 2)`` at replica ``t`` and of
    ``exp(-w_t / 2)`` at replica ``t + 1``, ``w_t = F_t - F_{t+1}``; their
    ratio estimates ``Z_{t+1} / Z_t`` (module docstring). The standard errors
    come from the spread of the ``n_chains`` independent runs' averages (so
    time correlation within a run is accounted for) by the delta method,
    including the covariance between links; they are first-order
    approximations, reliable with tens of runs or more.

    Args:
      key: a ``jax.random`` key.
      ladder: ``T`` stacked models (:func:`stack`).
      state: a :class:`PTTState` (:func:`ptt_init`); at least 2 runs.
      n_steps: measured steps, a positive int.
      k: Gibbs sweeps per step (static, >= 1).
      burn_in: unmeasured steps first, an int >= 0.
      log_z0: ``log Z`` of the first model; ``None`` computes it by
        enumeration (:func:`jrbm.exact.log_partition`), which needs one layer
        of at most ``2^24`` states. Otherwise put a model whose ``log Z`` is
        known first, e.g. the first model with ``W = 0``, whose
        ``log Z = cgf_vis(0) + cgf_hid(0)`` (:func:`jrbm.ais.base_log_partition`
        of it), or pass an AIS estimate here.
      log_z0_std: the standard error of ``log_z0`` (added in quadrature).

    Returns:
      A :class:`LadderLogZ`.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.trajectory as ptt
      >>> models = [jrbm.init_bernoulli(jax.random.key(0), 6, 4)._replace(W=s * jnp.ones((6, 4))) for s in (0.0, 0.2, 0.4)]
      >>> ladder = ptt.stack(models)
      >>> state = ptt.ptt_init(jax.random.key(1), ladder, jnp.zeros((1, 6)), n_chains=64)
      >>> res = ptt.log_partition_along(jax.random.key(2), ladder, state, 200, burn_in=50)
      >>> exact = jrbm.exact.log_partition(models[-1])
      >>> bool(abs(res.log_z[-1] - exact) < 5 * res.std[-1] + 0.01)
      True
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    n_steps = _checks.positive_int("n_steps", n_steps)
    if isinstance(burn_in, (bool, np.bool_)) or not isinstance(burn_in, (int, np.integer)) or burn_in < 0:
        raise ValueError(f"burn_in: expected an int >= 0, got {burn_in!r}")
    n_models = check_ladder(ladder)
    state = _check_state(ladder, state, n_models)
    if state.chains.shape[0] < 2:
        raise ValueError(f"state.chains: expected at least 2 independent runs for an error bar, got {state.chains.shape[0]}")
    dtype = state.chains.dtype
    if log_z0 is None:
        log_z0 = exact.log_partition(model_at(ladder, 0))
    log_z0 = jnp.asarray(log_z0, dtype)
    log_z0_std = jnp.asarray(log_z0_std, dtype)
    if log_z0.shape != () or log_z0_std.shape != ():
        raise ValueError(f"log_z0, log_z0_std: expected scalars, got shapes {log_z0.shape} and {log_z0_std.shape}")
    if _checks.is_concrete(log_z0) and not bool(jnp.isfinite(log_z0)):
        raise ValueError(f"log_z0: expected a finite value, got {float(log_z0)}")
    if _checks.is_concrete(log_z0_std) and not bool(jnp.isfinite(log_z0_std) & (log_z0_std >= 0)):
        raise ValueError(f"log_z0_std: expected a finite standard error >= 0, got {float(log_z0_std)}")
    if burn_in:
        state = _chain(jax.random.fold_in(key, 1), ladder, state, int(burn_in), k, False)
    return _along(jax.random.fold_in(key, 0), ladder, state, n_steps, k, log_z0, log_z0_std)


@rng.jit(static_argnames=("n_steps", "k"))
def _along(key, ladder, state, n_steps, k, log_z0, log_z0_std):
    n_chains, n_models = state.chains.shape[:2]
    dtype = state.chains.dtype

    def body(carry, _):
        s, t, acc_f, acc_r = carry
        s, w_f, w_r = _step(jax.random.fold_in(key, t), ladder, s, k)
        return (s, t + 1, jnp.logaddexp(acc_f, w_f / 2), jnp.logaddexp(acc_r, w_r / 2)), None

    init = jnp.full((n_chains, n_models - 1), -jnp.inf, dtype)
    (state, _, acc_f, acc_r), _ = lax.scan(body, (state, jnp.zeros((), jnp.uint32), init, init), None, length=n_steps)
    log_n = jnp.log(jnp.asarray(n_chains, dtype))
    log_a = jax.nn.logsumexp(acc_f, axis=0) - log_n  # log mean over runs of run sums (the 1/n_steps cancels in the ratio)
    log_b = jax.nn.logsumexp(acc_r, axis=0) - log_n
    links = log_a - log_b
    # Influence of run c on each link (delta method on log of a mean): a_c / A - b_c / B; summed over links below t.
    z = jnp.exp(acc_f - log_a) - jnp.exp(acc_r - log_b)  # (n_chains, T - 1), mean zero over runs
    cum = jnp.cumsum(z, axis=1)
    var_cum = jnp.var(cum, axis=0, ddof=1) / n_chains
    links_std = jnp.sqrt(jnp.var(z, axis=0, ddof=1) / n_chains)
    log_z = log_z0 + jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum(links)])
    std = jnp.sqrt(jnp.concatenate([jnp.zeros((1,), dtype), var_cum]) + log_z0_std**2)
    return LadderLogZ(log_z, std, links, links_std, state)


# --- the estimator -----------------------------------------------------------------------------------


class PTTTrainState(NamedTuple):
    """The state of :class:`PTT`: the saved models, the replicas and the saving schedule.

    Attributes:
      ladder: ``T`` stacked models; slots ``0 .. T - 2`` hold saved models
        (those at ``n_saved`` and above are copies of the newest saved one),
        slot ``T - 1`` the parameters of the last update.
      sampler: the :class:`PTTState` of the replicas (``chains[:, -1]`` samples the current model);
        its swap counts restart at every save.
      n_saved: int32, the number of distinct saved models (``1 .. T - 1``).
      spacing: int32, updates between saves (doubles at every thinning).
      since: int32, updates since the last save.
    """

    ladder: Any
    sampler: PTTState
    n_saved: Array
    spacing: Array
    since: Array

    def partition_specs(self, mesh):
        """The replicas split over the mesh's ``"data"`` axis; the ladder and counters replicated."""
        return PTTTrainState(
            jax.tree.map(lambda _: parallel.P(), self.ladder),
            self.sampler.partition_specs(mesh),
            parallel.P(),
            parallel.P(),
            parallel.P(),
        )


def _set_slot(ladder: Model, t: int, params: Model) -> Model:
    return jax.tree.map(lambda x, p: x.at[t].set(p.astype(x.dtype)), ladder, params)


def _save(state: PTTTrainState, params: Model) -> PTTTrainState:
    """Appends ``params`` to the saved models, first thinning them to every other one when all slots are taken.

    With an odd number of slots, the thinned models end at the newest saved
    one, ``spacing`` updates before ``params``: then ``params`` is not on the
    doubled grid and is not saved; the next save comes ``spacing`` updates
    later, so the saves stay evenly spaced.
    """
    ladder, sampler = state.ladder, state.sampler
    n_models = sampler.chains.shape[1]
    n_slots = n_models - 1
    full = state.n_saved >= n_slots
    off_grid = full & (n_slots % 2 == 1)  # params falls between two points of the doubled spacing
    j = jnp.arange(n_slots, dtype=jnp.int32)
    kept = jnp.where(full, jnp.int32((n_slots + 1) // 2), state.n_saved)
    src = jnp.where(full, jnp.minimum(2 * j, jnp.int32(n_slots - 1)), j)  # above kept: the newest kept model
    fill = (j >= kept) & ~off_grid  # the new model's slot and the empty ones above it

    def leaf(x, p):
        saved = x[:n_slots][src]
        fresh = jnp.broadcast_to(p.astype(x.dtype), saved.shape)
        saved = jnp.where(fill.reshape((-1,) + (1,) * (x.ndim - 1)), fresh, saved)
        return jnp.concatenate([saved, x[n_slots:]])

    ladder = jax.tree.map(leaf, ladder, params)
    chains = sampler.chains
    moved = chains[:, :n_slots][:, src]
    top = jnp.broadcast_to(chains[:, -1:], moved.shape)  # replicas of the current model start the new slots
    moved = jnp.where(fill.reshape((1, -1) + (1,) * (chains.ndim - 2)), top, moved)
    chains = jnp.concatenate([moved, chains[:, n_slots:]], axis=1)
    zeros = jnp.zeros_like(sampler.n_accepted)
    sampler = PTTState(chains, sampler.step, zeros, zeros)
    n_saved = jnp.where(off_grid, kept, jnp.minimum(kept + 1, jnp.int32(n_slots)))
    since = jnp.where(off_grid, state.spacing, jnp.zeros_like(state.since))  # updates since the newest kept save
    return PTTTrainState(ladder, sampler, n_saved, jnp.where(full, 2 * state.spacing, state.spacing), since)


class _PTTFields(NamedTuple):
    n_models: int = 10
    save_every: int = 10
    k: int = 1
    n_chains: int = 100


class PTT(_PTTFields):
    """Parallel-trajectory-tempering estimator: persistent replicas of models saved along this training run.

    The state (:class:`PTTTrainState`) holds a ladder of ``n_models`` slots:
    ``n_models - 1`` saved models and, in the last slot, the current
    parameters, written there at every update. ``init`` saves the initial
    model; then every ``spacing`` updates (``save_every`` at first) the
    current parameters are appended. When all slots are taken, the saved
    models are first thinned to every other one (the initial model always
    stays) and the spacing doubles, so the ladder always spans the whole run
    from its start, with saves evenly spaced in updates. Dropping the oldest
    instead would lose the early, smooth models through which the replicas
    mix, which is the point of the method. Unfilled slots hold copies of the
    newest saved model (swaps between equal models are always accepted).

    Each ``grad`` runs one :func:`ptt_step` on the ladder and takes the model
    term of the loss gradient from the replicas of the current model, with
    ``P(h | v)`` in place of sampled ``h`` as :class:`jrbm.PCD` does. For
    ``log Z`` along the run, pass ``state.ladder`` (``fit(...,
    return_state=True)``) to :func:`log_partition_along`.

    Args:
      n_models: ladder length ``T`` (>= 2).
      save_every: updates between saves before the first thinning (>= 1).
      k: Gibbs sweeps per update (>= 1).
      n_chains: independent PTT runs (>= 1; a multiple of the mesh's ``"data"`` axis on a mesh).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.trajectory as ptt
      >>> est = ptt.PTT(n_models=4, save_every=2, k=1, n_chains=16)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> data = jnp.ones((8, 6))
      >>> state = est.init(jax.random.key(1), params, data)
      >>> grads, state = est.grad(jax.random.key(2), params, data, state)
      >>> grads.W.shape, state.sampler.chains.shape
      ((6, 4), (16, 4, 6))
    """

    __slots__ = ()

    def __new__(cls, n_models: int = 10, save_every: int = 10, k: int = 1, n_chains: int = 100):
        n_models = _checks.static_positive_int("n_models", n_models)
        if n_models < 2:
            raise ValueError(f"n_models: expected at least 2 (one saved model and the current one), got {n_models}")
        return super().__new__(
            cls,
            n_models,
            _checks.static_positive_int("save_every", save_every),
            _checks.static_positive_int("k", k),
            _checks.static_positive_int("n_chains", n_chains),
        )

    def init(self, key: Array, params: Model, data: ArrayLike) -> PTTTrainState:
        """A state whose every slot holds ``params`` and whose replicas start at rows of ``data``."""
        _checks.key("key", key)
        check(params)
        ladder = stack([params] * self.n_models)
        sampler = ptt_init(key, ladder, data, self.n_chains)
        one = jnp.ones((), jnp.int32)
        return PTTTrainState(ladder, sampler, one, jnp.asarray(self.save_every, jnp.int32), jnp.zeros((), jnp.int32))

    def grad(self, key: Array, params: Model, batch: ArrayLike, state: PTTTrainState) -> tuple[Model, PTTTrainState]:
        """The loss gradient of ``batch`` and the next state: one PTT step, the gradient, then a save when due."""
        _checks.key("key", key)
        check(params)
        if not isinstance(state, PTTTrainState):
            raise TypeError(f"state: expected a jrbm.trajectory.PTTTrainState (from PTT.init), got {type(state).__name__}")
        v = flat_batch(params, batch, "batch")
        if check_ladder(state.ladder, "state.ladder") != self.n_models:
            raise ValueError(f"state.ladder: expected {self.n_models} models, got {jax.tree.leaves(state.ladder)[0].shape[0]}")
        first = model_at(state.ladder, 0)
        if not _checks.same_tree(first, params):
            raise ValueError(
                f"state.ladder: expected models like params ({type(params).__name__} of W {tuple(params.W.shape)}), "
                f"got {type(first).__name__} of W {tuple(first.W.shape)}"
            )
        sampler = _check_state(state.ladder, state.sampler, self.n_models)
        return _ptt_grad(key, params, v, state._replace(sampler=sampler), self.k)

    def diagnostics(self, state: PTTTrainState) -> dict[str, Array]:
        """``{"swap_rate": mean acceptance over the distinct pairs since the last save (nan right after a save, when
        none has been proposed), "n_saved": saved models}``."""
        rates = state.sampler.swap_rates
        n_pairs = rates.shape[0]
        distinct = jnp.arange(n_pairs, dtype=jnp.int32) < state.n_saved - 1  # pairs of distinct saved models, and the top pair
        distinct = distinct | (jnp.arange(n_pairs, dtype=jnp.int32) == n_pairs - 1)
        ok = distinct & jnp.isfinite(rates)
        mean = jnp.sum(jnp.where(ok, rates, jnp.zeros_like(rates))) / jnp.maximum(jnp.sum(ok), 1).astype(rates.dtype)
        # nan, not 0, when no pair has been proposed since the last save (0 would read as a gap in the ladder)
        return {"swap_rate": jnp.where(jnp.any(ok), mean, jnp.nan), "n_saved": state.n_saved}


@rng.jit(static_argnames=("k",))
def _ptt_grad(key, params, v, state: PTTTrainState, k: int):
    n_models = state.sampler.chains.shape[1]
    ladder = _set_slot(state.ladder, n_models - 1, params)
    sampler, _, _ = _step(key, ladder, state.sampler, k)
    top = sampler.chains[:, -1]
    grads = contrast_grad(params, v, hidden_input(params, v), top, hidden_input(params, top))
    state = PTTTrainState(ladder, sampler, state.n_saved, state.spacing, state.since + 1)
    state = lax.cond(state.since >= state.spacing, _save, lambda s, p: s, state, params)
    return grads, state


def integrated_autocorrelation_time(x: ArrayLike, c: float = 5.0, mean: float | None = None) -> float:
    """Integrated autocorrelation time of a scalar series, averaged over independent chains (numpy).

    ``tau = 1 + 2 sum_{t >= 1} rho(t)``, the sum cut at Sokal's automatic
    window: the smallest ``M`` with ``M >= c tau(M)``. The autocorrelation is
    estimated by FFT from each chain's deviations from ``mean`` (default: the
    grand mean), and averaged over chains before summing.

    Give ``mean`` when the expectation is known (an exact mode probability, a
    symmetry): deviations from the grand mean make chains that all stay where
    they started look well mixed, deviations from the true mean do not (a
    chain stuck away from it has ``tau`` of the order of the run's length).

    Args:
      x: ``(n_steps,)`` or ``(n_steps, n_chains)`` series.
      c: the window constant (Sokal recommends 4 to 10).
      mean: the series' expectation, if known.

    Returns:
      ``tau`` in steps (1 for independent draws); ``inf`` for a series equal to its mean; at
      most about ``n_steps`` when no window fits (exactly ``n_steps`` for chains that never
      move from a value other than ``mean``).

    Example:
      >>> import numpy as np, jrbm.trajectory as ptt
      >>> x = np.random.default_rng(0).normal(size=(4000, 8))
      >>> 0.8 < ptt.integrated_autocorrelation_time(x) < 1.2
      True
    """
    x = np.asarray(x, np.float64)
    given = x.shape
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] == 0:
        raise ValueError(f"x: expected shape (n_steps >= 2,) or (n_steps, n_chains >= 1), got {given}")
    _checks.finite("x", x)
    window = "a finite window constant > 0 (Sokal recommends 4 to 10)"
    c = _checks.real_in("c", c, 0.0, math.inf, window, open_high=True)
    if c == 0.0:
        raise ValueError(f"c: expected {window}, got {c}")
    if mean is not None:
        mean = _checks.real_in("mean", mean, -math.inf, math.inf, "a finite number", open_high=True)
        if math.isinf(mean):
            raise ValueError(f"mean: expected a finite number, got {mean}")
    n = x.shape[0]
    d = x - (x.mean() if mean is None else float(mean))
    if not np.any(d):
        return math.inf
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(d, n=size, axis=0)
    acf = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n].mean(axis=1)
    acf = acf / acf[0]
    taus = 2 * np.cumsum(acf) - 1
    m = np.arange(n)
    window = np.nonzero(m >= c * taus)[0]
    return float(taus[window[0]] if window.size else taus[-1])


__all__ = [
    "LadderLogZ",
    "PTT",
    "PTTState",
    "PTTTrainState",
    "check_ladder",
    "integrated_autocorrelation_time",
    "log_partition_along",
    "model_at",
    "ptt_chain",
    "ptt_init",
    "ptt_step",
    "stack",
]
