"""Parallel tempering (PT): replicas of the RBM at several inverse temperatures that swap states.

Desjardins, Courville, Bengio, Vincent & Delalleau (2010) run, beside the
model, ``M - 1`` "hotter" copies whose landscape is flatter, and let
neighbouring copies exchange their states, so that the ``beta = 1`` replica
receives samples from other modes instead of staying in the one it started in.
jrbm's replica at inverse temperature ``beta`` is the intermediate model of
:func:`jrbm.model.annealed_free_energy` with the base model
``base = base_rate(params, None)``:

    f_beta(v) = exp(-annealed_free_energy(base, params, beta, v))
              = exp(-(1 - beta) U_base(v) - beta U(v) + cgf_hid_beta(beta I_hid(v))),

with the layer functions of :mod:`jrbm.layers` (physical energy,
``-E_tutorial`` of Cheng eqs. 2.3 and 3.3). The base's visible layer is the
layer's neutral choice (uniform for Bernoulli, Spin and Potts units; the
model's own Gaussian), and the hidden layer interpolates from no fields to its
own, so every replica is a proper density for any pairing of layers whose
model is one (README, "Layers": with real-valued layers on both sides, ``W``
must stay small against their curvatures). For a
BB-RBM this is plain tempering ``exp(-beta energy)`` with ``h`` summed out.

One :func:`pt_step` is

1. ``k`` block-Gibbs sweeps of every replica, vmapped over the temperature
   axis: ``h ~ p_beta(h | v)``, ``v ~ p_beta(v | h)`` of
   :func:`jrbm.model.interpolate` (the two conditionals of ``f_beta``). A
   layer's noise does not depend on its parameters, so each half-sweep draws
   the noise of every chain and replica in one call from one key;
2. one round of swap proposals between neighbouring temperatures, using the
   deterministic even/odd alternation ("DEO"): round ``t`` proposes the
   disjoint pairs ``(m, m + 1)`` with ``m = t mod 2, t mod 2 + 2, ...`` all at
   once, so ``(0, 1), (2, 3), ...`` then ``(1, 2), (3, 4), ...``. With ``M = 2``
   the single pair is proposed every other step.

The swap of ``v_lo`` (at ``beta_lo``) and ``v_hi`` (at ``beta_hi``) is a
Metropolis move on the product ``f_lo(v_lo) f_hi(v_hi)``, accepted with
probability ``min(1, r)`` where::

    log r = log f_lo(v_hi) + log f_hi(v_lo) - log f_lo(v_lo) - log f_hi(v_hi)
          = D(v_lo) - D(v_hi),    D(v) = log f_hi(v) - log f_lo(v)
          = (beta_hi - beta_lo) (U_base(v) - U(v))
            + cgf_hid_hi(beta_hi I_hid(v)) - cgf_hid_lo(beta_lo I_hid(v)).

The state holds only ``v`` (``h`` is redrawn by the next sweep), so by
default (``swap="marginal"``) the swap targets the marginals ``f_beta(v)``.
With ``h`` summed out ``D`` is not linear in beta (the ``cgf`` term), which is
why four free energies are used rather than one energy difference.

``swap="joint"`` swaps instead the joint states ``(v, h)`` that the last sweep
drew (``h ~ p(h | v_prev)``, then ``v ~ p(v | h)``), as Desjardins et al. (2010)
and PyDeep do, with the familiar
``log r = (beta_hi - beta_lo) (G(v_hi, h_hi) - G(v_lo, h_lo))``, ``G = energy -
U_base_vis - U_base_hid``, linear in beta (:func:`joint_log_ratios`). It needs
no ``cgf``: on a CPU, where the two swap free energies of every state cost
about a quarter of a k=1 step of a wide model, a joint swap round is nearly
free. A free energy averages the joint density over ``h``, so marginal swaps
are accepted more often; ``state.swap_rates`` shows by how much.

The normalising constants cancel in ``r``; each swap leaves the product
distribution invariant (detailed balance), and so does each sweep (for joint
swaps: of the joint distributions; the next sweep then redraws ``h`` given
``v``), so the ``beta = 1`` replica samples the model.

Several independent PT runs are a leading chain axis: the state's ``chains``
have shape ``(n_chains, M, *visible.shape)``, ``chains[:, -1]`` being the
``beta = 1`` replica.

:class:`PT` is the estimator of :mod:`jrbm.estimators`'s interface (CD, PCD):
the model term of the loss gradient comes from the ``beta = 1`` replicas of its
persistent chains, one :func:`pt_step` per update.

References:
  G. Desjardins, A. Courville, Y. Bengio, P. Vincent and O. Delalleau,
  "Tempered Markov chain Monte Carlo for training of restricted Boltzmann
  machines", AISTATS 2010.
  O. Brügge, A. Fischer and C. Igel, "The flip-the-state transition operator
  for restricted Boltzmann machines", Machine Learning 93, 2013 (PT with ``M``
  equally spaced inverse temperatures).
  S. Syed, A. Bouchard-Côté, G. Deligiannidis and A. Doucet, "Non-reversible
  parallel tempering", JRSS B 84, 2022 (the even/odd swap schedule).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, parallel, rng
from jrbm.estimators import contrast_grad
from jrbm.layers import base as layer_base
from jrbm.model import (
    annealed_log_ratio,
    base_rate,
    check,
    couple_to_visible,
    coupling,
    flat_batch,
    hidden_input,
    interpolated_layers,
    visible_data,
)
from jrbm.params import Model
from jrbm.sampling import draw_rows


class PTState(NamedTuple):
    """The state of ``n_chains`` independent parallel-tempering runs of ``M`` replicas each.

    Attributes:
      chains: ``(n_chains, M, *visible.shape)`` visible states; ``chains[:, m]`` is
        the replica at ``betas[m]``, ``chains[:, -1]`` the model (``beta = 1``).
      step: int32 scalar, the number of swap rounds so far; its parity picks
        the pairs of the next round.
      n_accepted: ``(M - 1,)`` for each pair ``(m, m + 1)``, the sum over
        rounds of the fraction of chains whose swap was accepted.
      n_proposed: ``(M - 1,)`` the number of rounds in which pair ``(m, m + 1)``
        was proposed.
    """

    chains: Array
    step: Array
    n_accepted: Array
    n_proposed: Array

    @property
    def swap_rates(self) -> Array:
        """``(M - 1,)`` acceptance rate of swaps between ``betas[m]`` and ``betas[m + 1]`` so far (nan if never proposed).

        Rates near 0 mean a gap in the ladder (add temperatures there); the
        usual target is a rate of roughly 0.2 to 0.5 for every pair.
        """
        proposed = self.n_proposed
        return jnp.where(proposed > 0, self.n_accepted / jnp.maximum(proposed, 1), jnp.nan)

    def partition_specs(self, mesh):
        """How :mod:`jrbm.parallel` lays the state out: the runs split over the mesh's ``"data"`` axis, the rest replicated."""
        return type(self)(parallel.row_spec(mesh, self.chains.ndim), parallel.P(), parallel.P(), parallel.P())


