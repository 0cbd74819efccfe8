"""Jarzynski-weighted persistent chains: PCD whose chains carry importance weights.

Persistent chains lag behind the model they are meant to sample: the
parameters move at every update and ``k`` Gibbs sweeps do not catch up, which
biases PCD's gradient. Carbone, Hua, Coste & Vanden-Eijnden (2023) correct the
lag with Jarzynski's equality, as in sequential Monte Carlo: every chain
carries a weight ``w_i``, and when the parameters move from ``theta`` to
``theta'`` the weights take the ratio of the two unnormalised densities.

Here a chain is a joint state ``(v_i, h_i)`` of both layers, and the ratio is
that of the joint densities ``exp(-E(v, h))``:

    log w_i <- log w_i + E_theta(v_i, h_i) - E_theta'(v_i, h_i),

with ``E(v, h) = U_vis(v) + U_hid(h) - <s_vis(v), W s_hid(h)>`` the energy
(:func:`jrbm.energy`). If the weighted chains represented ``p_theta(v, h)``,
they now represent ``p_theta'(v, h)``; a Gibbs sweep at ``theta'``
(``v ~ p(v | h)``, then ``h ~ p(h | v)``) leaves ``p_theta'`` invariant, so
the chains then move without changing their weights. The model term of the
loss gradient is the self-normalised average

    E_model[dF/dtheta] ~ sum_i w_i dF(v_i)/dtheta / sum_i w_i,

with ``F`` the free energy, i.e. ``E[s_hid | v_i]`` in place of ``h_i``: the
last ``h_i`` is drawn given ``v_i`` after the weights were set, so averaging
it out is exact. The estimate is consistent as the number of chains grows,
however few sweeps the chains take (its bias is O(1/n_chains), that of
self-normalised importance sampling), whereas PCD's bias is set by the sweeps
and does not shrink with more chains.

The joint energy, rather than the free energy with ``h`` summed out, makes
the weights cheap: ``E_theta'`` needs ``W s_hid(h)``, the input of the
visible layer that the sweep's first half computes anyway, and ``E_theta``
the hidden inputs of the last update (kept in the state), so an update costs
the two products of its sweep and elementwise work, where free-energy weights
need a third product and the hidden layer's cumulant generating function
twice. The joint weights vary more: a free-energy weight is the average of
the joint weight over ``h`` given ``v``, so the effective sample size falls
faster and the chains are resampled more often (after the parameter step of
the tests, the effective sample size of exact draws is 38% of the chains,
against 72% with free-energy weights). The quality table's rerun note in
``benchmarks/RESULTS.md`` gives the final log-likelihoods of both kinds of
weights: alike on the labeled shifter, digits, MNIST-5k and two-Laplace;
lower with the joint weights on bars-and-stripes, where 32 chains fall far
after their peak with either.

The price of importance weights is degeneracy: as the parameters travel, a
few chains take most of the weight. The effective sample size
``ESS = (sum w)^2 / sum w^2`` measures it; when ``ESS / n_chains`` falls below
a threshold the chains are resampled in proportion to their weights
(systematic resampling, :func:`systematic_resample`) and the weights reset to
uniform, after which the sweeps spread the copies out again.

:class:`JarzynskiPCD` is an estimator of :mod:`jrbm.estimators`'s interface.
Its ``grad`` sees only the current parameters, so the state keeps what
``E_theta`` of the chains needs: the two layers of the parameters of the last
update and the chains' hidden inputs under them
(:class:`JarzynskiState`). ``E_theta`` is evaluated at the next update from
these stored arrays rather than right after the draws, so a compiled update
reads each fresh draw once (XLA on a CPU otherwise recomputes a draw inside
every elementwise consumer of it).

Start: the weights are only importance weights if the chains begin at a
distribution whose density is known up to a constant. The paper starts from a
model that is sampled exactly; here ``init`` draws the chains from the model
with the couplings switched off (``W = 0``: each layer with its own fields,
whose states are exact independent draws) and gives them the weights
``E_{W=0}(v, h) - E_theta0(v, h) = <s_vis(v), W s_hid(h)>`` that carry them
to the initial model. With jrbm's small random initial weights these are
close to uniform. Chains started at data rows (PCD's choice) would have no
valid weights.

Reference:
  D. Carbone, M. Hua, S. Coste and E. Vanden-Eijnden, "Efficient training of
  energy-based models using Jarzynski equality", NeurIPS 2023 (arXiv 2305.19414).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, custom_batching, lax
from jax.typing import ArrayLike

from jrbm import _checks, rng
from jrbm.estimators import contrast_grad
from jrbm.layers import base as layer_base
from jrbm.model import check, coupling, flat_batch, hidden_data, hidden_input, visible_data, visible_input
from jrbm.params import Model
from jrbm.sampling import negative_phase


class JarzynskiState(NamedTuple):
    """The state of :class:`JarzynskiPCD`: weighted persistent chains of joint states ``(v, h)``.

    Attributes:
      chains: ``(n_chains, *visible.shape)`` the chains' visible states.
      hidden: ``(n_chains, *hidden.shape)`` their hidden states.
      inputs: ``(n_chains, *hidden.shape)`` the hidden inputs ``I_hid(chains)``
        under the parameters of the last update (their couplings' part of the
        energy ``E_theta``).
      layers: ``(visible, hidden)``, the two layers of the parameters of the
        last update (``init``'s parameters before the first).
      log_weights: ``(n_chains,)`` log importance weights, normalised so that
        the mean weight is 1 (uniform weights are zeros).
      n_resampled: int32 scalar, the number of updates that resampled the chains.

    The next update, at ``theta'``, adds ``E_theta(chains, hidden) -
    E_theta'(chains, hidden)`` to ``log_weights``, ``E_theta`` taken from
    ``layers`` and ``inputs``.
    """

    chains: Array
    hidden: Array
    inputs: Array
    layers: Any
    log_weights: Array
    n_resampled: Array

    def partition_specs(self, mesh):
        """How :mod:`jrbm.parallel` lays the state out: the chains and their per-chain arrays split over
        the mesh's ``"data"`` axis, the layers and the count replicated. Resampling gathers chains across devices."""
        from jrbm import parallel

        return JarzynskiState(
            parallel.row_spec(mesh, self.chains.ndim),
            parallel.row_spec(mesh, self.hidden.ndim),
            parallel.row_spec(mesh, self.inputs.ndim),
            jax.tree.map(lambda _: parallel.P(), self.layers),
            parallel.row_spec(mesh, 1),
            parallel.P(),
        )


def _normalised(log_weights: Array) -> Array:
    """``log_weights`` shifted so that the mean weight is 1 (the estimates do not depend on a common shift)."""
    n = log_weights.shape[-1]
    return log_weights - jax.nn.logsumexp(log_weights, axis=-1, keepdims=True) + jnp.log(jnp.asarray(n, log_weights.dtype))


def _ess(log_weights: Array) -> Array:
    n = log_weights.shape[-1]
    log_ess = 2 * jax.nn.logsumexp(log_weights, axis=-1) - jax.nn.logsumexp(2 * log_weights, axis=-1)
    return jnp.exp(log_ess) / n


def _systematic(key: Array, log_weights: Array) -> Array:
    n = log_weights.shape[0]
    cdf = jnp.cumsum(jax.nn.softmax(log_weights))
    positions = (jnp.arange(n, dtype=cdf.dtype) + jax.random.uniform(key, (), cdf.dtype)) / n
    return jnp.clip(jnp.searchsorted(cdf, positions, side="right"), 0, n - 1).astype(jnp.int32)


def _resample_one(resample: Array, key: Array, log_weights: Array, rows: Array) -> Array:
    """``rows`` resampled by :func:`_systematic` when ``resample``, else as they are: a branch, so that the
    search runs only at the updates that resample."""
    return lax.cond(resample, lambda r: r[_systematic(key, log_weights)], lambda r: r, rows)


@custom_batching.custom_vmap
def _resampled(resample: Array, key: Array, log_weights: Array, rows: Array) -> Array:
    """:func:`_resample_one`, whose ``vmap`` searches only when some member of the batch resamples.

    Under ``vmap`` a ``lax.cond`` on a batched predicate runs both branches;
    here the batch takes one branch on ``any(resample)`` and each member then
    picks its own (:func:`jrbm.fit_ensemble` and the bars-and-stripes protocol
    train many models at once, which rarely resample at the same update).
    """
    return _resample_one(resample, key, log_weights, rows)


@_resampled.def_vmap
def _resampled_vmap(axis_size, in_batched, resample, key, log_weights, rows):
    args = [a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a))) for a, b in zip((resample, key, log_weights, rows), in_batched)]
    out = lax.cond(jnp.any(args[0]), lambda: jax.vmap(_resample_one)(*args), lambda: args[3])
    return out, True


