"""The pure training step and epoch: an estimator's loss gradient, an ``optax`` update, one ``lax.scan`` per epoch."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array, lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from jrbm import _checks, metrics, parallel, rng
from jrbm.estimators import Estimator
from jrbm.model import free_energy_unchecked
from jrbm.params import Model


class Optimizer(Protocol):
    """What training needs of an optimiser: ``optax.GradientTransformation``'s ``init`` and ``update``."""

    def init(self, params: Any) -> Any: ...

    def update(self, updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]: ...


class TrainState(NamedTuple):
    """Everything a training loop carries between steps besides the key."""

    params: Any
    opt_state: Any
    estimator_state: Any


def _is_sigma(path) -> bool:
    return bool(path) and getattr(path[-1], "name", None) == "log_sigma"


def has_sigma(params: Model) -> bool:
    """True when the model has ``log_sigma`` leaves (a Gaussian layer)."""
    return any(_is_sigma(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0])


def weights_only(params: Model) -> Model:
    """An ``optax`` mask that is true on ``W`` only (weight decay on the weights, not the fields)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "name", None) == "W", params)


def make_optimizer(params: Model, optimizer: Optimizer, learn_sigma: bool = False, sigma_warmup_steps: int = 0):
    """``optimizer`` on every leaf; the ``log_sigma`` leaves of Gaussian layers stay fixed unless ``learn_sigma``,
    and with it for the first ``sigma_warmup_steps`` updates (their optimiser state still follows the gradient)."""
    if not has_sigma(params) or (learn_sigma and sigma_warmup_steps == 0):
        return optimizer
    steps = int(sigma_warmup_steps) if learn_sigma else None
    name = "freeze" if steps is None else "sigma"
    labels = jax.tree_util.tree_map_with_path(lambda path, _: name if _is_sigma(path) else "train", params)
    structure = jax.tree.structure(params)
    try:
        return _gated_sigma(optimizer, structure, tuple(jax.tree.leaves(labels)), steps)
    except TypeError:  # an unhashable optimizer: build it afresh
        return _gated_sigma.__wrapped__(optimizer, structure, tuple(jax.tree.leaves(labels)), steps)


@functools.lru_cache(maxsize=32)
def _gated_sigma(optimizer, structure, labels, steps):
    """``log_sigma`` frozen (``steps=None``) or released after ``steps`` updates; the same object for the
    same arguments, so compiled epochs are reused (:func:`_cached`)."""
    tree = jax.tree.unflatten(structure, labels)
    if steps is None:
        return optax.multi_transform({"train": optimizer, "freeze": optax.set_to_zero()}, tree)
    gate = optax.scale_by_schedule(lambda count: (count >= steps).astype(jnp.float32))
    return optax.multi_transform({"train": optimizer, "sigma": optax.chain(optimizer, gate)}, tree)


def init_state(key: Array, params: Model, data: ArrayLike, *, optimizer: Optimizer, estimator: Estimator) -> TrainState:
    """The :class:`TrainState` at the start of training.

    To reproduce :func:`jrbm.fit` by hand with Gaussian layers, pass the
    optimizer :func:`make_optimizer` makes of yours (``fit`` keeps ``log_sigma``
    fixed that way unless ``learn_sigma``), here and to :func:`train_step`,
    :func:`train_epoch` or :func:`fit_epoch`:
    ``make_optimizer(params, optimizer, learn_sigma, sigma_warmup * (n_examples // batch_size))``.
    For other layers it returns ``optimizer`` itself.
    """
    _checks.key("key", key)
    _checks.optimizer("optimizer", optimizer)
    _checks.estimator("estimator", estimator)
    return TrainState(params, optimizer.init(params), estimator.init(key, params, data))


def _check_grads(grads, params) -> None:
    """Raises unless an estimator's gradient is a pytree like ``params`` (checked while tracing: shapes only)."""
    want, got = jax.tree.structure(params), jax.tree.structure(grads)
    if got != want:
        raise TypeError(f"estimator.grad: expected gradients with the structure of the parameters, {want}, got {got}")
    for leaf_name, g, p in zip(_checks.leaf_names(params, "params"), jax.tree.leaves(grads), jax.tree.leaves(params)):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(f"estimator.grad: expected the gradient of {leaf_name} to have shape {jnp.shape(p)}, got {jnp.shape(g)}")


def check_train_state(state, optimizer: Optimizer) -> None:
    """Raises unless ``state`` is a :class:`TrainState` whose optimiser state ``optimizer.init`` could have made
    (its tree structure; checked while tracing, from shapes only)."""
    if not isinstance(state, TrainState):
        raise TypeError(f"state: expected a jrbm.train.TrainState (jrbm.train.init_state), got {type(state).__name__}")
    want = jax.tree.structure(jax.eval_shape(optimizer.init, state.params))
    got = jax.tree.structure(state.opt_state)
    if got != want:
        raise ValueError(
            f"state.opt_state: expected the structure of optimizer.init(params), {want}, got {got}; "
            "was the state made with another optimizer?"
        )


def train_step(key: Array, state: TrainState, batch: Array, *, optimizer: Optimizer, estimator: Estimator) -> TrainState:
    """One pure update: estimate the loss gradient on ``batch``, apply ``optimizer``.

    Put it in your own loop or ``lax.scan``; ``optimizer`` and ``estimator`` are
    static (close over them or use ``functools.partial`` before ``jax.jit``).

    Example:
      >>> import functools, jax, jax.numpy as jnp, optax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> data = jnp.ones((8, 6))
      >>> opt, est = optax.sgd(0.1), jrbm.CD(1)
      >>> state = jrbm.train.init_state(jax.random.key(1), params, data, optimizer=opt, estimator=est)
      >>> step = jax.jit(functools.partial(jrbm.train_step, optimizer=opt, estimator=est))
      >>> state = step(jax.random.key(2), state, data)
    """
    check_train_state(state, optimizer)
    grads, est_state = estimator.grad(key, state.params, batch, state.estimator_state)
    _check_grads(grads, state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, est_state)


def _constrain_state(state: TrainState, mesh: Optional[Mesh]) -> TrainState:
    """Parameters and optimiser state replicated, the estimator's chains split over the mesh's ``"data"`` axis."""
    if mesh is None:
        return state
    est = state.estimator_state
    return TrainState(
        parallel.constrain(state.params, mesh, P()),
        parallel.constrain(state.opt_state, mesh, P()),
        parallel.constrain(est, mesh, parallel.estimator_state_specs(est, mesh)),
    )


@rng.own_on_mesh(set_mesh=False)
def train_epoch(
    key: Array, state: TrainState, data: Array, batch_size: int, *, optimizer, estimator, mesh: Optional[Mesh] = None
) -> TrainState:
    """One epoch: shuffle ``data`` with ``key``, then ``len(data) // batch_size`` steps under ``lax.scan``.

    The last incomplete minibatch of a permutation is dropped, so every step
    sees ``batch_size`` examples and the step compiles once.

    With a ``mesh`` (call it under ``jax.jit``; it is traced inside
    :func:`jrbm.rng.own_generator`, as every function of jrbm that takes a
    mesh), every minibatch and the
    estimator's chains are constrained to be split along the mesh's ``"data"``
    axis and the parameters and optimiser state to be replicated
    (``jax.lax.with_sharding_constraint``); XLA then reduces the gradient's
    mean over the minibatch across devices inside the step. See
    :mod:`jrbm.parallel`.
    """
    n_batches = data.shape[0] // batch_size
    key_perm, key_steps = jax.random.split(key)
    order = jax.random.permutation(key_perm, data.shape[0])[: n_batches * batch_size].reshape(n_batches, batch_size)

    def body(state, xs):
        idx, k = xs
        batch = parallel.constrain_rows(data[idx], mesh)
        state = train_step(k, state, batch, optimizer=optimizer, estimator=estimator)
        return _constrain_state(state, mesh), None

    state, _ = lax.scan(body, state, (order, jax.random.split(key_steps, n_batches)))
    return state


def epoch_keys(key_train: Array, epoch) -> Array:
    """``(key_epoch, key_eval)`` of epoch ``epoch`` (counted from 1): ``split(fold_in(key_train, epoch))``.

    :func:`fit` and :func:`fit_ensemble` derive every key the same way from a
    run's key: ``key_init, key_train = jax.random.split(key)``, ``key_init``
    for the estimator's initial state and ``key_train`` for the epochs
    (shuffling and chains from ``key_epoch``, AIS from ``key_eval``).
    """
    return jax.random.split(jax.random.fold_in(key_train, epoch))


MONITOR_SIZE = 500
"""Training examples the per-epoch monitors of :func:`fit_epoch` use: a fixed, evenly spaced subset."""


def monitor_rows(n_examples: int, size: Optional[int] = None) -> np.ndarray:
    """The rows of the training data the per-epoch monitors use: ``min(n, size)`` evenly spaced indices.

    The same rows every epoch (no key involved), so the curves are comparable
    from epoch to epoch, and a fixed cost however large the data set: the
    monitors never make a second pass over the data.

    Example:
      >>> import jrbm
      >>> jrbm.train.monitor_rows(5, size=3).tolist()
      [0, 2, 4]
    """
    m = min(n_examples, MONITOR_SIZE if size is None else size)
    return np.unique(np.round(np.linspace(0, n_examples - 1, m)).astype(np.int64))


@rng.own_on_mesh(set_mesh=False)
def fit_epoch(
    key_train: Array,
    epoch,
    state: TrainState,
    data: Array,
    validation: Optional[Array] = None,
    *,
    batch_size: int,
    optimizer,
    estimator,
    mesh: Optional[Mesh] = None,
) -> tuple[TrainState, dict]:
    """One epoch of one model, pure: the function :func:`fit` jits and :func:`fit_ensemble` vmaps.

    Trains with ``key_epoch`` of :func:`epoch_keys` (:func:`train_epoch`), then
    returns ``(state, record)``; ``record`` holds scalars: ``recon_error``
    (:func:`jrbm.metrics.reconstruction_error`), ``free_energy_gap`` (with
    ``validation``: the mean free energy of ``validation`` minus that of the
    training examples, Hinton's guide section 6) and ``finite``, one bool per
    parameter leaf (all entries finite) and a last one for the reconstruction
    error (finite parameters can still overflow the model's functions, e.g. a
    visible bias of 1e200). Both monitors use the training examples
    :func:`monitor_rows` (at most :data:`MONITOR_SIZE`, the same every
    epoch), so monitoring costs a fixed amount, not a second pass over the data.
    An estimator with a ``diagnostics(state) -> {name: scalar}`` method adds
    those entries, taken from its state after the epoch.
    """
    key_epoch, _ = epoch_keys(key_train, epoch)
    state = train_epoch(key_epoch, state, data, batch_size, optimizer=optimizer, estimator=estimator, mesh=mesh)
    params = state.params
    watched = data[monitor_rows(data.shape[0])]
    record = {"recon_error": metrics.reconstruction_error_unchecked(params, watched)}
    if validation is not None:
        record["free_energy_gap"] = jnp.mean(free_energy_unchecked(params, validation)) - jnp.mean(free_energy_unchecked(params, watched))
    diagnostics = getattr(estimator, "diagnostics", None)
    if diagnostics is not None:  # an estimator's own per-epoch scalars (e.g. an effective sample size)
        for name, value in diagnostics(state.estimator_state).items():
            if jnp.ndim(value) != 0:
                raise ValueError(f"estimator.diagnostics: expected a scalar for {name!r}, got shape {jnp.shape(value)}")
            record[name] = jnp.asarray(value)
    finite = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]
    record["finite"] = jnp.stack(finite + [jnp.isfinite(record["recon_error"])])
    return state, record
