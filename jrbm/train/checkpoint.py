"""Resumable training: the whole state of a :func:`~jrbm.fit` run, in memory and on disk.

A run of :func:`~jrbm.fit` is a pure function of its key, its initial
parameters, its data and its settings: epoch ``e`` draws its shuffles and
chains from :func:`~jrbm.train.epoch_keys` ``(key_train, e)``. So to continue
a run exactly it suffices to keep, after some epoch, the parameters, the
optimiser's state, the estimator's state (persistent chains, tempering
ladders), the key and the epoch: a :class:`FitState`. Continued from a
:class:`FitState`, a run ends bit-identical to one that was never stopped.

``fit(..., checkpoint_dir=DIR, checkpoint_every=N)`` writes the state to
``DIR/state.npz`` every ``N`` epochs and after the last, each time atomically
(:func:`jrbm.io.save_tree`: a temporary file, ``fsync``, a rename), so a run
killed at any moment leaves the previous complete state. Calling ``fit``
again with the same arguments continues from that file.

The file is a :func:`jrbm.io.save_tree` archive (``.npz``, no pickles) whose
metadata holds the epoch, the run's key, the settings that must not change
between the parts of a run (estimator, batch size, ``learn_sigma`` and ``sigma_warmup``, digests
of the data and of the initial parameters, the optimiser's first updates of a
probe gradient) and the history so far. Restoring needs the structure of a fresh
state, which :func:`~jrbm.fit` builds from its arguments; :func:`load_state`
does the same for a user's own loop.

With a ``mesh``, the state is gathered to the host before it is written and
placed on the mesh again when read; a run may be continued on a mesh of
another size, and it is bit-identical when continued as it was started. A run
on a mesh draws its noise with its keys' own generator
(:mod:`jrbm.rng`), so it continues on a mesh or inside
:func:`jrbm.rng.own_generator`, and a run without one without a mesh: the
state records the generator (``settings["noise"]``) and ``fit`` refuses the
other, naming ``mesh``.

Why :mod:`jrbm.io` and not ``orbax-checkpoint``: orbax is built for states
too large for one host (each process writes its own shards, asynchronously,
through tensorstore). A jrbm training state is replicated parameters plus
chains that fit on one host, and restoring it bit for bit needs only its
leaves in order. orbax would add about a dozen packages (tensorstore,
protobuf, absl, etils, msgpack, ...) to every install, and accelerator hosts
that run a checkout with only jax, optax and chex could not resume at all.
The single ``.npz`` file, written atomically and read without pickles, works
everywhere jrbm does. Multi-process runs are not checkpointed: every process
would need the whole state, which is what orbax is for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import types
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jrbm import io, parallel
from jrbm.train.step import TrainState

STATE_FILE = "state.npz"
"""The file, inside a checkpoint directory, holding the latest :class:`FitState`."""


@dataclasses.dataclass(frozen=True)
class FitState:
    """Everything needed to continue a :func:`~jrbm.fit` run exactly where it stopped.

    Returned by ``fit(..., return_state=True)`` and accepted back in place of
    the parameters: ``fit(key, state, data, ..., epochs=200)`` trains epochs
    ``state.epoch + 1`` to 200 of the same run (the same ``key``, data and
    settings), and its result equals a run of 200 epochs bit for bit (its
    history too, but for the likelihood that each call measures at its own
    last epoch, where one run measures only every ``eval_every`` epochs).

    Attributes:
      params: the model after ``epoch`` epochs.
      opt_state: the optimiser's state (momentum, step counts, schedules).
      estimator_state: the estimator's state (:class:`~jrbm.PCD` chains, :class:`~jrbm.PT` ladders).
      key: the key the run was started with (``fit``'s first argument).
      epoch: the number of epochs done.
      history: the run's history up to ``epoch`` (as :func:`~jrbm.fit` returns it).
      settings: what must not change between the parts of a run: the
        estimator, the batch size, ``learn_sigma`` (with ``sigma_warmup``), a
        digest of the data, a digest of the initial parameters, the
        optimiser's :func:`optimizer_probe` and the noise generator.
    """

    params: Any
    opt_state: Any
    estimator_state: Any
    key: Array
    epoch: int
    history: dict
    settings: dict

    @property
    def train_state(self) -> TrainState:
        """The :class:`~jrbm.train.TrainState` (parameters, optimiser and estimator states)."""
        return TrainState(self.params, self.opt_state, self.estimator_state)


def data_digest(data) -> str:
    """A SHA-256 digest of an array's dtype, shape and bytes (to refuse continuing a run on other data)."""
    host = np.ascontiguousarray(parallel.gather(data))
    h = hashlib.sha256(f"{host.dtype.str}{host.shape}".encode())
    h.update(host.tobytes())
    return h.hexdigest()


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def describe(obj) -> str:
    """A description of ``obj`` that is the same in every process: its ``repr``, unless that holds a memory
    address (a plain class's default ``repr``, also inside a NamedTuple's), then its type's qualified name with
    its fields or attributes, described alike (functions by their qualified names)."""
    text = repr(obj)
    if not _ADDRESS.search(text):
        return text
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if hasattr(obj, "_fields"):
        return f"{name}({', '.join(f'{k}={describe(getattr(obj, k))}' for k in obj._fields)})"
    if isinstance(obj, (list, tuple)):
        return f"{name}({', '.join(describe(v) for v in obj)})"
    if isinstance(obj, dict):
        return f"{name}({', '.join(f'{k!r}: {describe(v)}' for k, v in obj.items())})"
    if hasattr(obj, "__dict__"):
        return f"{name}({', '.join(f'{k}={describe(v)}' for k, v in sorted(vars(obj).items()))})"
    return _ADDRESS.sub("", text)


def params_digest(params) -> str:
    """A SHA-256 digest of a parameter pytree: its structure and every leaf's dtype, shape and bytes."""
    h = hashlib.sha256(str(jax.tree.structure(params)).encode())
    for leaf in jax.tree.leaves(params):
        h.update(data_digest(leaf).encode())
    return h.hexdigest()


def optimizer_probe(optimizer, params) -> list:
    """The first entry of every leaf of ``optimizer``'s first two updates, at parameters of ones, for gradients
    of ones and then of -2: numbers that change with its learning rate, momentum, schedule or weight decay
    (an optax transformation is a pair of closures, which cannot be compared)."""
    at = jax.tree.map(lambda x: jnp.ones(jnp.shape(x), x.dtype), params)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int32 counts with Python floats
        state = optimizer.init(at)
        first, state = optimizer.update(at, state, at)
        second, _ = optimizer.update(jax.tree.map(lambda x: -2 * x, at), state, at)
    values = (float(np.asarray(leaf).ravel()[0]) for leaf in jax.tree.leaves((first, second)))
    return [x if math.isfinite(x) else None for x in values]  # JSON has no NaN: a state file stores null


OPTIONAL_SETTINGS = ("noise", "params", "optimizer")
"""Settings that states written by earlier versions of jrbm do not record; such a state is not checked for them."""


def settings(
    estimator, batch_size: int, learn_sigma: bool, data, sigma_warmup: int = 0, noise: Optional[str] = None,
    params: Optional[str] = None, optimizer: Optional[list] = None,
) -> dict:
    """The settings a continued run must share with its first part (see :class:`FitState`).

    ``noise``: the generator that draws the layers' noise
    (:func:`jrbm.rng.noise_key`; a run on a mesh draws with its keys' own);
    ``params``: the initial parameters' :func:`params_digest`; ``optimizer``:
    its :func:`optimizer_probe`.
    """
    out = {"estimator": describe(estimator), "batch_size": int(batch_size), "learn_sigma": bool(learn_sigma), "data": data_digest(data)}
    if learn_sigma:
        out["sigma_warmup"] = int(sigma_warmup)
    for name, value in (("noise", noise), ("params", params), ("optimizer", optimizer)):
        if value is not None:
            out[name] = value
    return out


def _key_data(key) -> list:
    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).ravel().tolist()