def temperature_ladder(betas, dtype=None) -> Array:
    """Validates inverse temperatures; returns them as a 1-D array in ``dtype``.

    Args:
      betas: an int ``M`` (``M`` temperatures equally spaced in ``[0, 1]``, the
        last 1, as Brügge, Fischer & Igel 2013; ``M = 1`` is ``[1.0]``, plain
        persistent chains), or a 1-D array of values in ``[0, 1]``,
        non-decreasing, ending at exactly 1. Values of a traced array are not
        checked.
      dtype: the result's dtype (default: the default float dtype).

    Example:
      >>> import jrbm.tempering
      >>> jrbm.tempering.temperature_ladder(5).tolist()
      [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
    return _checks.schedule("betas", betas, dtype, from_zero=False)


def swap_log_ratio(params: Model, beta_lo: ArrayLike, beta_hi: ArrayLike, v_lo: ArrayLike, v_hi: ArrayLike) -> Array:
    """``log r`` of swapping ``v_lo`` (at ``beta_lo``) with ``v_hi`` (at ``beta_hi``); accept with ``min(1, r)``.

    ``log f_lo(v_hi) + log f_hi(v_lo) - log f_lo(v_lo) - log f_hi(v_hi)`` with
    ``log f = -annealed_free_energy(base_rate(params, None), params, beta, .)``,
    computed as ``D(v_lo) - D(v_hi)`` (module docstring). Broadcasts over
    leading batch dimensions of the betas and the states.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.tempering
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3)
      >>> v = jnp.array([1.0, 0.0, 1.0, 1.0])
      >>> float(jrbm.tempering.swap_log_ratio(params, 0.5, 1.0, v, v))
      0.0
    """
    check(params)
    dtype = params.W.dtype
    v_lo, v_hi = visible_data(params, v_lo, "v_lo"), visible_data(params, v_hi, "v_hi")
    beta_lo, beta_hi = jnp.asarray(beta_lo, dtype), jnp.asarray(beta_hi, dtype)
    base = base_rate(params, None)
    d_lo = annealed_log_ratio(base, params, v_lo, hidden_input(params, v_lo), beta_lo, beta_hi)
    d_hi = annealed_log_ratio(base, params, v_hi, hidden_input(params, v_hi), beta_lo, beta_hi)
    return d_lo - d_hi


def _check_state(params: Model, state, n_temps: int) -> PTState:
    """``state`` validated against ``params`` and ``n_temps``, its chains cast to the parameters' dtype."""
    if not isinstance(state, PTState):
        raise TypeError(f"state: expected a jrbm.tempering.PTState (from PT.init or pt_init), got {type(state).__name__}")
    chains = visible_data(params, state.chains, "state.chains")
    vs = params.visible.shape
    if chains.ndim != 2 + len(vs) or chains.shape[1] != n_temps:
        raise ValueError(
            f"state.chains: expected shape (n_chains, {n_temps}, {', '.join(map(str, vs))}) for {n_temps} temperatures, "
            f"got {tuple(chains.shape)}"
        )
    return state._replace(chains=chains)


