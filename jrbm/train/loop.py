"""``fit``: the training loop around the compiled epochs, its checks, monitors and progress bar."""

from __future__ import annotations

import functools
import inspect
import math
import time
import warnings
from collections.abc import Callable
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.sharding import Mesh
from jax.typing import ArrayLike

from jrbm import _checks, exact, parallel, rng
from jrbm.estimators import CD, Estimator
from jrbm.layers import base as layer_base
from jrbm.model import check
from jrbm.params import Model
from jrbm.train import checkpoint
from jrbm.train.checkpoint import FitState
from jrbm.train.monitor import eval_settings, evaluate_likelihood, likelihood_names
from jrbm.train.step import Optimizer, TrainState, fit_epoch, has_sigma, init_state, make_optimizer


def _cached(builder):
    """``lru_cache`` for builders of jitted functions, falling back to a fresh build for unhashable arguments.

    Rebuilding ``jax.jit(partial(...))`` per call would recompile the same
    program on every :func:`fit`; with the cache, calls with the same
    optimizer and estimator objects (and settings) reuse it. The estimator's
    type is part of the key, since NamedTuples of equal fields compare equal.
    An instance of a plain class (hashed by identity, its attributes free to
    change) is never a key: its program is built on every call.
    """
    cached = functools.lru_cache(maxsize=32)(builder)

    @functools.wraps(builder)
    def get(*args):
        if any(_hashed_by_identity(a) for a in args):  # a change to it would not change the key: build afresh
            return builder(*args)
        try:
            return cached(*args)
        except TypeError:
            return builder(*args)

    return get


def _hashed_by_identity(x) -> bool:
    """Whether ``x`` (or a field of a tuple ``x``) is an instance of a plain class, hashed by identity, whose
    attributes may change between calls (an estimator of one's own with ``self.k = 20``): a cache keyed on it
    would keep the program built for its old settings. Functions are not counted."""
    if isinstance(x, tuple):
        return any(_hashed_by_identity(v) for v in x)
    return type(x).__hash__ is object.__hash__ and hasattr(x, "__dict__") and not callable(x)


@_cached
def compiled_eval(kind, n_runs, mesh, ensemble, spmd_axis, own):
    f = functools.partial(evaluate_likelihood, kind=kind, n_runs=n_runs, mesh=mesh)
    if ensemble:
        f = jax.vmap(f, in_axes=(0, None, 0, None, None, None), spmd_axis_name=spmd_axis)
    return jax.jit(rng.traced_own(f, own))


MAX_EPOCHS_PER_CALL = 1024
"""The most epochs :func:`fit` runs in one call of its compiled program (:func:`compiled_epochs`)."""

SECONDS_PER_CALL = 0.1
"""About how long :func:`fit` lets one call of its compiled program run: it runs as many epochs a call as
take this long, measured on the calls before, up to the next epoch with host work (an evaluation, a
checkpoint, a callback) and at most :data:`MAX_EPOCHS_PER_CALL`."""


@_cached
def compiled_epochs(batch_size, optimizer, estimator, estimator_type, mesh, own, ensemble=False, spmd_axis=None):
    """``run(key_train, first_epoch, n_epochs, state, data, validation) -> (state, records)``: epochs
    ``first_epoch, ..., first_epoch + n_epochs - 1`` of :func:`fit_epoch` in a ``lax.fori_loop``, jitted
    (with ``ensemble``, vmapped over a leading model axis of ``key_train``, ``state`` and ``records``).

    ``n_epochs`` (at most :data:`MAX_EPOCHS_PER_CALL`) is an argument, not a constant of the program: every
    epoch of :func:`fit` runs the same compiled loop body, however its epochs are grouped into calls, so the
    grouping (which :func:`fit` sets by timing the calls) cannot change a result. ``records`` holds each
    epoch's record in row ``epoch - first_epoch`` of arrays of :data:`MAX_EPOCHS_PER_CALL` rows; the rows
    from ``n_epochs`` on are unused.
    """
    epoch_fn = functools.partial(fit_epoch, batch_size=batch_size, optimizer=optimizer, estimator=estimator, mesh=mesh)

    def run(key_train, first_epoch, n_epochs, state, data, validation):
        _, shapes = jax.eval_shape(epoch_fn, key_train, first_epoch, state, data, validation)
        records = jax.tree.map(lambda s: jnp.zeros((MAX_EPOCHS_PER_CALL, *s.shape), s.dtype), shapes)

        def body(i, carry):
            state, records = carry
            state, record = epoch_fn(key_train, first_epoch + i, state, data, validation)
            return state, jax.tree.map(lambda rows, value: rows.at[i].set(value), records, record)

        return lax.fori_loop(0, n_epochs, body, (state, records))

    if ensemble:
        run = jax.vmap(run, in_axes=(0, None, None, 0, None, None), spmd_axis_name=spmd_axis)
    return jax.jit(rng.traced_own(run, own))