def _check_log_weights(log_weights, name: str = "log_weights") -> Array:
    """Non-empty 1-D float log-weights; concrete ones without NaN or +inf and not all -inf (a -inf is a chain of
    weight 0, but some chain must carry weight)."""
    log_weights = jnp.asarray(log_weights)
    if log_weights.ndim != 1 or log_weights.shape[0] == 0 or not jnp.issubdtype(log_weights.dtype, jnp.floating):
        raise ValueError(
            f"{name}: expected a non-empty 1-D float array (one log-weight per chain), "
            f"got shape {tuple(log_weights.shape)} and dtype {log_weights.dtype}"
        )
    if _checks.is_concrete(log_weights):
        a = np.asarray(log_weights)
        bad = np.isnan(a) | (a == np.inf)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{name}: expected log-weights below +inf and not NaN, got {a[i]} at index {i}")
        if np.all(a == -np.inf):
            raise ValueError(f"{name}: expected at least one finite log-weight, got -inf for every chain")
    return log_weights


def effective_sample_size(log_weights: ArrayLike) -> Array:
    """``(sum w)^2 / sum w^2 / n``: the effective sample size of ``n`` weights as a fraction of ``n``.

    1 for uniform weights, ``1 / n`` when one chain holds all the weight.
    Computed from the log-weights, so it does not overflow.

    Args:
      log_weights: ``(n,)`` log-weights (any common shift).

    Returns:
      A scalar in ``[1 / n, 1]``.

    Example:
      >>> import jax.numpy as jnp, jrbm.jarzynski
      >>> float(jrbm.jarzynski.effective_sample_size(jnp.zeros(4)))
      1.0
      >>> round(float(jrbm.jarzynski.effective_sample_size(jnp.array([0.0, -jnp.inf, -jnp.inf, -jnp.inf]))), 3)
      0.25
    """
    return _ess(_check_log_weights(log_weights))