SWAPS = ("marginal", "joint")
"""The swap moves of :func:`pt_step`: of visible states by their free energies, or of joint states ``(v, h)`` by their energies."""


def check_swap(swap) -> str:
    """``swap`` validated: one of :data:`SWAPS`."""
    if not isinstance(swap, str) or swap not in SWAPS:
        raise ValueError(f"swap: expected one of {', '.join(map(repr, SWAPS))}, got {swap!r}")
    return swap


@rng.jit(static_argnames=("k", "swap"))
def _pt_step(
    key: Array, params: Model, state: PTState, betas: Array, k: int, x: Array | None = None, swap: str = "marginal"
) -> tuple[PTState, Array]:
    """:func:`pt_step` returning also the model's hidden inputs ``I_hid(v)`` of the new chains, ``(n_chains, M, *hidden.shape)``.

    ``x``: the hidden inputs of ``state.chains`` when the caller has them (a
    chain of steps carries them), else computed here.

    Compiled once per shape and ``k``, so eager calls do not re-trace the sweeps;
    callers check ``state`` first (:func:`_check_state`).
    """
    dtype = params.W.dtype
    n_temps = betas.shape[0]
    chains = state.chains.astype(dtype)
    base = base_rate(params, None)
    vis, hid = params.visible, params.hidden
    # The replicas' visible layers (leaves with a leading M axis) and statistic scales, as visible states broadcast.
    replicas_v, scales_v, replicas_h, scales_h = jax.vmap(interpolated_layers, in_axes=(None, None, 0))(base, params, betas)

    def per_replica(scale, shape):  # a scalar scale per replica, or one per unit: (M, *shape) either way
        scale = scale.reshape((n_temps,) + (1,) * len(shape)) if scale.ndim == 1 else scale
        return betas.reshape((n_temps,) + (1,) * len(shape)) * scale

    field_scale_v, field_scale_h = per_replica(scales_v, vis.shape), per_replica(scales_h, hid.shape)
    key_gibbs, key_swap = jax.random.split(key)

    def sweep(carry, key):
        _, x, _ = carry
        key_h, key_v = jax.random.split(key)
        h = layer_base.sample_replicas(key_h, replicas_h, field_scale_h * x)  # replica m: input beta_m scale I_hid(v)
        field = field_scale_v * couple_to_visible(params, hid.statistic(h))
        v = layer_base.sample_replicas(key_v, replicas_v, field)
        return (v, hidden_input(params, v), h if swap == "joint" else None), None

    x0 = hidden_input(params, chains) if x is None else x
    h0 = jnp.zeros(x0.shape[:2] + hid.shape, dtype) if swap == "joint" else None
    (v, x, h), _ = lax.scan(sweep, (chains, x0, h0), jax.random.split(key_gibbs, k))

    # Swap round: pairs (m, m + 1) with m = step mod 2 (mod 2); swap_moves drops the other pairs.
    if swap == "joint":  # the joint states (v, h) of the last sweep, h the draw that v was drawn from
        log_r = joint_log_ratios(base, params, v, h, x, betas)
    else:  # only the active pairs' ratios are computed (plain differences of the hidden cgf), the others are -inf
        log_r = _active_log_ratios(base, params, v, x, betas, state.step % 2)  # (n_chains, M - 1)
    accept, active, source = swap_moves(key_swap, log_r, state.step)
    new = PTState(
        chains=take_replicas(v, source),
        step=state.step + 1,
        n_accepted=state.n_accepted + jnp.mean(accept.astype(dtype), axis=0),
        n_proposed=state.n_proposed + active.astype(dtype),
    )
    return new, take_replicas(x, source)