def epochs_per_call(seconds_per_epoch: Optional[float], epoch: int, last: int, boundaries: list[int]) -> int:
    """The epochs :func:`fit` runs in its next call from ``epoch``: as many as take about
    :data:`SECONDS_PER_CALL` at ``seconds_per_epoch`` (one while it is unknown), ending at or before the
    first epoch of ``boundaries`` (every multiple of each) and at ``last``."""
    n = 1 if seconds_per_epoch is None else int(SECONDS_PER_CALL / max(seconds_per_epoch, 1e-9))
    end = min(last, epoch + min(max(n, 1), MAX_EPOCHS_PER_CALL) - 1)
    for every in boundaries:
        end = min(end, -(-epoch // every) * every)  # the first multiple of `every` at or after `epoch`
    return end - epoch + 1


def in_calls(run, state, key_train, data, validation, *, start: int, epochs: int, boundaries: list[int]):
    """Runs epochs ``start..epochs`` through ``run`` (:func:`compiled_epochs`), grouped into calls by
    :func:`epochs_per_call`; yields ``(first_epoch, n_epochs, state, records)`` after each call, ``records``
    gathered to the host (with :data:`MAX_EPOCHS_PER_CALL` rows; the first ``n_epochs`` are this call's).

    Each call is timed after the first (which also compiles). Processes of a multi-process run time
    differently but must make the same calls, so there every call runs one epoch.
    """
    epoch, seconds_per_epoch = start, None
    while epoch <= epochs:
        n = epochs_per_call(seconds_per_epoch, epoch, epochs, boundaries)
        began = time.perf_counter()
        state, out = run(key_train, np.int32(epoch), np.int32(n), state, data, validation)
        out = parallel.gather(out)
        if epoch > start and jax.process_count() == 1:
            seconds_per_epoch = (time.perf_counter() - began) / n
        yield epoch, n, state, out
        epoch += n


def prepare(params, data, validation, *, epochs, batch_size, log_likelihood, learn_sigma, sigma_warmup, estimator, optimizer, mesh):
    """The checks and conversions :func:`fit` and :func:`fit_ensemble` share (``params``: one model); the
    last element returned is the resolved ``sigma_warmup`` (epochs)."""
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
    layer_base.check_training_data(params.visible, "data", data)
    if validation is not None:
        layer_base.check_training_data(params.visible, "validation", validation)
    if log_likelihood is not None:  # a likelihood is defined on the layer's states only
        layer_base.check_data(params.visible, "data", data)
        if validation is not None:
            layer_base.check_data(params.visible, "validation", validation)
    if log_likelihood == "exact":
        exact.plan(params)  # fail now, not after the first epoch
    learn_sigma = _checks.flag("learn_sigma", learn_sigma)
    if learn_sigma and not has_sigma(params):
        raise ValueError(f"learn_sigma: only a GaussianRBM (or an RBM with a Gaussian layer) has log_sigma, got {type(params).__name__}")
    estimator = CD(1) if estimator is None else estimator
    _checks.estimator("estimator", estimator)
    _checks.optimizer("optimizer", optimizer)
    sigma_warmup = resolve_sigma_warmup(learn_sigma, sigma_warmup, epochs)
    optimizer = make_optimizer(params, optimizer, learn_sigma, sigma_warmup * (data.shape[0] // batch_size))
    if mesh is not None:
        parallel.check_divisible("batch_size", batch_size, mesh, "minibatch")
    return data, validation, epochs, batch_size, estimator, optimizer, sigma_warmup


def resolve_sigma_warmup(learn_sigma: bool, sigma_warmup: Optional[int], epochs: int) -> int:
    """The epochs during which a learned ``log_sigma`` stays fixed: ``sigma_warmup``, or half of ``epochs`` when ``None``."""
    if sigma_warmup is None:
        return epochs // 2 if learn_sigma else 0
    if not learn_sigma:
        raise ValueError(f"sigma_warmup: only used with learn_sigma=True, got sigma_warmup={sigma_warmup!r} with learn_sigma=False")
    if isinstance(sigma_warmup, bool) or not isinstance(sigma_warmup, (int, np.integer)) or sigma_warmup < 0:
        raise ValueError(f"sigma_warmup: expected a non-negative integer number of epochs, got {sigma_warmup!r}")
    return int(sigma_warmup)


def check_chains(estimator_state, mesh):
    parallel.check_state_divisible(estimator_state, mesh)


def diverged(model: Optional[int], params: Model, index: int, epoch: int) -> FloatingPointError:
    """The error for entry ``index`` of an epoch record's ``finite`` flags (the leaves, then the reconstruction error)."""
    which = "" if model is None else f"model {model}: "
    names = _checks.leaf_names(params, "params")
    if index < len(names):
        what = f"{names[index]} has non-finite values"
    else:
        what = "the reconstruction error is not finite (the parameters overflow the model's functions)"
    return FloatingPointError(f"training diverged: {which}{what} after epoch {epoch}; {DIVERGED_ADVICE}")


DIVERGED_ADVICE = (
    "lower the learning rate (with a layer of your own, also certify it with jrbm.testing.check_layer, which runs it "
    "in float32; check_finite=False continues anyway)"
)
"""What :func:`diverged`'s error advises (the command line, whose layers are jrbm's own, says ``lower --lr``)."""


def add_records(history: dict[str, list], first_epoch: int, columns: dict[str, list]) -> None:
    """Appends epochs ``first_epoch, first_epoch + 1, ...`` to ``history``, ``columns`` holding a list of
    values per name, one per epoch: a name first seen is filled with ``nan`` for the epochs before, and a
    name the columns lack gets ``nan``."""
    n = len(next(iter(columns.values())))
    history["epoch"].extend(range(first_epoch, first_epoch + n))
    for name, values in columns.items():
        history.setdefault(name, [math.nan] * (first_epoch - 1)).extend(values)
    for values in history.values():
        if len(values) < first_epoch - 1 + n:
            values.extend([math.nan] * (first_epoch - 1 + n - len(values)))


def progress_bar(total: int, enabled: bool, initial: int = 0):
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
    return tqdm(total=total, initial=initial, desc="epochs", unit="epoch")


def check_callback(callback) -> None:
    """Raises ``TypeError`` unless ``callback`` can be called as ``callback(epoch, params, record)``."""
    expected = "expected a function called as callback(epoch, params, record)"
    if not callable(callback):
        raise TypeError(f"callback: {expected}, got {type(callback).__name__}")
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # some builtins have none: called as given
        return
    try:
        signature.bind(0, None, {})
    except TypeError:
        raise TypeError(f"callback: {expected}, got {getattr(callback, '__name__', type(callback).__name__)}{signature}") from None


def used_with(name: str, value, needs: str, needed, default: int) -> int:
    """A period option (``eval_every``, ``checkpoint_every``) checked, ``default`` when None; refused when the
    option it times (``needs``) is not set, since it would be ignored."""
    if value is None:
        return default
    if needed is None:
        raise ValueError(f"{name}: only used with {needs}, got {name}={value!r} and {needs}=None")
    return _checks.positive_int(name, value)


@rng.own_on_mesh
def fit(
    key: Array,
    params: Model | FitState,
    data: ArrayLike,
    *,
    optimizer: Optimizer,
    estimator: Optional[Estimator] = None,
    epochs: int,
    batch_size: int,
    validation: Optional[ArrayLike] = None,
    learn_sigma: bool = False,
    sigma_warmup: Optional[int] = None,
    log_likelihood: Optional[str] = None,
    eval_every: Optional[int] = None,
    ais_kwargs: Optional[dict] = None,
    progress: bool = True,
    check_finite: bool = True,
    callback: Optional[Callable[[int, Model, dict], None]] = None,
    mesh: Optional[Mesh] = None,
    checkpoint_dir: Optional[str] = None,
    checkpoint_every: Optional[int] = None,
    return_state: bool = False,
) -> tuple[Model, dict] | tuple[Model, dict, FitState]:
    """Trains a model; returns ``(params, history)`` (and a :class:`~jrbm.train.FitState` with ``return_state``).

    Each epoch is a ``lax.scan`` over shuffled minibatches (:func:`fit_epoch`,
    :func:`train_epoch`). The epochs run in a compiled loop
    (:func:`~jrbm.train.loop.compiled_epochs`), compiled once and reused by later
    calls with the same optimizer and estimator objects (with ``learn_sigma``,
    also the same ``sigma_warmup`` in updates: the warm-up is part of the
    optimiser, and its default follows ``epochs``); each call of it runs as
    many epochs as take about 0.1 s (timed on the calls before; one at a time
    while untimed, and at most 1,024), stopping at every epoch that has host
    work: an evaluation, a checkpoint, or every epoch with a ``callback``. So a
    small model's epochs do not each pay a call from Python, and the progress
    bar moves about ten times a second. (In a multi-process run every call runs
    one epoch, since the processes must make the same calls.) Every epoch runs
    the same compiled loop body, so the grouping, which depends on timing,
    never changes a result. After each
    epoch the history records, per visible unit where it says so:

    * ``recon_error``: mean squared one-step reconstruction error of the training data;
    * ``free_energy_gap``: mean free energy of ``validation`` minus training data
      (Hinton's overfitting monitor; only with ``validation``);

      both on the same fixed, evenly spaced training examples every epoch, at most
      :data:`jrbm.train.MONITOR_SIZE` (500) of them (:func:`jrbm.train.monitor_rows`),
      so monitoring costs no second pass over a large data set;
    * with ``log_likelihood="exact"`` (small models) or ``"ais"`` (any size), every
      ``eval_every`` epochs and at the last: ``log_likelihood`` of the training
      data (mean per example) and ``val_log_likelihood``; AIS also records
      ``log_z_std``. Epochs without an evaluation hold ``nan``.

    Keys: ``key_init, key_train = jax.random.split(key)``; epoch ``e`` uses
    :func:`epoch_keys` ``(key_train, e)``. :func:`fit_ensemble` derives them
    the same way, so its model ``n`` is this function's run with ``keys[n]``.

    Continuing a run (:mod:`jrbm.train.checkpoint`): with ``return_state=True``
    the result has a third element, the run's :class:`~jrbm.train.FitState`;
    pass it back in place of ``params``, with the same ``key``, data and
    settings and a larger ``epochs``, and training continues at the next
    epoch: 100 epochs and then 100 more end bit-identical to one run of 200
    (the history too, except that the first call also measured the
    likelihood at its last epoch, epoch 100, which one run of 200 measures
    only if ``eval_every`` divides 100).
    With ``checkpoint_dir``, the state is also written to
    ``checkpoint_dir/state.npz`` every ``checkpoint_every`` epochs and after the
    last, atomically; if that file exists when ``fit`` starts, it continues from
    it. So a run that was killed (preempted, out of time) is resumed by
    running the same call again, and ends as if it had never stopped. A state
    of another run (another key, estimator, batch size, ``learn_sigma``, ``sigma_warmup``, data,
    initial parameters (compared by digest), optimizer settings (compared by
    its first two updates of a probe gradient), or the shapes and structure of
    the model, optimizer or estimator state) is refused with a ``ValueError``
    naming what differs; only ``validation`` is not checked. (States written
    by jrbm before the digest and the probe were recorded are not checked for
    those two.) A state found in ``checkpoint_dir`` is continued from where it
    stopped, so start a new run in another folder. The history returned covers
    all epochs of the run.

    Args:
      key: a ``jax.random`` key; shuffling, chains and AIS all derive from it.
      params: initial model, e.g. from :func:`jrbm.init_bernoulli` with ``data``.
      data: ``(n_examples, *visible.shape)`` training set.
      optimizer: any ``optax.GradientTransformation`` (e.g. ``optax.sgd(0.05, momentum=0.9)``).
      estimator: ``jrbm.CD(k)`` (default ``CD(1)``), ``jrbm.PCD(k, n_chains)``, ``jrbm.FPCD``,
        ``jrbm.JarzynskiPCD``, ``jrbm.PT(betas, k)``, ``jrbm.PTT``, ``jrbm.Centered(...)`` of any of them, or
        your own (:class:`jrbm.estimators.Estimator` says what ``fit`` assumes of it).
      epochs: number of passes over the data.
      batch_size: examples per update; at most ``len(data)``.
      validation: optional held-out data for the free-energy gap and likelihood.
      learn_sigma: Gaussian layers only: learn ``log_sigma`` (default: frozen). The other
        layers' scale fields (ReLU's and dReLU's ``log_gamma``) learn like any field; to
        hold some leaves fixed, pass an ``optax.multi_transform`` optimizer that sends
        them to ``optax.set_to_zero()``. Start ``sigma`` below
        the data's standard deviation (``init_gaussian(..., sigma=0.7)`` for standardised
        data): at ``sigma`` equal to it and small weights the model is the best Gaussian, a
        stationary point training does not leave.
      sigma_warmup: with ``learn_sigma``, the epochs at the start during which
        ``log_sigma`` stays fixed while the other parameters learn (its optimiser state
        follows the gradient all along). Default ``None``: half of ``epochs``. Learned
        from the first update, ``sigma`` rises to the data's standard deviation before the
        weights grow, and the model settles at the best Gaussian (``W`` near 0); the weights
        first have to carry the variance that a smaller ``sigma`` leaves (notebook 05). It
        counts from the run's first epoch, and a continued run must keep the first part's
        value: pass the whole run's value to every part (a first part shorter than the
        warm-up keeps ``log_sigma`` fixed throughout, as the whole run would). Another
        warm-up compiles the training loop anew (a few seconds): to compare runs of
        several lengths without it, pass the same ``sigma_warmup`` to each.
      log_likelihood: ``None``, ``"exact"`` or ``"ais"``.
      eval_every: epochs between likelihood evaluations (default 1); only with ``log_likelihood``.
        With ``"ais"`` each evaluation is a whole AIS run (by default 14,500
        temperatures x 100 runs, :func:`jrbm.ais.log_partition`), which on a
        large model costs far more than an epoch: the command line evaluates
        every 10 epochs with 1,000 temperatures (``ais_kwargs={"betas": 1000}``).
      ais_kwargs: ``betas`` and ``n_runs`` of :func:`jrbm.ais.log_partition`.
      progress: show a ``tqdm`` progress bar with the latest metrics (with a warning and
        no bar where tqdm is not installed).
      check_finite: raise ``FloatingPointError`` naming the epoch and the leaf when
        a parameter becomes NaN or infinite, or the epoch's reconstruction error
        overflows (a learning rate too large), instead of training on (the epochs
        left in the call under way, at most about 0.1 s of them, run first).
      callback: called as ``callback(epoch, params, record)`` after each epoch;
        ``record`` maps ``"epoch"`` and every monitor of the history to this
        epoch's value (``nan`` where the epoch has none, as in the history).
      checkpoint_dir: a directory for the run's state file (created if missing); continued from when it holds one.
      checkpoint_every: epochs between state files (default 10; the last epoch is always written); only with
        ``checkpoint_dir``.
      return_state: also return the :class:`~jrbm.train.FitState` after the last epoch.
      mesh: optional :class:`jax.sharding.Mesh` with a ``"data"`` axis
        (:func:`jrbm.parallel.make_mesh`): each minibatch, the estimator's
        persistent chains and the AIS runs are split across its devices, the
        parameters replicated, and XLA reduces the gradient across devices
        inside the compiled step. ``batch_size`` and the estimator's
        ``n_chains`` must be multiples of the axis size. The result equals the
        single-device run inside :func:`jrbm.rng.own_generator` up to
        floating-point reduction order (a mesh draws the noise with the keys'
        own generator: :mod:`jrbm.rng`).

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
    progress, check_finite, return_state = (_checks.flag(name, value) for name, value in
                                            (("progress", progress), ("check_finite", check_finite), ("return_state", return_state)))
    eval_every = used_with("eval_every", eval_every, "log_likelihood", log_likelihood, 1)
    checkpoint_every = used_with("checkpoint_every", checkpoint_every, "checkpoint_dir", checkpoint_dir, 10)
    if checkpoint_dir is not None and jax.process_count() > 1:
        raise ValueError(f"checkpoint_dir: training states are written by a single process; this run has {jax.process_count()} processes")
    resume, source = (params, "the state passed as params") if isinstance(params, FitState) else (None, None)
    if resume is not None:
        params = resume.params
    data, validation, epochs, batch_size, estimator, optimizer, sigma_warmup = prepare(
        params, data, validation, epochs=epochs, batch_size=batch_size, log_likelihood=log_likelihood,
        learn_sigma=learn_sigma, sigma_warmup=sigma_warmup, estimator=estimator, optimizer=optimizer, mesh=mesh,
    )
    if callback is not None:
        check_callback(callback)
    betas, n_runs = eval_settings(log_likelihood, ais_kwargs, params.W.dtype, mesh)
    if checkpoint_dir is not None:  # created only once every other argument is accepted
        checkpoint_dir = checkpoint.check_directory(checkpoint_dir)

    key_init, key_train = jax.random.split(key)
    state = init_state(key_init, params, data, optimizer=optimizer, estimator=estimator)
    history: dict[str, list] = {"epoch": [], "recon_error": []}
    if validation is not None:
        history["free_energy_gap"] = []
    if log_likelihood is not None:  # nan until measured, so that the callback's record has every key from epoch 1
        history.update({name: [] for name in likelihood_names(log_likelihood, validation is not None)})
    run_settings = None
    if resume is not None or checkpoint_dir is not None or return_state:
        # a state passed back carries its run's initial parameters' digest; a call that starts or resumes from a file has them
        initial = resume.settings.get("params") if resume is not None else checkpoint.params_digest(params)
        run_settings = checkpoint.settings(estimator, batch_size, learn_sigma, data, sigma_warmup,
                                           noise=str(jax.random.key_impl(rng.noise_key(key))), params=initial,
                                           optimizer=checkpoint.optimizer_probe(optimizer, params))
    found = checkpoint.find_state(checkpoint_dir)
    if resume is None and found is not None:
        source = found
        # the run's settings first, so that another learn_sigma or estimator is named as such, not as another tree
        checkpoint.check_continuation(checkpoint.read_state_info(source), key, run_settings, epochs, source)
        resume = checkpoint.load_state(source, state)
    elif found is not None:  # a state passed in, and one in the folder it would overwrite: they must be one run
        info = checkpoint.read_state_info(found)
        checkpoint.check_continuation(info, key, run_settings, epochs, found)
        if info.epoch > resume.epoch:
            raise ValueError(
                f"params: the state passed stops at epoch {resume.epoch}, but {found} holds epoch {info.epoch} of the same run, "
                "which this call would overwrite; continue from the folder (pass the initial parameters, not a state) "
                "or use another checkpoint_dir"
            )
    if resume is not None:
        checkpoint.check_continuation(resume, key, run_settings, epochs, source)
        checkpoint.check_structure(resume, state, source)
        state = jax.tree.map(jnp.asarray, resume.train_state)
        history = {name: list(values) for name, values in resume.history.items()}
    start = 1 if resume is None else resume.epoch + 1
    if mesh is not None:
        check_chains(state.estimator_state, mesh)
        est = state.estimator_state
        state = TrainState(
            parallel.place(state.params, mesh), parallel.place(state.opt_state, mesh),
            parallel.place(est, mesh, parallel.estimator_state_specs(est, mesh)),
        )
        key_train, data, validation, betas = parallel.place((key_train, data, validation, betas), mesh)
    run = compiled_epochs(batch_size, optimizer, estimator, type(estimator), mesh, rng.own(mesh))
    evaluate = None if log_likelihood is None else compiled_eval(log_likelihood, n_runs, mesh, False, None, rng.own(mesh))
    boundaries = [1] if callback is not None else []  # a callback sees the parameters of every epoch
    if evaluate is not None:
        boundaries.append(eval_every)
    if checkpoint_dir is not None:
        boundaries.append(checkpoint_every)

    bar = progress_bar(epochs, progress, initial=start - 1)
    calls = in_calls(run, state, key_train, data, validation, start=start, epochs=epochs, boundaries=boundaries)
    for epoch, n, state, out in calls:
        out = {name: np.asarray(value)[:n] for name, value in out.items()}
        finite = out.pop("finite")  # (n, leaves + 1)
        if check_finite and not finite.all():
            bad = int(np.argmin(finite.all(axis=1)))  # the first epoch of the call that diverged
            raise diverged(None, state.params, int(np.argmin(finite[bad])), epoch + bad)
        columns = {name: np.asarray(value, np.float64).tolist() for name, value in out.items()}
        last = epoch + n - 1
        if evaluate is not None and (last % eval_every == 0 or last == epochs):
            values = parallel.gather(evaluate(key_train, np.int32(last), state.params, data, validation, betas))
            columns.update({name: [math.nan] * (n - 1) + [float(value)] for name, value in values.items()})
        add_records(history, epoch, columns)
        # every monitor of the history, nan where this epoch has no value (as in the history)
        record = {"epoch": last, **{name: values[-1] for name, values in history.items() if name != "epoch"}}
        if callback is not None:  # then every call runs one epoch
            callback(last, state.params, record)
        if checkpoint_dir is not None and (last % checkpoint_every == 0 or last == epochs):
            checkpoint.save_state(checkpoint_dir, FitState(*state, key=key, epoch=last, history=history, settings=run_settings))
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch" and not math.isnan(v)}, refresh=False)
            bar.update(n)
    if bar is not None:
        bar.close()
    if return_state:
        kept = {name: list(values) for name, values in history.items()}
        return state.params, history, FitState(*state, key=key, epoch=epochs, history=kept, settings=run_settings)
    return state.params, history