def _key_impl(key) -> Optional[str]:
    return str(jax.random.key_impl(key)) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else None


def same_key(a, b) -> bool:
    """Whether two keys are the same key (implementation and bits)."""
    return _key_impl(a) == _key_impl(b) and _key_data(a) == _key_data(b)


def _same_probe(a, b) -> bool:
    """Whether two :func:`optimizer_probe` records agree to 1e-5 relative (``None``, a non-finite value, matches itself)."""
    if not isinstance(a, list) or len(a) != len(b):
        return False
    a, b = (np.array([np.nan if x is None else x for x in xs], np.float64) for xs in (a, b))
    return bool(np.allclose(a, b, rtol=1e-5, atol=0, equal_nan=True))


def _brief(numbers) -> str:
    """The distinct values of a list of floats, to 4 significant digits."""
    return ", ".join(dict.fromkeys("nan" if x is None else f"{x:.4g}" for x in numbers))


def check_continuation(state, key, expected: dict, epochs: int, source: str) -> None:
    """Raises ``ValueError`` when ``state`` cannot be continued by a run with this key, these settings and ``epochs``.

    ``state``: a :class:`FitState`, or the :class:`StateInfo` of a state file
    (:func:`read_state_info`), so that a file of another run is refused by its
    settings before its arrays are matched against this call's.
    """
    if not same_key(state.key, key):
        raise ValueError(
            f"key: {source} belongs to a run started with another key; pass the same key to continue it "
            "(or start a new run in another directory)"
        )
    for name, value in expected.items():
        if state.settings.get(name) == value or (name in OPTIONAL_SETTINGS and name not in state.settings):  # not recorded before
            continue
        recorded = state.settings.get(name)
        if name == "optimizer" and _same_probe(recorded, value):
            continue  # the probe's numbers may differ in their last bits on another backend
        if name == "params":
            raise ValueError(
                f"params: {source} belongs to a run started from other initial parameters (their SHA-256 digests differ); "
                "pass the run's initial parameters to continue it (or start a new run in another directory)"
            )
        if name == "optimizer":
            raise ValueError(
                f"optimizer: {source} was trained with an optimizer whose updates differ from this call's (its first two "
                f"updates of a probe gradient: {_brief(recorded)} against {_brief(value)}); a run can only be continued with "
                "the same optimizer (learning rate, momentum, schedule: the probe compares the first two updates only, so a schedule "
                "that differs only later is not caught); to change it, start a new run from the state's params"
            )
        if name == "noise":
            raise ValueError(
                f"mesh: {source} drew its noise with {state.settings[name]}, this call would draw it with {value}; a run "
                "on a mesh draws with its keys' own generator: continue it on a mesh or inside jrbm.rng.own_generator(), "
                "and a run without one without a mesh"
            )
        if name == "data":
            raise ValueError(f"data: {source} was trained on other data (their SHA-256 digests differ); a run can only be continued on the same data")
        raise ValueError(
            f"{name}: {source} was trained with {name}={state.settings.get(name)!r}, this call has {name}={value!r}; "
            "a run can only be continued with the same settings"
        )
    if state.epoch > epochs:
        raise ValueError(f"epochs: {source} is already at epoch {state.epoch}, beyond epochs={epochs}")