def swap_moves(key: Array, log_r: Array, step) -> tuple[Array, Array, Array]:
    """The Metropolis decisions of one swap round between neighbouring replicas (shared by PT and PTT).

    ``log_r``: ``(n_chains, M - 1)`` log ratios of the pairs ``(m, m + 1)``;
    the round proposes the pairs with ``m = step (mod 2)``. Returns
    ``(accept, active, source)``: ``accept`` ``(n_chains, M - 1)``, whether
    pair ``m`` swapped (drawn as ``log u < log_r`` with ``u`` uniform of
    ``key``, so ``r >= 1`` is always accepted); ``active`` ``(M - 1,)``, the
    proposed pairs; ``source`` ``(n_chains, M)`` int32, the replica whose
    state position ``m`` takes (``m + 1``, ``m - 1`` or ``m``), for
    :func:`take_replicas`.
    """
    n_pairs = log_r.shape[-1]
    active = (jnp.arange(n_pairs, dtype=jnp.int32) % 2) == (step % 2)
    u = jax.random.uniform(key, log_r.shape, log_r.dtype)
    accept = active & (jnp.log(u) < log_r)
    no = jnp.zeros(accept.shape[:-1] + (1,), jnp.int32)
    taken = accept.astype(jnp.int32)
    from_above = jnp.concatenate([taken, no], axis=-1)  # position m takes m + 1's state
    from_below = jnp.concatenate([no, taken], axis=-1)  # position m takes m - 1's state
    return accept, active, jnp.arange(n_pairs + 1, dtype=jnp.int32) + from_above - from_below


def take_replicas(a: Array, source: Array) -> Array:
    """``a[n, source[n, m]]`` at ``[n, m]``: the states of ``a`` (``(n_chains, M, ...)``) moved by a swap round,
    whole rows gathered in one pass."""
    return jnp.take_along_axis(a, source.reshape(source.shape + (1,) * (a.ndim - 2)), axis=1, mode="clip")


