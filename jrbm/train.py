"""Training: ``optax`` updates driven by any gradient estimator, one compiled scan per epoch.

The estimators return loss gradients (of the mean negative log-likelihood), so an ``optax`` optimiser
minimising the mean negative log-likelihood needs no sign flip. The usual
recipes of Hinton's practical guide are ``optax`` compositions:

* weight decay on ``W`` only::

    optax.chain(
        optax.add_decayed_weights(2e-4, mask=jrbm.train.weights_only),
        optax.sgd(0.05),
    )

* momentum 0.5 for the first epochs, then 0.9 (Hinton's guide, section 9)::

    steps_per_epoch = len(data) // batch_size
    momentum = optax.join_schedules(
        [optax.constant_schedule(0.5), optax.constant_schedule(0.9)], [5 * steps_per_epoch])
    optax.inject_hyperparams(optax.sgd)(learning_rate=0.05, momentum=momentum)

  (``optax.sgd`` takes a fixed momentum; ``inject_hyperparams`` lets it follow a
  schedule.)

For a GB-RBM, ``log_sigma`` is frozen unless ``learn_sigma=True``: the seed's
"a as a hyper-parameter" (section 3), done by ``optax.multi_transform`` with
``optax.set_to_zero`` on that leaf.

Scaling out (:mod:`jrbm.parallel`): :func:`fit_ensemble` trains ``N`` models
(seeds, initialisations, learning rates) in one compiled program by
``jax.vmap``; ``fit(..., mesh=...)`` splits minibatches and chains across
devices and lets XLA reduce the gradient. Both run the same per-model epoch,
:func:`fit_epoch`.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array, lax
from jax.sharding import Mesh, PartitionSpec as P
from jax.typing import ArrayLike

from jrbm import _checks, ais, exact, metrics, parallel
from jrbm.estimators import CD
from jrbm.model import _free_energy, base_rate, check
from jrbm.params import Model


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


def make_optimizer(params: Model, optimizer: optax.GradientTransformation, learn_sigma: bool = False):
    """``optimizer`` on every leaf, except the ``log_sigma`` leaves of Gaussian layers, which stay fixed unless ``learn_sigma``."""
    if has_sigma(params) and not learn_sigma:
        labels = jax.tree_util.tree_map_with_path(lambda path, _: "freeze" if _is_sigma(path) else "train", params)
        structure = jax.tree.structure(params)
        try:
            return _frozen_sigma(optimizer, structure, tuple(jax.tree.leaves(labels)))
        except TypeError:  # an unhashable optimizer: build it afresh
            return _frozen_sigma.__wrapped__(optimizer, structure, tuple(jax.tree.leaves(labels)))
    return optimizer


@functools.lru_cache(maxsize=32)
def _frozen_sigma(optimizer, structure, labels):
    """The same wrapped optimizer object for the same ``optimizer``, so compiled epochs are reused (:func:`_cached`)."""
    tree = jax.tree.unflatten(structure, labels)
    return optax.multi_transform({"train": optimizer, "freeze": optax.set_to_zero()}, tree)


def _cached(builder):
    """``lru_cache`` for builders of jitted functions, falling back to a fresh build for unhashable arguments.

    Rebuilding ``jax.jit(partial(...))`` per call would recompile the same
    program on every :func:`fit`; with the cache, calls with the same
    optimizer and estimator objects (and settings) reuse it. The estimator's
    type is part of the key, since NamedTuples of equal fields compare equal.
    """
    cached = functools.lru_cache(maxsize=32)(builder)

    @functools.wraps(builder)
    def get(*args):
        try:
            return cached(*args)
        except TypeError:
            return builder(*args)

    return get


def init_state(key: Array, params: Model, data: ArrayLike, *, optimizer, estimator) -> TrainState:
    """The :class:`TrainState` at the start of training."""
    return TrainState(params, optimizer.init(params), estimator.init(key, params, data))


def train_step(key: Array, state: TrainState, batch: Array, *, optimizer, estimator) -> TrainState:
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
    grads, est_state = estimator.grad(key, state.params, batch, state.estimator_state)
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


def train_epoch(
    key: Array, state: TrainState, data: Array, batch_size: int, *, optimizer, estimator, mesh: Optional[Mesh] = None
) -> TrainState:
    """One epoch: shuffle ``data`` with ``key``, then ``len(data) // batch_size`` steps under ``lax.scan``.

    The last incomplete minibatch of a permutation is dropped, so every step
    sees ``batch_size`` examples and the step compiles once.

    With a ``mesh`` (call it under ``jax.jit``), every minibatch and the
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
    (:func:`jrbm.metrics.reconstruction_error` of ``data``), ``free_energy_gap``
    (with ``validation``) and ``finite``, one bool per parameter leaf (all
    entries finite) and a last one for the reconstruction error (finite
    parameters can still overflow the model's functions, e.g. a visible bias
    of 1e200).
    """
    key_epoch, _ = epoch_keys(key_train, epoch)
    state = train_epoch(key_epoch, state, data, batch_size, optimizer=optimizer, estimator=estimator, mesh=mesh)
    params = state.params
    record = {"recon_error": metrics._reconstruction_error(params, data)}
    if validation is not None:
        record["free_energy_gap"] = jnp.mean(_free_energy(params, validation)) - jnp.mean(_free_energy(params, data))
    finite = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]
    record["finite"] = jnp.stack(finite + [jnp.isfinite(record["recon_error"])])
    return state, record


def _evaluate(key_train, epoch, params, data, validation, betas, *, kind, n_runs, mesh):
    """The likelihood monitors of one model after epoch ``epoch``: a dict of scalars (pure)."""
    if kind == "exact":
        out = {"log_likelihood": jnp.mean(exact.log_likelihood(params, data, check=False))}
        if validation is not None:
            out["val_log_likelihood"] = jnp.mean(exact.log_likelihood(params, validation, check=False))
        return out
    _, key_eval = epoch_keys(key_train, epoch)
    res = ais.forward(key_eval, base_rate(params, data), params, betas, n_runs, mesh)
    out = {"log_likelihood": -jnp.mean(_free_energy(params, data)) - res.log_z, "log_z_std": res.log_z_std}
    if validation is not None:
        out["val_log_likelihood"] = -jnp.mean(_free_energy(params, validation)) - res.log_z
    return out


def _eval_settings(kind, ais_kwargs, dtype, mesh):
    """``(betas, n_runs)`` of the AIS monitor (``(None, 0)`` for the exact one), checked."""
    if kind != "ais":
        return None, 0
    kwargs = dict(ais_kwargs or {})
    unknown = set(kwargs) - {"betas", "n_runs"}
    if unknown:
        raise TypeError(f"ais_kwargs: expected only 'betas' and 'n_runs' (fit passes the data itself), got {sorted(unknown)}")
    betas = ais.schedule(kwargs.get("betas"), dtype)
    n_runs = _checks.positive_int("n_runs", kwargs.get("n_runs", ais.N_RUNS))
    if mesh is not None:
        parallel.check_divisible("ais_kwargs['n_runs']", n_runs, mesh, "AIS runs")
    return betas, n_runs


@_cached
def _compiled_eval(kind, n_runs, mesh, ensemble, spmd_axis):
    f = functools.partial(_evaluate, kind=kind, n_runs=n_runs, mesh=mesh)
    if ensemble:
        f = jax.vmap(f, in_axes=(0, None, 0, None, None, None), spmd_axis_name=spmd_axis)
    return jax.jit(f)


@_cached
def _compiled_epoch(batch_size, optimizer, estimator, estimator_type, mesh):
    return jax.jit(functools.partial(fit_epoch, batch_size=batch_size, optimizer=optimizer, estimator=estimator, mesh=mesh))


@_cached
def _compiled_segment(n_epochs, batch_size, optimizer, estimator, estimator_type, mesh, spmd_axis):
    """``n_epochs`` of :func:`fit_epoch` under ``lax.scan``, vmapped over models, jitted."""
    epoch_fn = functools.partial(fit_epoch, batch_size=batch_size, optimizer=optimizer, estimator=estimator, mesh=mesh)

    def run(key_train, first_epoch, state, data, validation):
        def body(state, epoch):
            return epoch_fn(key_train, epoch, state, data, validation)

        return lax.scan(body, state, first_epoch + jnp.arange(n_epochs, dtype=jnp.int32))

    return jax.jit(jax.vmap(run, in_axes=(0, None, 0, None, None), spmd_axis_name=spmd_axis))


def _prepare(params, data, validation, *, epochs, batch_size, log_likelihood, learn_sigma, estimator, optimizer, mesh):
    """The checks and conversions :func:`fit` and :func:`fit_ensemble` share (``params``: one model)."""
    check(params)
    data = _checks.data_batch("data", data, params.visible, params.W.dtype)
    if validation is not None:
        validation = _checks.data_batch("validation", validation, params.visible, params.W.dtype)
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    if batch_size > data.shape[0]:
        raise ValueError(f"batch_size: expected at most the number of examples ({data.shape[0]}), got {batch_size}")
    if log_likelihood not in (None, "exact", "ais"):
        raise ValueError(f"log_likelihood: expected None, 'exact' or 'ais', got {log_likelihood!r}")
    if log_likelihood is not None:
        params.visible.check_data("data", data)
        if validation is not None:
            params.visible.check_data("validation", validation)
    if log_likelihood == "exact":
        exact.plan(params)  # fail now, not after the first epoch
    if learn_sigma and not has_sigma(params):
        raise ValueError(f"learn_sigma: only a GaussianRBM (or an RBM with a Gaussian layer) has log_sigma, got {type(params).__name__}")
    estimator = CD(1) if estimator is None else estimator
    _checks.estimator("estimator", estimator)
    _checks.optimizer("optimizer", optimizer)
    optimizer = make_optimizer(params, optimizer, learn_sigma)
    if mesh is not None:
        parallel.check_divisible("batch_size", batch_size, mesh, "minibatch")
    return data, validation, epochs, batch_size, estimator, optimizer


def _check_chains(estimator_state, mesh):
    n = parallel.n_chains(estimator_state)
    if mesh is not None and n is not None:
        parallel.check_divisible("estimator.n_chains", n, mesh, "persistent chains")


def _diverged(model: Optional[int], params: Model, index: int, epoch: int) -> FloatingPointError:
    """The error for entry ``index`` of an epoch record's ``finite`` flags (the leaves, then the reconstruction error)."""
    which = "" if model is None else f"model {model}: "
    names = _checks.leaf_names(params, "params")
    if index < len(names):
        what = f"{names[index]} has non-finite values"
    else:
        what = "the reconstruction error is not finite (the parameters overflow the model's functions)"
    return FloatingPointError(
        f"training diverged: {which}{what} after epoch {epoch}; "
        "lower the learning rate (or pass check_finite=False to continue anyway)"
    )