def systematic_resample(key: Array, log_weights: ArrayLike) -> Array:
    """Indices of ``n`` chains drawn in proportion to their weights by systematic resampling.

    One uniform ``u`` places the ``n`` points ``(j + u) / n``; chain ``i`` is
    taken once for each point in its slice of the cumulative normalised
    weights. Chain ``i`` is therefore taken ``floor(n w_i)`` or
    ``ceil(n w_i)`` times (``w`` normalised to sum 1), ``n w_i`` times in
    expectation, so the mean of any function over the resampled chains is
    the weighted mean in expectation, with less variance than multinomial
    resampling (Kitagawa 1996; Douc, Cappé & Moulines 2005).

    Args:
      key: a ``jax.random`` key.
      log_weights: ``(n,)`` log-weights (any common shift).

    Returns:
      ``(n,)`` int32 indices, non-decreasing.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm.jarzynski
      >>> log_w = jnp.log(jnp.array([0.5, 0.0, 0.25, 0.25]))
      >>> jrbm.jarzynski.systematic_resample(jax.random.key(0), log_w).tolist()
      [0, 0, 2, 3]
    """
    _checks.key("key", key)
    return _systematic(key, _check_log_weights(log_weights))


def _check_state(params: Model, state) -> JarzynskiState:
    if not isinstance(state, JarzynskiState):
        raise TypeError(
            f"state: expected a jrbm.jarzynski.JarzynskiState (from JarzynskiPCD.init), got {type(state).__name__}"
        )
    chains = visible_data(params, state.chains, "state.chains")
    vs, hs = params.visible.shape, params.hidden.shape
    if chains.ndim != 1 + len(vs):
        raise ValueError(f"state.chains: expected shape (n_chains, {', '.join(map(str, vs))}), got {tuple(chains.shape)}")
    n = chains.shape[0]
    hidden = hidden_data(params, state.hidden, "state.hidden")
    for name, x in (("hidden", hidden), ("inputs", state.inputs)):
        if tuple(jnp.shape(x)) != (n,) + hs:
            raise ValueError(
                f"state.{name}: expected shape ({', '.join(map(str, (n,) + hs))}), one row per chain, got {tuple(jnp.shape(x))}"
            )
    _checks.finite("state.inputs", jnp.asarray(state.inputs))
    like = (params.visible, params.hidden)
    shapes = lambda tree: [tuple(jnp.shape(leaf)) for leaf in jax.tree.leaves(tree)]  # noqa: E731
    if not _checks.same_tree(state.layers, like):
        raise ValueError(
            f"state.layers: expected the (visible, hidden) layers of a model like params, "
            f"{jax.tree.structure(like)} with leaves of shapes {shapes(like)}, "
            f"got {jax.tree.structure(state.layers)} with {shapes(state.layers)}"
        )
    if tuple(jnp.shape(state.log_weights)) != (n,):
        raise ValueError(f"state.log_weights: expected shape ({n},), one value per chain, got {tuple(jnp.shape(state.log_weights))}")
    _check_log_weights(state.log_weights, "state.log_weights")
    _checks.finite_leaves("state.layers", state.layers)
    if jnp.shape(state.n_resampled) != ():
        raise ValueError(f"state.n_resampled: expected a scalar, got shape {tuple(jnp.shape(state.n_resampled))}")
    dtype = params.W.dtype
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    return JarzynskiState(
        chains, hidden, cast(state.inputs), jax.tree.map(cast, state.layers), cast(state.log_weights), state.n_resampled
    )