def joint_log_ratios(base: Model, params: Model, v: Array, h: Array, x: Array, betas: Array) -> Array:
    """``(n_chains, M - 1)`` log ratios of swapping the joint states ``(v, h)`` of every pair ``(m, m + 1)``.

    ``v``: ``(n_chains, M, *visible.shape)``, ``h`` their hidden states, ``x =
    I_hid(v)``. With :meth:`jrbm.layers.base.Layer.interpolate`'s replicas,
    ``log f_beta(v, h) = -B(v, h) - beta G(v, h) + const(beta)`` with ``B`` the
    base's energy and ``G = energy - B``, so the ratio is linear in beta:
    ``log r = (beta_hi - beta_lo) (G(v_hi, h_hi) - G(v_lo, h_lo))``, from the
    layers' energies and the coupling ``<s_hid(h), I_hid(v)>`` (elementwise
    work on what the sweep computed; no cumulant generating function).
    """
    vis, hid = params.visible, params.hidden
    g = vis.energy(v) - base.visible.energy(v) + hid.energy(h) - base.hidden.energy(h) - coupling(hid, h, x)  # (n_chains, M)
    return (betas[1:] - betas[:-1]) * (g[:, 1:] - g[:, :-1])


def _active_log_ratios(base: Model, params: Model, v: Array, x: Array, betas: Array, parity) -> Array:
    """The log swap ratios of the pairs ``(m, m + 1)`` with ``m = parity (mod 2)``, ``-inf`` at the other pairs.

    ``v``: ``(n_chains, M, *visible.shape)``, ``x`` their hidden inputs. Each
    state is evaluated where it is, at its own temperature and at its partner's
    (itself at a ladder's end with no partner): ``d_m = log f_partner(v_m) -
    log f_m(v_m)``, and pair ``(m, m + 1)``'s log ratio is ``d_m + d_{m + 1}``.
    No state is gathered or evaluated twice.
    """
    n_temps = betas.shape[0]
    m = jnp.arange(n_temps, dtype=jnp.int32)
    partner = jnp.clip(jnp.where((m - parity) % 2 == 0, m + 1, m - 1), 0, n_temps - 1)
    # (M,) betas broadcast against the (n_chains, M) batch dimensions of x.
    gap = base.visible.energy(v) - params.visible.energy(v)  # (n_chains, M)
    d = annealed_log_ratio(base, params, None, x, betas, betas[partner], accurate=False, energy_gap=gap)
    active = (m[:-1] % 2) == (parity % 2)
    return jnp.where(active, d[:, :-1] + d[:, 1:], -jnp.inf)


