"""Jarzynski-weighted persistent chains: PCD whose chains carry importance weights.

Persistent chains lag behind the model they are meant to sample: the
parameters move at every update and ``k`` Gibbs sweeps do not catch up, which
biases PCD's gradient. Carbone, Hua, Coste & Vanden-Eijnden (2023) correct the
lag with Jarzynski's equality, as in sequential Monte Carlo: every chain
``v_i`` carries a weight ``w_i``, and when the parameters move from ``theta``
to ``theta'`` the weights take the ratio of the two unnormalised densities,

    log w_i <- log w_i + F_theta(v_i) - F_theta'(v_i),

with ``F`` the free energy (:func:`jrbm.model.free_energy_unchecked`, the
hidden layer summed out). If the weighted chains represented ``p_theta``,
they now represent ``p_theta'``; Gibbs sweeps at ``theta'`` leave
``p_theta'`` invariant, so the chains then move without changing their
weights. The model term of the loss gradient is the self-normalised average

    E_model[dF/dtheta] ~ sum_i w_i dF(v_i)/dtheta / sum_i w_i,

consistent as the number of chains grows, however few sweeps the chains take
(its bias is O(1/n_chains), that of self-normalised importance sampling),
whereas PCD's bias is set by the sweeps and does not shrink with more chains.

The price is weight degeneracy: as the parameters travel, a few chains take
most of the weight. The effective sample size
``ESS = (sum w)^2 / sum w^2`` measures it; when ``ESS / n_chains`` falls below
a threshold the chains are resampled in proportion to their weights
(systematic resampling, :func:`systematic_resample`) and the weights reset to
uniform, after which the sweeps spread the copies out again.

:class:`JarzynskiPCD` is an estimator of :mod:`jrbm.estimators`'s interface.
Its ``grad`` sees only the current parameters, so the state keeps each chain's
free energy under the parameters at which its weight was last updated
(:attr:`JarzynskiState.free_energy`); the next call adds
``free_energy - F_current(chains)`` to the log-weights.

Start: the weights are only importance weights if the chains begin at a
distribution whose density is known up to a constant. The paper starts from a
model that is sampled exactly; here ``init`` draws the chains from the model
with the couplings switched off (``W = 0``: the visible layer with its own
fields, whose states are exact independent draws) and gives them the weights
``F_{W=0}(v) - F_theta0(v)`` that carry them to the initial model. With
jrbm's small random initial weights these are close to uniform. Chains
started at data rows (PCD's choice) would have no valid weights.

Reference:
  D. Carbone, M. Hua, S. Coste and E. Vanden-Eijnden, "Efficient training of
  energy-based models using Jarzynski equality", NeurIPS 2023 (arXiv 2305.19414).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks, rng
from jrbm.estimators import contrast_grad
from jrbm.layers import base as layer_base
from jrbm.model import check, flat_batch, free_energy_unchecked, hidden_input, visible_data
from jrbm.params import Model
from jrbm.sampling import negative_phase


class JarzynskiState(NamedTuple):
    """The state of :class:`JarzynskiPCD`: weighted persistent chains.

    Attributes:
      chains: ``(n_chains, *visible.shape)`` chain states.
      log_weights: ``(n_chains,)`` log importance weights, normalised so that
        the mean weight is 1 (uniform weights are zeros).
      free_energy: ``(n_chains,)`` each chain's free energy under the
        parameters its weight was last updated at; the next update adds
        ``free_energy - F_new(chains)`` to ``log_weights``.
      n_resampled: int32 scalar, the number of updates that resampled the chains.
    """

    chains: Array
    log_weights: Array
    free_energy: Array
    n_resampled: Array

    def partition_specs(self, mesh):
        """How :mod:`jrbm.parallel` lays the state out: the chains and their per-chain vectors split over
        the mesh's ``"data"`` axis, the count replicated. Resampling gathers chains across devices."""
        from jrbm import parallel

        return JarzynskiState(
            parallel.row_spec(mesh, self.chains.ndim),
            parallel.row_spec(mesh, 1),
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


def _check_log_weights(log_weights) -> Array:
    log_weights = jnp.asarray(log_weights)
    if log_weights.ndim != 1 or log_weights.shape[0] == 0 or not jnp.issubdtype(log_weights.dtype, jnp.floating):
        raise ValueError(
            f"log_weights: expected a non-empty 1-D float array (one log-weight per chain), "
            f"got shape {tuple(log_weights.shape)} and dtype {log_weights.dtype}"
        )
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
    vs = params.visible.shape
    if chains.ndim != 1 + len(vs):
        raise ValueError(f"state.chains: expected shape (n_chains, {', '.join(map(str, vs))}), got {tuple(chains.shape)}")
    n = chains.shape[0]
    for name in ("log_weights", "free_energy"):
        x = getattr(state, name)
        if tuple(jnp.shape(x)) != (n,):
            raise ValueError(f"state.{name}: expected shape ({n},), one value per chain, got {tuple(jnp.shape(x))}")
    if jnp.shape(state.n_resampled) != ():
        raise ValueError(f"state.n_resampled: expected a scalar, got shape {tuple(jnp.shape(state.n_resampled))}")
    dtype = params.W.dtype
    return JarzynskiState(chains, jnp.asarray(state.log_weights, dtype), jnp.asarray(state.free_energy, dtype), state.n_resampled)


@rng.jit(static_argnames=("k",))
def _jarzynski_grad(key, params, v, state, ess_threshold, k):
    """One update of :class:`JarzynskiPCD`: reweight to ``params``, resample if the ESS is low, sweep, estimate."""
    key_resample, key_sweep = jax.random.split(key)
    chains = state.chains
    n = chains.shape[0]
    inputs = hidden_input(params, chains)
    log_w = _normalised(state.log_weights + state.free_energy - free_energy_unchecked(params, chains, inputs))
    resample = _ess(log_w) < ess_threshold
    idx = jnp.where(resample, _systematic(key_resample, log_w), jnp.arange(n, dtype=jnp.int32))
    inputs = inputs[idx]
    log_w = jnp.where(resample, jnp.zeros_like(log_w), log_w)
    v_k, inputs_k = negative_phase(key_sweep, params, inputs, k)
    grads = contrast_grad(params, v, hidden_input(params, v), v_k, inputs_k, jax.nn.softmax(log_w))
    new = JarzynskiState(
        v_k, log_w, free_energy_unchecked(params, v_k, inputs_k), state.n_resampled + resample.astype(state.n_resampled.dtype)
    )
    return grads, new


class _JarzynskiFields(NamedTuple):
    k: int = 1
    n_chains: int = 100
    ess_threshold: float = 0.5


class JarzynskiPCD(_JarzynskiFields):
    """Jarzynski-weighted persistent contrastive divergence (Carbone, Hua, Coste & Vanden-Eijnden 2023).

    ``n_chains`` persistent chains with importance weights (module
    docstring). Each update, at parameters ``theta'``:

    1. reweight: ``log w += F_theta(v) - F_theta'(v)``, ``theta`` being the
       parameters of the previous update (:attr:`JarzynskiState.free_energy`);
    2. if ``ESS / n_chains < ess_threshold``, resample the chains in proportion to
       their weights (:func:`systematic_resample`) and reset the weights to uniform;
    3. ``k`` Gibbs sweeps at ``theta'``;
    4. the loss gradient: the minibatch's mean ``dF/dtheta`` minus the
       chains' weighted mean (with ``P(h | v)`` in place of sampled ``h``, as
       in CD and PCD).

    ``init`` draws the chains exactly from the model with ``W = 0`` and weighs
    them to the initial parameters (module docstring); ``data`` is only
    checked. :meth:`diagnostics` puts the effective sample size in
    :func:`jrbm.fit`'s history. One update costs a PCD-``k`` update plus
    elementwise work on ``n_chains`` values.

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
          A :class:`JarzynskiState` with ``n_resampled = 0``.
        """
        _checks.key("key", key)
        check(params)
        layer_base.check_training_data(params.visible, "data", flat_batch(params, data, "data"))
        dtype = params.W.dtype
        chains = layer_base.sample(params.visible, key, jnp.zeros((self.n_chains,) + params.visible.shape, dtype))
        independent = params.assemble(params.visible, params.hidden, jnp.zeros_like(params.W))
        f = free_energy_unchecked(params, chains)
        log_w = _normalised(free_energy_unchecked(independent, chains) - f)
        return JarzynskiState(chains, log_w, f, jnp.zeros((), jnp.int32))

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