@rng.jit(static_argnames=("k",))
def _jarzynski_grad(key, params, v, state, ess_threshold, k):
    """One update of :class:`JarzynskiPCD`: reweight to ``params``, resample if the ESS is low, sweep, estimate."""
    key_resample, key_v, key_rest = jax.random.split(key, 3)
    vis, hid = params.visible, params.hidden
    x, h = state.chains, state.hidden
    old_vis, old_hid = state.layers
    field = visible_input(params, h)  # W s_hid(h): E_theta' of the chains, then the first half-sweep's input
    e_old = old_vis.energy(x) + old_hid.energy(h) - coupling(old_hid, h, state.inputs)
    e_new = vis.energy(x) + hid.energy(h) - coupling(vis, x, field)
    log_w = _normalised(state.log_weights + e_old - e_new)
    resample = _ess(log_w) < ess_threshold
    field = _resampled(resample, key_resample, log_w, field)
    log_w = jnp.where(resample, jnp.zeros_like(log_w), log_w)
    v_k = layer_base.sample(key_v, vis, field)  # the sweeps: v ~ p(v | h), then h ~ p(h | v), k times
    inputs_k = hidden_input(params, v_k)
    if k > 1:
        key_sweeps, key_rest = jax.random.split(key_rest)
        v_k, inputs_k = negative_phase(key_sweeps, params, inputs_k, k - 1)
    h_k = layer_base.sample(key_rest, hid, inputs_k)
    stack = None if k > 1 else False  # with k = 1, v_k is the fresh draw above (contrast_grad's docstring)
    grads = contrast_grad(params, v, hidden_input(params, v), v_k, inputs_k, jax.nn.softmax(log_w), stack=stack)
    new = JarzynskiState(
        v_k, h_k, inputs_k, (vis, hid), log_w, state.n_resampled + resample.astype(state.n_resampled.dtype)
    )
    return grads, new


class _JarzynskiFields(NamedTuple):
    k: int = 1
    n_chains: int = 100
    ess_threshold: float = 0.5


