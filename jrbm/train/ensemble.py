"""``fit_ensemble``: ``N`` models in one compiled program, with per-model ``optax`` hyper-parameters."""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from jrbm import _checks, parallel, rng
from jrbm.estimators import Estimator
from jrbm.params import Model
from jrbm.train.loop import check_chains, compiled_epochs, compiled_eval, diverged, in_calls, prepare, progress_bar, used_with
from jrbm.train.monitor import eval_settings
from jrbm.train.step import Optimizer, TrainState, init_state


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
    if n == 0:
        raise ValueError("keys: expected at least one model, got 0 keys")
    if not (hasattr(params, "visible") and hasattr(params, "W")):
        raise TypeError(f"params: expected a stacked model (RBM, BernoulliRBM or GaussianRBM), got {type(params).__name__}")
    leading = {leaf.shape[0] for leaf in jax.tree.leaves(params) if getattr(leaf, "ndim", 0) >= 1}
    if len(leading) == 1 and n not in leading:
        raise ValueError(f"keys: expected one key per model, got {n} keys for the {leading.pop()} models stacked in params")
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
        real = np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
        if not real or not np.all(np.isfinite(value)):
            raise ValueError(f"hyperparams[{name!r}]: expected finite real numbers, got {value.tolist()}")
        if not np.array_equal(np.asarray(value, np.dtype(leaf.dtype)), value):
            raise ValueError(
                f"hyperparams[{name!r}]: the optimizer holds it as {np.dtype(leaf.dtype)}, which cannot hold {value.tolist()}; "
                f"give inject_hyperparams a float for it (e.g. {name}=0.0, not 0)"
            )
        value = jnp.asarray(value, leaf.dtype).reshape((n,) + (1,) * (leaf.ndim - 1))
        opt_state = optax.tree_utils.tree_set(opt_state, under_hyperparams, **{name: jnp.broadcast_to(value, leaf.shape)})
    return opt_state


def _stacked_specs(specs, mesh: Mesh):
    """Per-model partition specs with the model axis (split over ``"model"`` when the mesh has it) in front."""
    model = parallel.MODEL_AXIS if parallel.MODEL_AXIS in mesh.axis_names else None
    return jax.tree.map(lambda s: P(model, *s), specs, is_leaf=lambda s: isinstance(s, P))


