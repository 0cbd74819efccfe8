"""Training: ``optax`` updates driven by any gradient estimator, one compiled scan per epoch.

The estimators return loss gradients (DESIGN.md), so an ``optax`` optimiser
minimising the mean negative log-likelihood needs no sign flip. The usual
recipes of Hinton's practical guide are ``optax`` compositions:

* weight decay on ``W`` only::

    optax.chain(
        optax.add_decayed_weights(2e-4, mask=lambda p: type(p)(*[n == "W" for n in p._fields])),
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
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from tqdm.auto import tqdm
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, exact, metrics
from jrbm.estimators import CD
from jrbm.model import family, free_energy
from jrbm.params import RBM, GaussianRBM


class TrainState(NamedTuple):
    """Everything a training loop carries between steps besides the key."""

    params: Any
    opt_state: Any
    estimator_state: Any


def sigma_mask(params: RBM, learn_sigma: bool):
    """Labels for ``optax.multi_transform``: ``"train"`` for every leaf, ``"freeze"`` for a frozen ``log_sigma``."""
    return type(params)(*["freeze" if (n == "log_sigma" and not learn_sigma) else "train" for n in params._fields])


def make_optimizer(params: RBM, optimizer: optax.GradientTransformation, learn_sigma: bool = False):
    """``optimizer`` on every leaf, except ``log_sigma`` of a GB-RBM, which stays fixed unless ``learn_sigma``."""
    if isinstance(params, GaussianRBM) and not learn_sigma:
        return optax.multi_transform({"train": optimizer, "freeze": optax.set_to_zero()}, sigma_mask(params, False))
    return optimizer


def init_state(key: Array, params: RBM, data: ArrayLike, *, optimizer, estimator) -> TrainState:
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


def train_epoch(key: Array, state: TrainState, data: Array, batch_size: int, *, optimizer, estimator) -> TrainState:
    """One epoch: shuffle ``data`` with ``key``, then ``len(data) // batch_size`` steps under ``lax.scan``.

    The last incomplete minibatch of a permutation is dropped, so every step
    sees ``batch_size`` examples and the step compiles once.
    """
    n_batches = data.shape[0] // batch_size
    key_perm, key_steps = jax.random.split(key)
    order = jax.random.permutation(key_perm, data.shape[0])[: n_batches * batch_size].reshape(n_batches, batch_size)

    def body(state, xs):
        idx, k = xs
        return train_step(k, state, data[idx], optimizer=optimizer, estimator=estimator), None

    state, _ = lax.scan(body, state, (order, jax.random.split(key_steps, n_batches)))
    return state


def _first_non_finite(params) -> Optional[str]:
    for name, leaf in zip(params._fields, params):
        if not bool(jnp.all(jnp.isfinite(leaf))):
            return name
    return None


def fit(
    key: Array,
    params: RBM,
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
    callback: Optional[Callable[[int, RBM, dict], None]] = None,
) -> tuple[RBM, dict]:
    """Trains an RBM; returns ``(params, history)``.

    Each epoch is one jit-compiled ``lax.scan`` over shuffled minibatches
    (:func:`train_epoch`), compiled once per call. After each epoch the history
    records, per visible unit where it says so:

    * ``recon_error``: mean squared one-step reconstruction error of the training data;
    * ``free_energy_gap``: mean free energy of ``validation`` minus training data
      (Hinton's overfitting monitor; only with ``validation``);
    * with ``log_likelihood="exact"`` (small models) or ``"ais"`` (any size), every
      ``eval_every`` epochs and at the last: ``log_likelihood`` of the training
      data (mean per example) and ``val_log_likelihood``; AIS also records
      ``log_z_std``. Epochs without an evaluation hold ``nan``.

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
      ais_kwargs: passed to :func:`jrbm.ais.log_partition` (e.g. ``betas``, ``n_runs``).
      progress: show a ``tqdm`` progress bar with the latest metrics.
      check_finite: raise ``FloatingPointError`` naming the epoch and the leaf when
        a parameter becomes NaN or infinite (a learning rate too large), instead of
        training on.
      callback: called as ``callback(epoch, params, record)`` after each epoch.

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
    fam = family(params)
    n_visible = params.W.shape[0]
    data = jnp.asarray(_checks.data_matrix("data", data, n_visible), params.W.dtype)
    if validation is not None:
        validation = jnp.asarray(_checks.data_matrix("validation", validation, n_visible), params.W.dtype)
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    eval_every = _checks.positive_int("eval_every", eval_every)
    if batch_size > data.shape[0]:
        raise ValueError(f"batch_size: expected at most the number of examples ({data.shape[0]}), got {batch_size}")
    if log_likelihood not in (None, "exact", "ais"):
        raise ValueError(f"log_likelihood: expected None, 'exact' or 'ais', got {log_likelihood!r}")
    if log_likelihood is not None and fam.binary_visible:
        _checks.binary("data", data)
        if validation is not None:
            _checks.binary("validation", validation)
    if log_likelihood == "exact":
        exact._plan(params, exact.MAX_BITS, exact.CHUNK_SIZE)  # fail now, not after the first epoch
    if learn_sigma and not isinstance(params, GaussianRBM):
        raise ValueError(f"learn_sigma: only a GaussianRBM has log_sigma, got {type(params).__name__}")
    estimator = CD(1) if estimator is None else estimator
    optimizer = make_optimizer(params, optimizer, learn_sigma)

    key_init, key_train = jax.random.split(key)
    state = init_state(key_init, params, data, optimizer=optimizer, estimator=estimator)
    run_epoch = jax.jit(lambda k, s, d: train_epoch(k, s, d, batch_size, optimizer=optimizer, estimator=estimator))
    evaluate = _evaluator(log_likelihood, ais_kwargs)

    history: dict[str, list] = {"epoch": [], "recon_error": []}
    if validation is not None:
        history["free_energy_gap"] = []
    bar = tqdm(total=epochs, desc="epochs", unit="epoch", disable=not progress)
    for epoch in range(1, epochs + 1):
        key_epoch, key_eval = jax.random.split(jax.random.fold_in(key_train, epoch))
        state = run_epoch(key_epoch, state, data)
        if check_finite:
            leaf = _first_non_finite(state.params)
            if leaf is not None:
                raise FloatingPointError(
                    f"training diverged: params.{leaf} has non-finite values after epoch {epoch}; "
                    "lower the learning rate (or pass check_finite=False to continue anyway)"
                )
        record = {"epoch": epoch, "recon_error": float(metrics.reconstruction_error(state.params, data))}
        if validation is not None:
            record["free_energy_gap"] = float(metrics.free_energy_gap(state.params, data, validation))
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            record.update(evaluate(key_eval, state.params, data, validation))
        for name, value in record.items():
            history.setdefault(name, [math.nan] * (epoch - 1)).append(value)
        for name in history:
            if len(history[name]) < epoch:
                history[name].append(math.nan)
        if callback is not None:
            callback(epoch, state.params, record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"}, refresh=False)
        bar.update(1)
    bar.close()
    return state.params, history


def _evaluator(kind, ais_kwargs):
    if kind is None:
        return None
    if kind == "exact":
        ll = jax.jit(lambda p, v: jnp.mean(exact.log_likelihood(p, v, check=False)))

        def evaluate(key, params, data, validation):
            out = {"log_likelihood": float(ll(params, data))}
            if validation is not None:
                out["val_log_likelihood"] = float(ll(params, validation))
            return out

        return evaluate

    from jrbm import ais

    kwargs = dict(ais_kwargs or {})

    def evaluate(key, params, data, validation):
        res = ais.log_partition(key, params, data=data, **kwargs)
        log_z = float(res.log_z)
        out = {"log_likelihood": float(-jnp.mean(free_energy(params, data))) - log_z, "log_z_std": float(res.log_z_std)}
        if validation is not None:
            out["val_log_likelihood"] = float(-jnp.mean(free_energy(params, validation))) - log_z
        return out

    return evaluate