class JarzynskiPCD(_JarzynskiFields):
    """Jarzynski-weighted persistent contrastive divergence (Carbone, Hua, Coste & Vanden-Eijnden 2023).

    ``n_chains`` persistent chains of joint states ``(v, h)`` with importance
    weights (module docstring). Each update, at parameters ``theta'``:

    1. reweight: ``log w += E_theta(v, h) - E_theta'(v, h)``, ``theta`` being
       the parameters of the previous update (:attr:`JarzynskiState.layers`
       and :attr:`JarzynskiState.inputs`);
    2. if ``ESS / n_chains < ess_threshold``, resample the chains in proportion to
       their weights (:func:`systematic_resample`) and reset the weights to uniform;
    3. ``k`` Gibbs sweeps at ``theta'``, each ``v ~ p(v | h)`` then ``h ~ p(h | v)``;
    4. the loss gradient: the minibatch's mean ``dF/dtheta`` minus the
       chains' weighted mean of ``dF(v)/dtheta`` (with ``P(h | v)`` in place
       of sampled ``h``, as in CD and PCD).

    ``init`` draws the chains exactly from the model with ``W = 0`` and weighs
    them to the initial parameters (module docstring); ``data`` is only
    checked. :meth:`diagnostics` puts the effective sample size in
    :func:`jrbm.fit`'s history. One update costs a PCD-``k`` update, one more
    draw of the hidden layer, and elementwise work on the chains' states for
    the weights. The two couplings in a weight update are computed from
    different products (``<s_hid(h), I_hid(v)>`` and ``<s_vis(v), W s_hid(h)>``):
    on a GPU or TPU, whose float32 products run at reduced precision by
    default, they round differently, which adds noise to the weights; run
    under ``jax.default_matmul_precision("highest")`` there.

    Args:
      k: Gibbs sweeps per update, a positive int.
      n_chains: weighted chains, a positive int (a multiple of the mesh's
        ``"data"`` axis when ``fit`` is given a mesh).
      ess_threshold: resample when the effective sample size, as a fraction
        of ``n_chains``, falls below this, a float in ``[0, 1]``: 0 never
        resamples (pure importance weights), 1 resamples at almost every update.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> est = jrbm.JarzynskiPCD(k=1, n_chains=10, ess_threshold=0.5)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> state = est.init(jax.random.key(1), params, jnp.ones((8, 6)))
      >>> grads, state = est.grad(jax.random.key(2), params, jnp.ones((8, 6)), state)
      >>> state.chains.shape, state.log_weights.shape, grads.W.shape
      ((10, 6), (10,), (6, 4))
      >>> sorted(est.diagnostics(state))
      ['ess', 'n_resampled']
    """

    __slots__ = ()

    def __new__(cls, k: int = 1, n_chains: int = 100, ess_threshold: float = 0.5):
        k = _checks.static_positive_int("k", k)
        n_chains = _checks.static_positive_int("n_chains", n_chains)
        ess_threshold = _checks.real_in("ess_threshold", ess_threshold, 0.0, 1.0, "a float in [0, 1] (a fraction of n_chains)")
        return super().__new__(cls, k, n_chains, ess_threshold)

    def init(self, key: Array, params: Model, data: ArrayLike) -> JarzynskiState:
        """Chains drawn exactly from the model with ``W = 0``, weighted to ``params``.

        Args:
          key: a ``jax.random`` key.
          params: the initial model.
          data: the training data (checked, not used: the chains do not start at data rows).

        Returns:
          A :class:`JarzynskiState` with ``n_resampled = 0``; ``v`` and ``h``
          independent draws of each layer with its own fields, their
          log-weights ``<s_vis(v), W s_hid(h)>`` (normalised).
        """
        _checks.key("key", key)
        check(params)
        flat_batch(params, data, "data")  # checked only: the chains start from the model
        dtype = params.W.dtype
        key_v, key_h = jax.random.split(key)
        n = self.n_chains
        chains = layer_base.sample(key_v, params.visible, jnp.zeros((n,) + params.visible.shape, dtype))
        hidden = layer_base.sample(key_h, params.hidden, jnp.zeros((n,) + params.hidden.shape, dtype))
        inputs = hidden_input(params, chains)
        log_w = _normalised(coupling(params.hidden, hidden, inputs))  # E_{W=0}(v, h) - E_theta0(v, h)
        return JarzynskiState(chains, hidden, inputs, (params.visible, params.hidden), log_w, jnp.zeros((), jnp.int32))

    def grad(self, key: Array, params: Model, batch: ArrayLike, state: JarzynskiState) -> tuple[Model, JarzynskiState]:
        """The loss gradient of ``batch`` and the next state (the steps in the class docstring).

        Args:
          key: a ``jax.random`` key.
          params: the current model.
          batch: ``(..., *visible.shape)`` minibatch.
          state: the :class:`JarzynskiState` of the previous update (or of ``init``).

        Returns:
          ``(grads, state)``: a pytree like ``params``, the estimate of
          ``d/d params`` of ``-mean(log p(batch))``, and the new state.
        """
        _checks.key("key", key)
        check(params)
        state = _check_state(params, state)
        v = flat_batch(params, batch, "batch")
        return _jarzynski_grad(key, params, v, state, jnp.asarray(self.ess_threshold, params.W.dtype), self.k)

    def diagnostics(self, state: JarzynskiState) -> dict[str, Array]:
        """``{"ess": ESS / n_chains of the weights the last update used, "n_resampled": resampling updates so far}``.

        :func:`jrbm.fit` and :func:`jrbm.fit_ensemble` record these in the
        history after every epoch.
        """
        return {"ess": _ess(state.log_weights), "n_resampled": state.n_resampled}


__all__ = ["JarzynskiPCD", "JarzynskiState", "effective_sample_size", "systematic_resample"]