@rng.own_on_mesh
def fit_ensemble(
    keys: Array,
    params: Model,
    data: ArrayLike,
    *,
    optimizer: Optimizer,
    estimator: Optional[Estimator] = None,
    epochs: int,
    batch_size: int,
    hyperparams: Optional[dict] = None,
    validation: Optional[ArrayLike] = None,
    learn_sigma: bool = False,
    sigma_warmup: Optional[int] = None,
    log_likelihood: Optional[str] = None,
    eval_every: Optional[int] = None,
    ais_kwargs: Optional[dict] = None,
    progress: bool = True,
    check_finite: bool = True,
    mesh: Optional[Mesh] = None,
) -> tuple[Model, dict]:
    """Trains ``N`` models in one compiled program; returns ``(params, history)`` with a leading model axis.

    ``jax.vmap`` over the models of the compiled loop over epochs of
    :func:`fit_epoch` that :func:`fit` runs (:func:`~jrbm.train.loop.compiled_epochs`), with the same
    key derivation (:func:`epoch_keys`): model ``n`` equals
    ``fit(keys[n], params_n, data, ...)`` with the same settings (up to
    floating-point rounding; the tests check it), for threefry and philox
    keys: ``rbg`` keys draw other bits under ``vmap`` (:mod:`jrbm.rng`). All models share ``data``,
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
      data, optimizer, estimator, epochs, batch_size, validation, learn_sigma, sigma_warmup, ais_kwargs, check_finite: as
        in :func:`fit`. A diverging model raises ``FloatingPointError`` naming it; with
        ``check_finite=False`` its history holds ``nan`` and the others train on.
      hyperparams: optional ``{name: (N,) values}`` for hyper-parameters of an
        ``optax.inject_hyperparams`` optimizer (numbers, not schedules).
      log_likelihood: ``None``, ``"exact"`` or ``"ais"``, evaluated for every
        model after every ``eval_every`` epochs and at the last.
      eval_every: epochs between likelihood evaluations (default: only after the last epoch). The
        epochs run in calls of a compiled loop grouped as in :func:`fit` (about 0.1 s a call, ending at
        each evaluation); the divergence check and the progress bar run between calls.
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
    progress, check_finite = _checks.flag("progress", progress), _checks.flag("check_finite", check_finite)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh)
        if parallel.MODEL_AXIS not in mesh.axis_names and parallel.DATA_AXIS not in mesh.axis_names:
            raise ValueError(f"mesh: expected an axis named {parallel.MODEL_AXIS!r} or {parallel.DATA_AXIS!r}, got axes {tuple(mesh.axis_names)}")
        m = parallel.axis_size(mesh, parallel.MODEL_AXIS)
        if n % m:
            raise ValueError(f"keys: expected a number of models that is a multiple of the {m} devices of the mesh's 'model' axis, got {n}")
    _checks.finite_leaves("params", params)
    first = jax.tree.map(lambda x: x[0], params)
    data, validation, epochs, batch_size, estimator, optimizer, _ = prepare(
        first, data, validation, epochs=epochs, batch_size=batch_size, log_likelihood=log_likelihood,
        learn_sigma=learn_sigma, sigma_warmup=sigma_warmup, estimator=estimator, optimizer=optimizer, mesh=mesh,
    )
    eval_every = used_with("eval_every", eval_every, "log_likelihood", log_likelihood, epochs)
    betas, n_runs = eval_settings(log_likelihood, ais_kwargs, first.W.dtype, mesh)
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
        check_chains(one, mesh)
        est_specs = _stacked_specs(parallel.estimator_state_specs(one, mesh), mesh)
        state = TrainState(
            parallel.place(state.params, mesh, _stacked_specs(jax.tree.map(lambda _: P(), state.params), mesh)),
            parallel.place(state.opt_state, mesh, _stacked_specs(jax.tree.map(lambda _: P(), state.opt_state), mesh)),
            parallel.place(state.estimator_state, mesh, est_specs),
        )
        key_train = parallel.place(key_train, mesh, _stacked_specs(P(), mesh))
        data, validation, betas = parallel.place((data, validation, betas), mesh)
        spmd_axis = parallel.MODEL_AXIS if parallel.MODEL_AXIS in mesh.axis_names else None

    evaluate = None if log_likelihood is None else compiled_eval(log_likelihood, n_runs, mesh, True, spmd_axis, rng.own(mesh))

    run = compiled_epochs(batch_size, optimizer, estimator, type(estimator), mesh, rng.own(mesh), True, spmd_axis)
    parts: list[dict[str, np.ndarray]] = []  # per call: name -> (N, epochs of the call)
    bar = progress_bar(epochs, progress)
    boundaries = [eval_every] if evaluate is not None else []
    calls = in_calls(run, state, key_train, data, validation, start=1, epochs=epochs, boundaries=boundaries)
    for epoch0, length, state, out in calls:
        out = {name: np.asarray(value)[:, :length] for name, value in out.items()}  # finite: (N, length, n_leaves)
        finite = out.pop("finite")
        if check_finite and not finite.all():
            ok = finite.all(axis=-1)
            epoch_idx = int(np.argmin(ok.all(axis=0)))  # the first epoch at which some model diverged
            model = int(np.argmin(ok[:, epoch_idx]))
            raise diverged(model, first, int(np.argmin(finite[model, epoch_idx])), epoch0 + epoch_idx)
        last = epoch0 + length - 1
        if evaluate is not None and (last % eval_every == 0 or last == epochs):
            values = parallel.gather(evaluate(key_train, np.int32(last), state.params, data, validation, betas))
            for name, value in values.items():
                col = np.full((n, length), np.nan, value.dtype)
                col[:, -1] = value
                out[name] = col
        parts.append(out)
        if bar is not None:
            bar.set_postfix({"recon_error (median)": f"{np.median(out['recon_error'][:, -1]):.4g}"}, refresh=False)
            bar.update(length)
    if bar is not None:
        bar.close()
    history: dict[str, Any] = {"epoch": list(range(1, epochs + 1))}
    for name in dict.fromkeys(name for part in parts for name in part):  # a call without an evaluation holds nan
        dtype = next(part[name].dtype for part in parts if name in part)
        history[name] = np.concatenate(
            [part[name] if name in part else np.full(part["recon_error"].shape, np.nan, dtype) for part in parts], axis=1
        )
    return state.params, history