def pt_step(key: Array, params: Model, state: PTState, betas, k: int = 1, swap: str = "marginal") -> PTState:
    """One parallel-tempering step: ``k`` Gibbs sweeps of every replica, then one round of swaps.

    Args:
      key: a ``jax.random`` key.
      params: the model (``beta = 1``).
      state: a :class:`PTState` with ``chains`` of shape ``(n_chains, M, *visible.shape)``.
      betas: the ``M`` inverse temperatures (see :func:`temperature_ladder`).
      k: Gibbs sweeps per step (static, >= 1).
      swap: ``"marginal"`` (default): swap visible states by their free
        energies, ``h`` summed out; ``"joint"``: swap the joint states
        ``(v, h)`` of the last sweep by their energies, as Desjardins et al.
        (2010) do. Both leave every replica's distribution invariant. Joint
        swaps cost elementwise work only, where marginal swaps evaluate the
        hidden layer's cumulant generating function at two temperatures for
        every state (on a CPU, about a quarter of a step of a wide model); they
        are accepted less often, since a free energy averages the joint
        density over ``h``.

    Returns:
      The new :class:`PTState`: chains moved and swapped, ``step`` advanced,
      swap counts updated.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.tempering as pt
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> state = pt.pt_init(jax.random.key(1), params, jnp.ones((10, 6)), betas=4, n_chains=8)
      >>> state = pt.pt_step(jax.random.key(2), params, state, betas=4)
      >>> state.chains.shape, state.swap_rates.shape
      ((8, 4, 6), (3,))
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    swap = check_swap(swap)
    check(params)
    betas = temperature_ladder(betas, params.W.dtype)
    state = _check_state(params, state, betas.shape[0])
    return _pt_step(key, params, state, betas, k, swap=swap)[0]


def pt_init(key: Array, params: Model, data: ArrayLike, betas, n_chains: int = 100) -> PTState:
    """A :class:`PTState` whose ``n_chains x M`` replicas start at rows of ``data`` drawn with replacement.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.tempering as pt
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> pt.pt_init(jax.random.key(1), params, jnp.ones((10, 6)), betas=3, n_chains=5).chains.shape
      (5, 3, 6)
    """
    _checks.key("key", key)
    n = _checks.positive_int("n_chains", n_chains)
    check(params)
    dtype = params.W.dtype
    betas = temperature_ladder(betas, dtype)
    m = betas.shape[0]
    data = flat_batch(params, data, "data")
    chains = draw_rows(key, data, (n, m))
    zeros = jnp.zeros((m - 1,), dtype)
    return PTState(chains=chains, step=jnp.zeros((), jnp.int32), n_accepted=zeros, n_proposed=zeros)


def pt_chain(
    key: Array, params: Model, state: PTState, betas, n_steps: int, *, k: int = 1, swap: str = "marginal", trajectory: bool = False, mesh=None
):
    """Runs ``n_steps`` :func:`pt_step` under ``lax.scan``.

    ``k`` and ``swap`` as in :func:`pt_step`. Returns the final
    :class:`PTState`; with ``trajectory=True``, the pair
    ``(state, samples)`` where ``samples`` of shape ``(n_steps, n_chains,
    *visible.shape)`` holds the ``beta = 1`` replicas after every step. Step ``t``
    (from 0) uses ``jax.random.fold_in(key, t)``, derived inside the loop so
    that memory does not grow with ``n_steps``.

    With a ``mesh`` (:class:`jax.sharding.Mesh` with a ``"data"`` axis), the
    independent PT runs (``n_chains``, a multiple of the axis size) are split
    across its devices and the model replicated; the states equal the
    single-device ones inside :func:`jrbm.rng.own_generator` (:mod:`jrbm.parallel`).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.tempering as pt
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> state = pt.pt_init(jax.random.key(1), params, jnp.ones((10, 6)), betas=4, n_chains=8)
      >>> state, samples = pt.pt_chain(jax.random.key(2), params, state, 4, 50, trajectory=True)
      >>> samples.shape
      (50, 8, 6)
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    swap = check_swap(swap)
    n_steps = _checks.static_positive_int("n_steps", n_steps)
    trajectory = _checks.flag("trajectory", trajectory)
    check(params)
    betas = temperature_ladder(betas, params.W.dtype)
    state = _check_state(params, state, betas.shape[0])
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, need=parallel.DATA_AXIS)
        parallel.check_divisible("state.chains", state.chains.shape[0], mesh, "PT runs")
        key, params, betas = parallel.place((key, params, betas), mesh)
        state = parallel.place(state, mesh, parallel.estimator_state_specs(state, mesh))
    return _pt_chain(key, params, state, betas, n_steps, k, swap, trajectory, mesh)


@rng.jit(static_argnames=("n_steps", "k", "swap", "trajectory", "mesh"))
def _pt_chain(key, params, state, betas, n_steps, k, swap, trajectory, mesh):
    """The scan of :func:`pt_chain`, compiled once per shape and settings, so eager calls do not re-trace it."""
    specs = None if mesh is None else parallel.estimator_state_specs(state, mesh)

    def body(carry, _):
        s, x, t = carry
        s, x = _pt_step(jax.random.fold_in(key, t), params, s, betas, k, x, swap)  # the hidden inputs carried, not recomputed
        s = parallel.constrain(s, mesh, specs)
        return (s, x, t + 1), (s.chains[:, -1] if trajectory else None)

    x0 = hidden_input(params, state.chains.astype(params.W.dtype))
    (state, _, _), traj = lax.scan(body, (state, x0, jnp.zeros((), jnp.uint32)), None, length=n_steps)
    return (state, traj) if trajectory else state


