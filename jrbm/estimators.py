"""Gradient estimators of the mean negative log-likelihood.

For a minibatch ``v_1..v_B`` the loss is ``-(1/B) sum_n log p(v_n)`` and its
gradient is (eqs. 2.14-2.16, 3.14-3.16, signs flipped for a loss)

    d loss / d theta = mean_n d F(v_n) / d theta  -  E_model[d F(u) / d theta],

with ``F`` the free energy. The estimators differ in the model term:
contrastive divergence (CD-k, Hinton 2002) uses a k-step Gibbs chain started at
the data, persistent CD (PCD, Tieleman 2008) chains that carry over between
updates, and fast PCD (FPCD, Tieleman & Hinton 2009) persistent chains that
sample a model pushed away from their own states by fast weights. All use
``P(h | v)`` in place of sampled ``h`` in the statistics.

The returned gradients are pytrees shaped like the parameters, ready for
``optax`` (which minimises), and compare directly with
``jax.grad(lambda p: -jrbm.exact.log_likelihood(p, v).mean())(params)``.

Estimator objects (:class:`CD`, :class:`PCD`, :class:`FPCD`, :class:`jrbm.JarzynskiPCD`,
:class:`jrbm.PT`, :class:`jrbm.PTT`, :class:`jrbm.Centered` and your own) share one
interface (:class:`Estimator`) so that :func:`jrbm.fit` takes any of them:
``init(key, params, data) -> state`` and
``grad(key, params, batch, state) -> (grads, state)``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks, rng
from jrbm.model import check, flat_batch, free_energy_grad, hidden_input, visible_data
from jrbm.params import Model
from jrbm.sampling import draw_rows, negative_phase


class Estimator(Protocol):
    """The interface of a negative-phase estimator (:class:`CD`, :class:`PCD`, :class:`jrbm.PT`, or your own).

    ``init`` makes the estimator's state (``()`` for CD, persistent chains for
    PCD and PT) and ``grad`` returns the loss gradient of a minibatch, a pytree
    like ``params``, with the next state. Both are pure and jit-able, so
    :func:`jrbm.fit` runs any estimator inside its compiled epoch. A state may
    declare its layout over a device mesh with a ``partition_specs(mesh)``
    method (:func:`jrbm.parallel.estimator_state_specs`). An estimator may also
    have a ``diagnostics(state) -> {name: scalar}`` method (pure, jit-able):
    :func:`jrbm.fit` and :func:`jrbm.fit_ensemble` then record those entries in
    the history after every epoch.

    What :func:`jrbm.fit` assumes of your own:

    * **Settings.** A NamedTuple (or a frozen dataclass) of its settings, as
      jrbm's estimators are, lets ``fit`` reuse its compiled program across
      calls. A plain class works too: ``fit`` then compiles on every call, so
      changing an attribute between calls takes effect.
    * **Resuming** (``checkpoint_dir``, a returned state) compares the
      estimator with the one saved by its ``repr``, or, where that holds a
      memory address (a plain class's default), by its type's name and
      attributes (:func:`jrbm.train.checkpoint.describe`).
    * **State** is a pytree of arrays: numbers, booleans or typed PRNG keys
      (saved as their bits), checkpointed as they are.
    * **Over a mesh**, without ``partition_specs`` every array of rank 2 or
      more in the state is taken for a batch of chains and split along its
      first axis, which must then divide evenly; declare a running average or
      a ladder of models replicated (``jrbm.parallel.P()``).
    """

    def init(self, key: Array, params: Model, data: Array) -> Any: ...

    def grad(self, key: Array, params: Model, batch: Array, state: Any) -> tuple[Model, Any]: ...


STACK_LIMIT = 1 << 16
"""Largest stacked batch (rows x visible units, both phases) that :func:`contrast_grad` stacks into one product.

Below it, one ``(I, B + M) @ (B + M, J)`` product beats two small ones (a
small model's update is bound by the count of operations); above it, copying
both batches into one array costs more than the second product saves (at
784 x 500 and batch 10,000 a CD-1 update took 14% less time with two products
on a 2-core CPU; at bars-and-stripes' 32 x 16 per run, 8% more).
"""


def contrast_grad(
    params: Model,
    v_data: Array,
    inputs_data: Array,
    v_model: Array,
    inputs_model: Array,
    model_weights: Array | None = None,
    stack: bool | None = None,
) -> Model:
    """``mean d F(v_data) - sum_m model_weights_m d F(v_model_m)`` from the hidden inputs already computed.

    ``model_weights`` (``(M,)``, summing to 1) default to the mean. The two
    phases are stacked into one product per weight gradient when ``stack``
    is true, and taken as two products when it is false; by default, stacked
    when they are small (:data:`STACK_LIMIT`). A caller whose ``v_model`` is
    a fresh draw may pass ``stack=False``: XLA on a CPU recomputes the draw
    inside the copy that stacking makes (:class:`jrbm.JarzynskiPCD` with
    ``k = 1`` does; PCD keeps the default, which measured faster with many
    models vmapped into one program).
    """
    n, m = v_data.shape[0], v_model.shape[0]
    dtype = v_data.dtype
    w_data = jnp.full((n,), 1.0 / n, dtype)
    w_model = jnp.full((m,), 1.0 / m, dtype) if model_weights is None else model_weights.astype(dtype)
    if stack is None:
        stack = (n + m) * math.prod(params.visible.shape) <= STACK_LIMIT
    if stack:
        return free_energy_grad(
            params,
            jnp.concatenate([v_data, v_model]),
            jnp.concatenate([w_data, -w_model]),
            jnp.concatenate([inputs_data, inputs_model]),
        )
    positive = free_energy_grad(params, v_data, w_data, inputs_data)
    negative = free_energy_grad(params, v_model, w_model, inputs_model)
    return jax.tree.map(jnp.subtract, positive, negative)


def cd_grad(key: Array, params: Model, v: ArrayLike, k: int = 1) -> Model:
    """CD-k estimate of the loss gradient (Hinton 2002).

    The model term of Cheng eqs. 2.14-2.16 / 3.14-3.16 is taken at the end of a
    ``k``-step Gibbs chain started at each example. Biased for finite ``k``
    (towards the data), unbiased as ``k -> infinity``.

    Args:
      key: a ``jax.random`` key.
      params: a model.
      v: ``(..., *visible.shape)`` minibatch.
      k: number of Gibbs sweeps (static, >= 1).

    Returns:
      A pytree like ``params``: the estimate of ``d/d params`` of
      ``-mean(log p(v))``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> v = jnp.ones((8, 6))
      >>> grads = jrbm.cd_grad(jax.random.key(1), params, v, k=1)
      >>> opt = optax.sgd(0.1)
      >>> updates, _ = opt.update(grads, opt.init(params))
      >>> params = optax.apply_updates(params, updates)
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    check(params)
    v = flat_batch(params, v, "v")  # shape, finiteness and the layer's states (jrbm.model.visible_data)
    return _cd_grad(key, params, v, k)


@rng.jit(static_argnames=("k",))
def _cd_grad(key, params, v, k):
    """Compiled once per shape and ``k``, so eager calls do not re-trace the chain's scan."""
    inputs0 = hidden_input(params, v)
    v_k, inputs_k = negative_phase(key, params, inputs0, k)
    return contrast_grad(params, v, inputs0, v_k, inputs_k)


def pcd_grad(key: Array, params: Model, v: ArrayLike, chains: ArrayLike, k: int = 1) -> tuple[Model, Array]:
    """Persistent CD estimate (Tieleman 2008); returns ``(grads, new_chains)``.

    The model term comes from ``chains`` (``(n_chains, *visible.shape)``, any number
    of chains) advanced by ``k`` Gibbs sweeps; the advanced chains are returned
    to be passed to the next call.
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    check(params)
    chains = visible_data(params, chains, "chains")
    v = flat_batch(params, v, "v")
    grads, v_k = _pcd_grad(key, params, v, flat_batch(params, chains, "chains"), k)
    return grads, v_k.reshape(chains.shape)


@rng.jit(static_argnames=("k",))
def _pcd_grad(key, params, v, chains, k):
    """Compiled once per shape and ``k``, so eager calls do not re-trace the chain's scan."""
    inputs0 = hidden_input(params, v)
    v_k, inputs_k = negative_phase(key, params, hidden_input(params, chains), k)
    return contrast_grad(params, v, inputs0, v_k, inputs_k), v_k


class _CDFields(NamedTuple):
    k: int = 1


class CD(_CDFields):
    """Contrastive divergence with ``k`` Gibbs sweeps (Hinton 2002); stateless.

    The model term of the gradient comes from a ``k``-step Gibbs chain
    started at each example of the minibatch (:func:`cd_grad`).

    Args:
      k: Gibbs sweeps per update, a positive int (validated here, when the
        estimator is made; it is a static loop length under ``jit``).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> est = jrbm.CD(k=1)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> data = jnp.ones((8, 6))
      >>> state = est.init(jax.random.key(1), params, data)
      >>> grads, state = est.grad(jax.random.key(2), params, data, state)
      >>> grads.W.shape
      (6, 4)
    """

    __slots__ = ()

    def __new__(cls, k: int = 1):
        return super().__new__(cls, _checks.static_positive_int("k", k))

    def init(self, key: Array, params: Model, data: ArrayLike) -> tuple:
        _checks.key("key", key)  # unused, checked all the same: the interface takes a key
        check(params)
        flat_batch(params, data, "data")
        return ()

    def grad(self, key: Array, params: Model, batch: Array, state: Any) -> tuple[Model, tuple]:
        return cd_grad(key, params, batch, self.k), state


class _PCDFields(NamedTuple):
    k: int = 1
    n_chains: int = 100


class PCD(_PCDFields):
    """Persistent contrastive divergence (Tieleman 2008): ``n_chains`` chains, ``k`` sweeps per update.

    ``init`` starts the chains at examples drawn from ``data`` (with
    replacement), the usual choice; the state is the ``(n_chains, *visible.shape)``
    array of chain states, advanced by ``k`` sweeps at every update
    (:func:`pcd_grad`).

    Args:
      k: Gibbs sweeps per update, a positive int.
      n_chains: persistent chains, a positive int (a multiple of the mesh's
        ``"data"`` axis when ``fit`` is given a mesh). Both are validated here.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> est = jrbm.PCD(k=1, n_chains=10)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> chains = est.init(jax.random.key(1), params, jnp.ones((8, 6)))
      >>> grads, chains = est.grad(jax.random.key(2), params, jnp.ones((8, 6)), chains)
      >>> chains.shape
      (10, 6)
    """

    __slots__ = ()

    def __new__(cls, k: int = 1, n_chains: int = 100):
        return super().__new__(cls, _checks.static_positive_int("k", k), _checks.static_positive_int("n_chains", n_chains))

    def init(self, key: Array, params: Model, data: ArrayLike) -> Array:
        _checks.key("key", key)
        check(params)
        data = flat_batch(params, data, "data")
        return draw_rows(key, data, (self.n_chains,))

    def grad(self, key: Array, params: Model, batch: Array, state: Array) -> tuple[Model, Array]:
        return pcd_grad(key, params, batch, state, self.k)


def _is_fast(path) -> bool:
    """FPCD's fast parameters cover the weights and fields, not the log-scales (``log_sigma``, ``log_gamma``)."""
    return not str(getattr(path[-1], "name", "")).startswith("log_")


def fast_mask(params: Model) -> Model:
    """A pytree of bools like ``params``: which leaves :class:`FPCD` gives fast parameters (all but ``log_*`` scales)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: _is_fast(path), params)


def _combined(params: Model, fast: Model) -> Model:
    return jax.tree_util.tree_map_with_path(lambda path, p, f: p + f if _is_fast(path) else p, params, fast)


class FPCDState(NamedTuple):
    """The state of :class:`FPCD`: the persistent chains and the fast parameters.

    Attributes:
      chains: ``(n_chains, *visible.shape)`` chain states.
      fast: a pytree like the parameters: the fast parameters (zero on the
        ``log_*`` scale leaves, which have none), added to the parameters for
        sampling only.
    """

    chains: Array
    fast: Any

    def partition_specs(self, mesh):
        """How :mod:`jrbm.parallel` lays the state out: the chains split over the mesh's ``"data"`` axis, the fast parameters replicated."""
        from jrbm import parallel

        return FPCDState(parallel.row_spec(mesh, self.chains.ndim), jax.tree.map(lambda _: parallel.P(), self.fast))


@rng.jit(static_argnames=("k",))
def _fpcd_grad(key, params, fast, v, chains, k, fast_lr, fast_decay):
    sampler = _combined(params, fast)
    v_k, inputs_k = negative_phase(key, sampler, hidden_input(sampler, chains), k)
    n, m, dtype = v.shape[0], v_k.shape[0], v.dtype
    positive = free_energy_grad(params, v, jnp.full((n,), 1.0 / n, dtype), hidden_input(params, v))
    negative = free_energy_grad(sampler, v_k, jnp.full((m,), -1.0 / m, dtype), inputs_k)
    grads = jax.tree.map(jnp.add, positive, negative)
    fast = jax.tree_util.tree_map_with_path(
        lambda path, f, g: (fast_decay * f - fast_lr * g).astype(f.dtype) if _is_fast(path) else f, fast, grads
    )
    return grads, v_k, fast


class _FPCDFields(NamedTuple):
    k: int = 1
    n_chains: int = 100
    fast_lr: float = 0.05
    fast_decay: float = 0.95


class FPCD(_FPCDFields):
    """Fast persistent contrastive divergence (Tieleman & Hinton 2009).

    PCD whose chains sample the model with *fast parameters* added:
    ``theta + theta_fast`` for the weights and fields (not the ``log_*``
    scales, :func:`fast_mask`). After each update the fast parameters take a
    large step down the same loss gradient and decay,
    ``theta_fast <- fast_decay * theta_fast - fast_lr * grad``, so the energy
    the chains see rises where they have just been and they move on to other
    modes; averaged over updates the fast parameters vanish. The gradient
    returned (to the optimiser, for ``theta``) is the data term under
    ``theta`` minus the chains' term under ``theta + theta_fast``, as in the
    paper's algorithm. With ``fast_lr=0`` this is :class:`PCD` (the same chains,
    and the same gradients to rounding).

    Args:
      k: Gibbs sweeps per update, a positive int.
      n_chains: persistent chains, a positive int (a multiple of the mesh's
        ``"data"`` axis when ``fit`` is given a mesh).
      fast_lr: the fast parameters' learning rate, >= 0; the paper uses the
        regular learning rate's initial value (the default suits SGD at 0.05).
      fast_decay: the fast parameters' decay per update, in [0, 1) (the paper's 19/20).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> est = jrbm.FPCD(k=1, n_chains=10, fast_lr=0.05)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> state = est.init(jax.random.key(1), params, jnp.ones((8, 6)))
      >>> grads, state = est.grad(jax.random.key(2), params, jnp.ones((8, 6)), state)
      >>> state.chains.shape, state.fast.W.shape
      ((10, 6), (6, 4))
    """

    __slots__ = ()

    def __new__(cls, k: int = 1, n_chains: int = 100, fast_lr: float = 0.05, fast_decay: float = 0.95):
        k = _checks.static_positive_int("k", k)
        n_chains = _checks.static_positive_int("n_chains", n_chains)
        fast_lr = _checks.real_in("fast_lr", fast_lr, 0.0, float("inf"), "a finite float >= 0", open_high=True)
        fast_decay = _checks.real_in("fast_decay", fast_decay, 0.0, 1.0, "a float in [0, 1)", open_high=True)
        return super().__new__(cls, k, n_chains, fast_lr, fast_decay)

    def init(self, key: Array, params: Model, data: ArrayLike) -> FPCDState:
        _checks.key("key", key)
        check(params)
        data = flat_batch(params, data, "data")
        chains = draw_rows(key, data, (self.n_chains,))
        return FPCDState(chains, jax.tree.map(jnp.zeros_like, params))

    def grad(self, key: Array, params: Model, batch: Array, state: FPCDState) -> tuple[Model, FPCDState]:
        _checks.key("key", key)
        check(params)
        if not isinstance(state, FPCDState):
            raise TypeError(f"state: expected a jrbm.estimators.FPCDState (from FPCD.init), got {type(state).__name__}")
        if not _checks.same_tree(state.fast, params):
            raise ValueError("state.fast: expected fast parameters of the structure and shapes of params (from FPCD.init of this model)")
        _checks.finite_leaves("state.fast", state.fast)
        chains = visible_data(params, state.chains, "state.chains")
        grads, v_k, fast = _fpcd_grad(
            key, params, state.fast, flat_batch(params, batch, "batch"), flat_batch(params, chains, "state.chains"),
            self.k, self.fast_lr, self.fast_decay,
        )
        return grads, FPCDState(v_k.reshape(chains.shape), fast)