def check_structure(state: FitState, template: TrainState, source: str) -> None:
    """Raises ``ValueError`` when ``state``'s trees differ from a fresh start's (another optimiser, model or estimator)."""
    for name, got, want in zip(TrainState._fields, state.train_state, template):
        got_def, want_def = jax.tree.structure(got), jax.tree.structure(want)
        if got_def != want_def:
            raise ValueError(
                f"{source}: its {name} does not have the structure this call starts with ({got_def} against {want_def}); "
                "a run can only be continued with the same model, optimizer and estimator"
            )
        for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want)):
            if np.shape(a) != np.shape(b) or a.dtype != b.dtype:
                raise ValueError(
                    f"{source}: {name}{jax.tree_util.keystr(path)} has shape {np.shape(a)} and dtype {a.dtype}, "
                    f"this call starts with {np.shape(b)} and {b.dtype}"
                )


def _history_json(history: dict) -> dict:
    return {name: [None if isinstance(v, float) and math.isnan(v) else v for v in values] for name, values in history.items()}


def _history_from_json(history: dict) -> dict:
    return {name: [math.nan if v is None else v for v in values] for name, values in history.items()}


def check_directory(directory) -> str:
    """``directory`` as a path, created if missing, refused naming ``checkpoint_dir`` before any training when it
    is not a path or cannot be a folder (a file there, a parent that cannot hold it)."""
    if not isinstance(directory, (str, os.PathLike)) or isinstance(directory, bytes):
        raise TypeError(f"checkpoint_dir: expected a folder path (str or os.PathLike), got {type(directory).__name__}")
    path = os.fspath(directory)
    if not path:
        raise ValueError("checkpoint_dir: expected a folder path, got ''")
    io.prepare_folder(path, "checkpoint_dir")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"checkpoint_dir: the folder {path!r} is not writable")
    return path