def _progress_bar(total: int, enabled: bool):
    """A ``tqdm`` bar over ``total`` epochs, or ``None`` when disabled.

    tqdm is imported here, not with the module, so that jrbm imports and trains
    where only jax, optax and chex are installed (an accelerator machine running
    a checkout); there a requested bar is replaced by a warning.
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("progress=True, but tqdm is not installed: training without a progress bar", stacklevel=3)
        return None
    return tqdm(total=total, desc="epochs", unit="epoch")


def fit(
    key: Array,
    params: Model,
    data: ArrayLike,
    *,
    optimizer: optax.GradientTransformation,
    estimator=None,
    epochs: int,
    batch_size: int,
    validation: Optional[ArrayLike] = None,
    learn_sigma: bool = False,
    log_likelihood: Optional[str] = None,
    eval_every: int = 1,
    ais_kwargs: Optional[dict] = None,
    progress: bool = True,
    check_finite: bool = True,
    callback: Optional[Callable[[int, Model, dict], None]] = None,
    mesh: Optional[Mesh] = None,
) -> tuple[Model, dict]:
    """Trains an Model; returns ``(params, history)``.

    Each epoch is one jit-compiled ``lax.scan`` over shuffled minibatches
    (:func:`fit_epoch`, :func:`train_epoch`), compiled once and reused by
    later calls with the same optimizer and estimator objects. After
    each epoch the history records, per visible unit where it says so:

    * ``recon_error``: mean squared one-step reconstruction error of the training data;
    * ``free_energy_gap``: mean free energy of ``validation`` minus training data
      (Hinton's overfitting monitor; only with ``validation``);
    * with ``log_likelihood="exact"`` (small models) or ``"ais"`` (any size), every
      ``eval_every`` epochs and at the last: ``log_likelihood`` of the training
      data (mean per example) and ``val_log_likelihood``; AIS also records
      ``log_z_std``. Epochs without an evaluation hold ``nan``.

    Keys: ``key_init, key_train = jax.random.split(key)``; epoch ``e`` uses
    :func:`epoch_keys` ``(key_train, e)``. :func:`fit_ensemble` derives them
    the same way, so its model ``n`` is this function's run with ``keys[n]``.

    Args:
      key: a ``jax.random`` key; shuffling, chains and AIS all derive from it.
      params: initial model, e.g. from :func:`jrbm.init_bernoulli` with ``data``.
      data: ``(n_examples, n_visible)`` training set.
      optimizer: any ``optax.GradientTransformation`` (e.g. ``optax.sgd(0.05, momentum=0.9)``).
      estimator: ``jrbm.CD(k)`` (default ``CD(1)``), ``jrbm.PCD(k, n_chains)`` or ``jrbm.PT(betas, k)``.
      epochs: number of passes over the data.
      batch_size: examples per update; at most ``len(data)``.
      validation: optional held-out data for the free-energy gap and likelihood.
      learn_sigma: GB-RBM only: learn ``log_sigma`` (default: frozen).
      log_likelihood: ``None``, ``"exact"`` or ``"ais"``.
      eval_every: epochs between likelihood evaluations.
      ais_kwargs: ``betas`` and ``n_runs`` of :func:`jrbm.ais.log_partition`.
      progress: show a ``tqdm`` progress bar with the latest metrics (with a warning and
        no bar where tqdm is not installed).
      check_finite: raise ``FloatingPointError`` naming the epoch and the leaf when
        a parameter becomes NaN or infinite, or the epoch's reconstruction error
        overflows (a learning rate too large), instead of training on.
      callback: called as ``callback(epoch, params, record)`` after each epoch.
      mesh: optional :class:`jax.sharding.Mesh` with a ``"data"`` axis
        (:func:`jrbm.parallel.make_mesh`): each minibatch, the estimator's
        persistent chains and the AIS runs are split across its devices, the
        parameters replicated, and XLA reduces the gradient across devices
        inside the compiled step. ``batch_size`` and the estimator's
        ``n_chains`` must be multiples of the axis size. The result equals the
        single-device run up to floating-point reduction order.

    Example:
      >>> import jax, optax, jrbm
      >>> data = jrbm.datasets.bars_and_stripes(3)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 9, 6, data=data)
      >>> params, history = jrbm.fit(jax.random.key(1), params, data, optimizer=optax.sgd(0.1),
      ...                            estimator=jrbm.CD(1), epochs=5, batch_size=4, progress=False)
      >>> len(history["recon_error"])
      5
    """
    _checks.key("key", key)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, need=parallel.DATA_AXIS)
    eval_every = _checks.positive_int("eval_every", eval_every)
    data, validation, epochs, batch_size, estimator, optimizer = _prepare(
        params, data, validation, epochs=epochs, batch_size=batch_size, log_likelihood=log_likelihood,
        learn_sigma=learn_sigma, estimator=estimator, optimizer=optimizer, mesh=mesh,
    )
    _checks.finite_leaves("params", params)  # fit_ensemble checks its whole stack instead
    betas, n_runs = _eval_settings(log_likelihood, ais_kwargs, params.W.dtype, mesh)

    key_init, key_train = jax.random.split(key)
    state = init_state(key_init, params, data, optimizer=optimizer, estimator=estimator)
    if mesh is not None:
        _check_chains(state.estimator_state, mesh)
        est = state.estimator_state
        state = TrainState(
            parallel.place(state.params, mesh), parallel.place(state.opt_state, mesh),
            parallel.place(est, mesh, parallel.estimator_state_specs(est, mesh)),
        )
        key_train, data, validation, betas = parallel.place((key_train, data, validation, betas), mesh)
    step = _compiled_epoch(batch_size, optimizer, estimator, type(estimator), mesh)
    evaluate = None if log_likelihood is None else _compiled_eval(log_likelihood, n_runs, mesh, False, None)

    history: dict[str, list] = {"epoch": [], "recon_error": []}
    if validation is not None:
        history["free_energy_gap"] = []
    bar = _progress_bar(epochs, progress)
    for epoch in range(1, epochs + 1):
        state, out = step(key_train, np.int32(epoch), state, data, validation)
        out = parallel.gather(out)
        if check_finite and not out["finite"].all():
            raise _diverged(None, state.params, int(np.argmin(out["finite"])), epoch)
        record = {"epoch": epoch, "recon_error": float(out["recon_error"])}
        if validation is not None:
            record["free_energy_gap"] = float(out["free_energy_gap"])
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            values = parallel.gather(evaluate(key_train, np.int32(epoch), state.params, data, validation, betas))
            record.update({name: float(value) for name, value in values.items()})
        for name, value in record.items():
            history.setdefault(name, [math.nan] * (epoch - 1)).append(value)
        for name in history:
            if len(history[name]) < epoch:
                history[name].append(math.nan)
        if callback is not None:
            callback(epoch, state.params, record)
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"}, refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    return state.params, history


def _model_count(keys, params) -> int:
    dt = getattr(keys, "dtype", None)
    if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key) and keys.ndim == 1:
        n = keys.shape[0]
    elif dt == jnp.uint32 and keys.ndim == 2 and keys.shape[1] == 2:
        n = keys.shape[0]
    else:
        raise TypeError(
            "keys: expected a 1-D array of jax.random keys, one per model (jax.random.split(key, n_models)), "
            f"got {type(keys).__name__} with dtype {dt} and shape {getattr(keys, 'shape', None)}"
        )
    if not (hasattr(params, "visible") and hasattr(params, "W")):
        raise TypeError(f"params: expected a stacked model (RBM, BernoulliRBM or GaussianRBM), got {type(params).__name__}")
    for name, leaf in zip(_checks.leaf_names(params, "params"), jax.tree.leaves(params)):
        if getattr(leaf, "ndim", 0) < 1 or leaf.shape[0] != n:
            raise ValueError(
                f"{name}: expected a leading model axis of length {n} (one entry per key), got shape "
                f"{getattr(leaf, 'shape', None)}; stack models with jax.tree.map(lambda *x: jnp.stack(x), *models)"
            )
    return n


def _set_hyperparams(opt_state, hyperparams: dict, n: int):
    """Per-model values of ``optax.inject_hyperparams`` hyper-parameters in a stacked optimiser state."""

    def under_hyperparams(path, _):
        return len(path) >= 2 and getattr(path[-2], "name", None) == "hyperparams"

    for name, value in hyperparams.items():
        found = [leaf for path, leaf in optax.tree_utils.tree_get_all_with_path(opt_state, name) if under_hyperparams(path, leaf)]
        if not found:
            raise ValueError(
                f"hyperparams: {name!r} is not a numeric hyper-parameter of the optimizer's state; "
                f"build the optimizer with optax.inject_hyperparams (e.g. optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))"
            )
        scheduled = [p for p, _ in optax.tree_utils.tree_get_all_with_path(opt_state, name)
                     if any(getattr(k, "name", None) == "hyperparams_states" for k in p)]
        if scheduled:
            raise ValueError(f"hyperparams: {name!r} follows a schedule in the optimizer; give a number to inject_hyperparams instead")
        leaf = found[0]
        value = np.asarray(value)
        if value.shape != (n,):
            raise ValueError(f"hyperparams[{name!r}]: expected shape ({n},), one value per model, got {value.shape}")
        value = jnp.asarray(value, leaf.dtype).reshape((n,) + (1,) * (leaf.ndim - 1))
        opt_state = optax.tree_utils.tree_set(opt_state, under_hyperparams, **{name: jnp.broadcast_to(value, leaf.shape)})
    return opt_state


def _stacked_specs(specs, mesh: Mesh):
    """Per-model partition specs with the model axis (split over ``"model"`` when the mesh has it) in front."""
    model = parallel.MODEL_AXIS if parallel.MODEL_AXIS in mesh.axis_names else None
    return jax.tree.map(lambda s: P(model, *s), specs, is_leaf=lambda s: isinstance(s, P))


def fit_ensemble(
    keys: Array,
    params: Model,
    data: ArrayLike,
    *,
    optimizer: optax.GradientTransformation,
    estimator=None,
    epochs: int,
    batch_size: int,
    hyperparams: Optional[dict] = None,
    validation: Optional[ArrayLike] = None,
    learn_sigma: bool = False,
    log_likelihood: Optional[str] = None,
    eval_every: Optional[int] = None,
    ais_kwargs: Optional[dict] = None,
    progress: bool = True,
    check_finite: bool = True,
    mesh: Optional[Mesh] = None,
) -> tuple[Model, dict]:
    """Trains ``N`` models in one compiled program; returns ``(params, history)`` with a leading model axis.

    ``jax.vmap`` over the models of a ``lax.scan`` over epochs of
    :func:`fit_epoch`, the function :func:`fit` runs per epoch, with the same
    key derivation (:func:`epoch_keys`): model ``n`` equals
    ``fit(keys[n], params_n, data, ...)`` with the same settings (up to
    floating-point rounding; the tests check it). All models share ``data``,
    the estimator and the optimizer's structure; they differ in key, initial
    parameters and, optionally, hyper-parameters.

    Per-model hyper-parameters: build the optimizer with
    ``optax.inject_hyperparams`` and give ``hyperparams={"learning_rate":
    lrs}``, an array of ``N`` values per name; model ``n`` then equals ``fit``
    with ``optax.inject_hyperparams(...)(learning_rate=lrs[n], ...)``. Any
    numeric argument of the wrapped optimizer works, e.g. weight decay::

        opt = optax.inject_hyperparams(
            lambda learning_rate, weight_decay: optax.chain(
                optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate)))(
            learning_rate=0.1, weight_decay=0.0)
        fit_ensemble(keys, stack, data, optimizer=opt, estimator=jrbm.CD(1), epochs=50,
                     batch_size=32, hyperparams={"learning_rate": lrs, "weight_decay": decays})

    The number of Gibbs sweeps ``k`` (and ``n_chains``, ``batch_size``,
    ``epochs``) cannot vary within an ensemble: they are static shapes and
    loop lengths of the compiled program. Group models by ``k`` and call
    ``fit_ensemble`` once per group.

    Args:
      keys: ``(N,)`` keys, one per model, e.g. ``jax.random.split(key, N)``.
      params: the initial models stacked on a leading axis of length ``N``
        (``jax.tree.map(lambda *x: jnp.stack(x), *models)``, or
        ``jax.vmap(lambda k: jrbm.init_bernoulli(k, I, J, data=data))(init_keys)``).
      data, optimizer, estimator, epochs, batch_size, validation, learn_sigma,
      ais_kwargs, check_finite: as in :func:`fit`. A diverging model raises
      ``FloatingPointError`` naming it; with ``check_finite=False`` its history
      holds ``nan`` and the others train on.
      hyperparams: optional ``{name: (N,) values}`` for hyper-parameters of an
        ``optax.inject_hyperparams`` optimizer (numbers, not schedules).
      log_likelihood: ``None``, ``"exact"`` or ``"ais"``, evaluated for every
        model after every ``eval_every`` epochs and at the last.
      eval_every: epochs per compiled call (default: all of them in one call);
        the likelihood, the divergence check and the progress bar run between calls.
      progress: a ``tqdm`` progress bar over epochs (as in :func:`fit`).
      mesh: optional :class:`jax.sharding.Mesh`: the models are split along
        its ``"model"`` axis (``jax.vmap(..., spmd_axis_name="model")``) and each
        model's minibatches and chains along its ``"data"`` axis, if it has
        them (:func:`jrbm.parallel.make_mesh`). ``N`` must be a multiple of the
        ``"model"`` axis size.

    Returns:
      ``(params, history)``: ``params`` stacked like the input; ``history``
      has ``epoch`` (a list) and, as ``(N, epochs)`` numpy arrays, the
      entries of :func:`fit`'s history.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jrbm
      >>> data = jrbm.datasets.bars_and_stripes(3)
      >>> init = jax.vmap(lambda k: jrbm.init_bernoulli(k, 9, 6, data=data))(jax.random.split(jax.random.key(0), 4))
      >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
      >>> params, history = jrbm.train.fit_ensemble(
      ...     jax.random.split(jax.random.key(1), 4), init, data, optimizer=opt, estimator=jrbm.CD(1),
      ...     epochs=5, batch_size=4, hyperparams={"learning_rate": jnp.array([0.01, 0.03, 0.1, 0.3])},
      ...     progress=False)
      >>> params.W.shape, history["recon_error"].shape
      ((4, 9, 6), (4, 5))
    """
    n = _model_count(keys, params)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh)
        m = parallel.axis_size(mesh, parallel.MODEL_AXIS)
        if n % m:
            raise ValueError(f"keys: expected a number of models that is a multiple of the {m} devices of the mesh's 'model' axis, got {n}")
    _checks.finite_leaves("params", params)
    first = jax.tree.map(lambda x: x[0], params)
    data, validation, epochs, batch_size, estimator, optimizer = _prepare(
        first, data, validation, epochs=epochs, batch_size=batch_size, log_likelihood=log_likelihood,
        learn_sigma=learn_sigma, estimator=estimator, optimizer=optimizer, mesh=mesh,
    )
    eval_every = epochs if eval_every is None else _checks.positive_int("eval_every", eval_every)
    betas, n_runs = _eval_settings(log_likelihood, ais_kwargs, first.W.dtype, mesh)
    if hyperparams is not None and not isinstance(hyperparams, dict):
        raise TypeError(f"hyperparams: expected a dict of name -> per-model values, got {type(hyperparams).__name__}")

    split = jax.vmap(jax.random.split)(keys)
    key_init, key_train = split[:, 0], split[:, 1]
    state = jax.vmap(lambda k, p: init_state(k, p, data, optimizer=optimizer, estimator=estimator))(key_init, params)
    if hyperparams:
        state = state._replace(opt_state=_set_hyperparams(state.opt_state, hyperparams, n))
    spmd_axis = None
    if mesh is not None:
        one = jax.tree.map(lambda x: x[0], state.estimator_state)
        _check_chains(one, mesh)
        est_specs = _stacked_specs(parallel.estimator_state_specs(one, mesh), mesh)
        state = TrainState(
            parallel.place(state.params, mesh, _stacked_specs(jax.tree.map(lambda _: P(), state.params), mesh)),
            parallel.place(state.opt_state, mesh, _stacked_specs(jax.tree.map(lambda _: P(), state.opt_state), mesh)),
            parallel.place(state.estimator_state, mesh, est_specs),
        )
        key_train = parallel.place(key_train, mesh, _stacked_specs(P(), mesh))
        data, validation, betas = parallel.place((data, validation, betas), mesh)
        spmd_axis = parallel.MODEL_AXIS if parallel.MODEL_AXIS in mesh.axis_names else None

    evaluate = None if log_likelihood is None else _compiled_eval(log_likelihood, n_runs, mesh, True, spmd_axis)

    columns: dict[str, list] = {}
    bar = _progress_bar(epochs, progress)
    done = 0
    while done < epochs:
        length = min(eval_every, epochs - done)
        run = _compiled_segment(length, batch_size, optimizer, estimator, type(estimator), mesh, spmd_axis)
        state, out = run(key_train, np.int32(done + 1), state, data, validation)
        out = parallel.gather(out)  # (N, length) per name; finite (N, length, n_leaves)
        finite = out.pop("finite")
        if check_finite and not finite.all():
            ok = finite.all(axis=-1)
            epoch_idx = int(np.argmin(ok.all(axis=0)))  # the first epoch at which some model diverged
            model = int(np.argmin(ok[:, epoch_idx]))
            raise _diverged(model, first, int(np.argmin(finite[model, epoch_idx])), done + epoch_idx + 1)
        done += length
        if evaluate is not None:
            values = parallel.gather(evaluate(key_train, np.int32(done), state.params, data, validation, betas))
            for name, value in values.items():
                col = np.full((n, length), np.nan, value.dtype)
                col[:, -1] = value
                out[name] = col
        for name, value in out.items():
            columns.setdefault(name, []).append(value)
        if bar is not None:
            bar.set_postfix({"recon_error (median)": f"{np.median(out['recon_error'][:, -1]):.4g}"}, refresh=False)
            bar.update(length)
    if bar is not None:
        bar.close()
    history: dict[str, Any] = {"epoch": list(range(1, epochs + 1))}
    history.update({name: np.concatenate(parts, axis=1) for name, parts in columns.items()})
    return state.params, history