class _PTFields(NamedTuple):
    betas: int | tuple | ArrayLike = 10
    k: int = 1
    n_chains: int = 100
    swap: str = "marginal"


class PT(_PTFields):
    """Parallel-tempering estimator (Desjardins et al. 2010): ``n_chains`` PT runs of ``M`` replicas.

    Same interface as :class:`jrbm.CD` and :class:`jrbm.PCD`:
    ``init(key, params, data) -> PTState`` (replicas start at data rows) and
    ``grad(key, params, batch, state) -> (grads, state)``, which advances the
    runs by one :func:`pt_step` and takes the model term of the loss gradient
    (eqs. 2.14-2.16 / 3.14-3.16) from the ``beta = 1`` replicas, with
    ``P(h | v)`` in place of sampled ``h`` as in CD and PCD. Monitor
    ``state.swap_rates``.

    Args:
      betas: an int ``M`` (equally spaced in ``[0, 1]``) or an ascending array
        ending at 1; see :func:`temperature_ladder`. An array (or list) is
        stored as a tuple of the same floats, so that the estimator is
        hashable and :func:`jrbm.fit` reuses its compiled programs.
      k: Gibbs sweeps per update, a positive int.
      n_chains: independent PT runs, a positive int.
      swap: ``"marginal"`` or ``"joint"`` swaps, see :func:`pt_step`. All four
        are validated when the estimator is made.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.tempering
      >>> est = jrbm.tempering.PT(betas=5, k=1, n_chains=20)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> data = jnp.ones((8, 6))
      >>> state = est.init(jax.random.key(1), params, data)
      >>> grads, state = est.grad(jax.random.key(2), params, data, state)
      >>> grads.W.shape, state.chains.shape
      ((6, 4), (20, 5, 6))
    """

    __slots__ = ()

    def __new__(cls, betas: int | tuple | ArrayLike = 10, k: int = 1, n_chains: int = 100, swap: str = "marginal"):
        ladder = temperature_ladder(betas)  # validated now
        if not isinstance(betas, (int, np.integer)) and _checks.is_concrete(ladder):
            # An array or list is kept as a tuple of floats (the same values): a hashable estimator is one
            # whose compiled programs fit reuses; an array field would make every fit call compile anew.
            betas = tuple(float(b) for b in np.asarray(betas, np.float64))
        k, n_chains = _checks.static_positive_int("k", k), _checks.static_positive_int("n_chains", n_chains)
        return super().__new__(cls, betas, k, n_chains, check_swap(swap))

    def init(self, key: Array, params: Model, data: ArrayLike) -> PTState:
        return pt_init(key, params, data, self.betas, self.n_chains)

    def grad(self, key: Array, params: Model, batch: ArrayLike, state: PTState) -> tuple[Model, PTState]:
        _checks.key("key", key)
        check(params)
        betas = temperature_ladder(self.betas, params.W.dtype)
        v = flat_batch(params, batch, "batch")
        state = _check_state(params, state, betas.shape[0])
        return _pt_grad(key, params, v, state, betas, self.k, self.swap)


@rng.jit(static_argnames=("k", "swap"))
def _pt_grad(key: Array, params: Model, v: Array, state: PTState, betas: Array, k: int, swap: str) -> tuple[Model, PTState]:
    """:meth:`PT.grad` after its checks, compiled whole (as the other estimators' updates are)."""
    state, x = _pt_step(key, params, state, betas, k, swap=swap)
    grads = contrast_grad(params, v, hidden_input(params, v), state.chains[:, -1], x[:, -1])
    return grads, state