def save_state(directory: str, state: FitState) -> str:
    """Writes ``state`` to ``directory/state.npz`` atomically (creating the directory); returns the path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, STATE_FILE)
    tree = parallel.gather(state.train_state)  # host copies, also of arrays split over a mesh
    metadata = {
        "epoch": int(state.epoch),
        "key": {"impl": _key_impl(state.key), "data": _key_data(state.key)},
        "settings": state.settings,
        "history": _history_json(state.history),
    }
    io.save_tree(path, tree, metadata)
    return path


class StateInfo(NamedTuple):
    """What a state file says of its run, without its arrays: ``key``, ``epoch`` and ``settings``."""

    key: Any
    epoch: int
    settings: dict


def _info(path: str, meta: dict) -> StateInfo:
    try:
        key_meta = meta["key"]
        raw = np.asarray(key_meta["data"], np.uint32)
        key = raw if key_meta["impl"] is None else jax.random.wrap_key_data(raw.reshape(-1), impl=key_meta["impl"])
        return StateInfo(key=key, epoch=int(meta["epoch"]), settings=dict(meta["settings"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a jrbm training state: its metadata lacks or garbles {e}") from None


def read_state_info(path: str) -> StateInfo:
    """The :class:`StateInfo` of a state file written by :func:`save_state` (its header only)."""
    if os.path.isdir(path):
        path = os.path.join(path, STATE_FILE)
    return _info(path, io.read_tree_header(path)["metadata"])


def load_state(path: str, template: TrainState) -> FitState:
    """Reads a :class:`FitState` written by :func:`save_state` (``path``: the file or its directory).

    ``template`` is the :class:`~jrbm.train.TrainState` a fresh start of the
    same run would have (:func:`jrbm.train.init_state`); the file must match its
    structure, shapes and dtypes.
    """
    if os.path.isdir(path):
        path = os.path.join(path, STATE_FILE)
    try:
        tree, meta = io.load_tree(path, TrainState(*template))
    except ValueError as e:
        if "does not match the expected structure" not in str(e):
            raise
        raise ValueError(f"{e}; a training state can only be continued with the same model, optimizer and estimator") from None
    info = _info(path, meta)
    try:
        history = _history_from_json(meta["history"])
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a jrbm training state: its metadata lacks or garbles the history ({e})") from None
    return FitState(*tree, key=info.key, epoch=info.epoch, history=history, settings=meta["settings"])


def find_state(directory: Optional[str]) -> Optional[str]:
    """``directory/state.npz`` if it exists, else ``None``."""
    if directory is None:
        return None
    path = os.path.join(os.fspath(directory), STATE_FILE)
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"checkpoint_dir: {path} exists and is not a file (a training state is written there); remove it or use another folder")
    return path if os.path.exists(path) else None
