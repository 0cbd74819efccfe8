"""Checkpoint files: save and load model parameters with a versioned header.

Format (``version`` 2)
----------------------
A checkpoint is an uncompressed NumPy ``.npz`` archive (a zip file written by
``np.savez``) holding no pickled objects, with one entry per parameter leaf
and one ``header`` entry:

* ``W``, ``b``, ``c`` (and ``log_sigma`` for a GB-RBM), or for an
  :class:`~jrbm.RBM` ``visible.<field>``, ``hidden.<field>`` and ``W``: the leaves, as
  ``.npy`` arrays of the parameters' dtype. A dtype that ``.npy`` cannot
  describe (``bfloat16``) is stored as its raw bits (an unsigned integer
  array of the same width) and restored from the header's ``dtype``.
* ``header``: a 0-d unicode array holding a JSON object::

    {"format": "jrbm-checkpoint",     # identifies the file
     "version": 2,                    # this layout; readers refuse newer ones
     "family": "BernoulliRBM",        # "GaussianRBM" or "RBM": the NamedTuple type
     "n_visible": 784, "n_hidden": 500,
     "dtype": "float32",              # dtype of every leaf
     "leaves": [{"name": "W", "shape": [784, 500]},
                {"name": "b", "shape": [784]},
                {"name": "c", "shape": [500]}],   # in NamedTuple field order
     "metadata": {...}}               # the caller's JSON object ({} if none)

An ``RBM``'s header also names its layer types,
``"layers": {"visible": "Potts", "hidden": "dReLU"}``, and ``n_visible`` and
``n_hidden`` count units (a Potts layer of ``n`` units has ``q`` states each).
Version 1 (jrbm 0.1) is version 2 without the ``RBM`` family; those files load
unchanged.

Any zip reader and ``np.load(path, allow_pickle=False)`` can read the file.

Safety
------
:func:`save` validates everything before it touches the disk, writes to a
temporary file in the target's directory, flushes and ``fsync``s it and then
renames it over the target with ``os.replace`` (atomic on POSIX and Windows):
a crash or an error at any point leaves either the old file or the new one,
never a partial file, and the temporary file is removed on any error (after
a kill, by the next save of the same path).
:func:`load` never executes code from the file (``allow_pickle=False``) and
checks the header and every leaf, raising ``ValueError`` naming the path and
the problem for anything that is not a valid checkpoint.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from jrbm import _checks, layers, model
from jrbm.params import RBM, BernoulliRBM, GaussianRBM

FORMAT = "jrbm-checkpoint"
VERSION = 2

PathLike = str | os.PathLike

# Dtypes that .npy stores natively; others (bfloat16, ...) are stored as raw bits.
_NATIVE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _families() -> dict[str, type]:
    return {cls.__name__: cls for cls in (BernoulliRBM, GaussianRBM, RBM)}


def _layer_types(extra: Optional[Mapping[str, type]] = None) -> dict[str, type]:
    """The layer classes a checkpoint may name: jrbm's own, and the caller's (``load(..., layers=...)``)."""
    known = {name: getattr(layers, name) for name in layers.__all__ if isinstance(getattr(layers, name), type)}
    known.pop("Layer", None)
    known.update(extra or {})
    return known


def _field_names(family: str, header: dict, layer_types: Mapping[str, type], path: str) -> list[str]:
    """The leaf names a checkpoint of ``family`` must hold, in ``jax.tree.leaves`` order."""
    if family != "RBM":
        return list(_families()[family]._fields)
    spec = header.get("layers")
    if not (isinstance(spec, dict) and set(spec) == {"visible", "hidden"}):
        raise _error(path, f"invalid checkpoint: an RBM header needs 'layers' naming the visible and hidden layer types, got {spec!r}")
    names = []
    for side in ("visible", "hidden"):
        cls = layer_types.get(spec[side])
        if cls is None:
            raise _error(
                path, f"unknown {side} layer type {spec[side]!r} in the header; expected one of {', '.join(sorted(layer_types))} "
                "(pass a layer defined outside jrbm as load(path, layers={'Name': Class}))"
            )
        names += [f"{side}.{f}" for f in cls._fields]
    return names + ["W"]


# --------------------------------------------------------------------------- save


def _numpy_scalar(obj):
    """A numpy scalar (``np.float32(1.5)``, ``np.int64(3)``, ``np.bool_``) as the Python number ``json`` writes."""
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _metadata_json(metadata: Optional[Mapping[str, Any]]) -> dict:
    """Checks that ``metadata`` survives a JSON round trip; returns it as a plain dict."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata: expected a dict with str keys, got {type(metadata).__name__}")

    def check_keys(obj, where):
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise TypeError(f"metadata: keys must be str for JSON, got key {k!r} at {where}")
                check_keys(v, f"{where}[{k!r}]")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                check_keys(v, f"{where}[{i}]")

    check_keys(metadata, "metadata")
    try:
        text = json.dumps(metadata, allow_nan=False, default=_numpy_scalar)
    except TypeError as e:
        raise TypeError(f"metadata: expected JSON-serialisable values (dict, list, str, int, float, bool, None, numpy scalars): {e}") from None
    except ValueError as e:  # NaN or infinity
        raise ValueError(f"metadata: expected JSON-serialisable values, got a non-finite float ({e})") from None
    return json.loads(text)


def _leaf_arrays(params) -> dict[str, np.ndarray]:
    """Validates ``params`` and returns its leaves as NumPy arrays, by name (``W``, ``b``, ``visible.theta``, ...)."""
    model.check(params)  # raises on unknown types, bad shapes, mixed dtypes
    if not isinstance(params, tuple(_families().values())):
        raise TypeError(f"params: expected one of {', '.join(_families())} to save, got {type(params).__name__}")
    out = {}
    for name, leaf in zip(_checks.leaf_names(params, "params"), jax.tree.leaves(params)):
        if not _checks.is_concrete(leaf):
            raise TypeError(f"{name}: cannot save a traced value; call save outside jit/vmap/grad")
        _checks.finite(name, leaf)
        out[name.removeprefix("params.")] = np.asarray(leaf)
    return out


def _header(params, arrays: Mapping[str, np.ndarray], metadata: dict) -> dict:
    header = {
        "format": FORMAT,
        "version": VERSION,
        "family": type(params).__name__,
        "n_visible": int(params.visible.shape[0]),
        "n_hidden": int(params.hidden.shape[0]),
        "dtype": jnp.dtype(params.W.dtype).name,
        "leaves": [{"name": name, "shape": list(a.shape)} for name, a in arrays.items()],
        "metadata": metadata,
    }
    if isinstance(params, RBM):
        header["layers"] = {"visible": type(params.visible).__name__, "hidden": type(params.hidden).__name__}
    return header


def _to_storage(a: np.ndarray) -> np.ndarray:
    """The array as ``.npy`` stores it: native floats as is, others as raw unsigned bits."""
    if a.dtype in _NATIVE_DTYPES:
        return a
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _target(path: PathLike) -> tuple[str, str]:
    """Checks the destination; returns ``(path, directory)``: a symbolic link's target, so that the link stays."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a file path (str, bytes or os.PathLike), got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    if path == "" or path.endswith(os.sep) or os.path.isdir(path):
        raise IsADirectoryError(f"path: {path!r} names a directory; expected a file path such as 'model.npz'")
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        # os.replace would put a regular file in place of a device, pipe or socket (e.g. /dev/null)
        raise FileExistsError(f"path: {path!r} exists and is not a regular file (a device, pipe or socket); expected a file path")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(f"path: the parent {directory!r} of {path!r} is a file, not a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path: the parent directory {directory!r} of {path!r} does not exist")
    return path, directory


def _file_mode(path: str) -> int:
    """Permissions for the new file: the old file's, or the default for a new file (0o666 minus umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable; best effort (not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(path: PathLike, params: RBM, metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Writes ``params`` (and JSON ``metadata``) to a checkpoint file, atomically.

    See the module docstring for the format. ``path`` is used as given (no
    suffix is added; ``.npz`` is conventional). An existing file is replaced
    only once the new one is completely on disk; until then, and whenever
    anything fails, the old file is untouched and no temporary file remains
    (a killed process leaves one, which the next save of ``path`` removes:
    :func:`atomic_write`). Through a symbolic link, the linked file is
    replaced.

    Args:
      path: file to write.
      params: a model: :class:`~jrbm.RBM`, :class:`~jrbm.BernoulliRBM` or :class:`~jrbm.GaussianRBM`
        with finite leaves.
      metadata: optional JSON-serialisable dict (str keys; lists, str, int,
        finite float, bool, None; numpy scalars are stored as the Python
        numbers they hold), e.g. training settings. Tuples are stored as lists.

    Raises:
      TypeError, ValueError: bad ``params`` or ``metadata`` (nothing is written).
      IsADirectoryError, FileNotFoundError, NotADirectoryError, FileExistsError,
      PermissionError, OSError: ``path`` is a directory, its parent directory
        does not exist or is a file, it names a device, pipe or socket, or its
        directory is not writable.

    Example:
      >>> import os, tempfile, jax, jrbm.io
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 3)
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> jrbm.io.save(path, params, {"epochs": 10})
      >>> jrbm.io.load_metadata(path)
      {'epochs': 10}
      >>> jrbm.io.load(path).W.shape
      (6, 3)
    """
    arrays = _leaf_arrays(params)
    header = _header(params, arrays, _metadata_json(metadata))
    entries = {name: _to_storage(a) for name, a in arrays.items()}
    entries["header"] = np.array(json.dumps(header))
    atomic_write(path, lambda f: np.savez(f, **entries))


def prepare_folder(path: str, name: str) -> str:
    """Creates the folder ``path`` if missing; refuses, naming the argument ``name``, a file there or a folder
    that cannot be created."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: expected a folder, got {path!r}, which is a file")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{name}: cannot create the folder {path!r} ({e.strerror or e})") from None
    return path


def atomic_write(path: PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Calls ``write(f)`` on a temporary file beside ``path``, then renames it onto ``path``.

    The file is flushed and ``fsync``ed before ``os.replace``, so a crash or an
    error at any point leaves either the old file or the complete new one, and
    the temporary file is removed on any error. A process killed while it
    writes (SIGKILL) leaves its temporary file, ``.NAME.*.tmp`` beside
    ``path``; the next write of ``path`` removes it (so two processes must not
    write one path at once). Through a symbolic link, the file it points to is
    replaced and the link stays. :func:`save` and the command line's JSON and
    PNG outputs are written this way.

    Raises:
      IsADirectoryError, FileNotFoundError, NotADirectoryError, FileExistsError,
      PermissionError, OSError: ``path`` is a directory, its parent directory
        does not exist or is a file, it names a device, pipe or socket, or its
        directory is not writable.
    """
    path, directory = _target(path)
    mode = _file_mode(path)
    _remove_stale_temporaries(path)
    try:
        tmp = tempfile.NamedTemporaryFile(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp", delete=False
        )
    except OSError as e:  # permissions, a read-only or special file system
        raise type(e)(e.errno, f"path: cannot write to the directory {directory!r} of {path!r}: {e.strerror}") from None
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_directory(directory)


def _remove_stale_temporaries(path: str) -> None:
    """The temporary files of :func:`atomic_write` that a killed writer of ``path`` left behind: ``.NAME.XXXXXXXX.tmp``
    with ``tempfile``'s random characters (no dots), so a file of another path that starts with ``NAME.``
    (``model.npz.best`` beside ``model.npz``), perhaps being written now, is left alone."""
    directory, base = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    own = re.compile(rf"\.{re.escape(base)}\.[^.]+\.tmp")
    for stale in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(base)}.*.tmp")):
        if own.fullmatch(os.path.basename(stale)):
            with contextlib.suppress(OSError):
                os.unlink(stale)


# --------------------------------------------------------------------------- load


def _error(path: str, problem: str) -> ValueError:
    return ValueError(f"{path}: {problem}")


@contextlib.contextmanager
def _archive(path: PathLike) -> Iterator[tuple[str, Any]]:
    """Opens ``path`` as an ``.npz`` archive without pickle; yields ``(path, NpzFile)``."""
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"path: {path!r} is a directory, not a checkpoint file")
    with open(path, "rb") as f:  # FileNotFoundError / PermissionError as usual
        magic = f.read(4)
    if not magic:
        raise _error(path, "truncated checkpoint: the file is empty")
    if not magic.startswith(b"PK"):
        raise _error(path, "not a jrbm checkpoint: not an .npz (zip) archive")
    with open(path, "rb") as f:  # opened here, so that it is closed when np.load fails (np.load leaks its own then)
        try:
            npz = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
            raise _error(path, f"truncated or corrupt checkpoint: cannot open the .npz archive ({e})") from None
        if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - np.load only returns NpzFile for zips
            raise _error(path, "not a jrbm checkpoint: not an .npz archive")
        with npz:
            yield path, npz


def _entry(path: str, npz, name: str) -> np.ndarray:
    """Reads one array of the archive, turning read failures (CRC, truncation, pickle) into ValueError."""
    try:
        return npz[name]
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickled data), EOFError, zlib.error, ...
        raise _error(path, f"truncated or corrupt checkpoint: cannot read entry {name!r} ({type(e).__name__}: {e})") from None


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _parse_header(path: str, npz, layer_types: Optional[Mapping[str, type]] = None) -> dict:
    """Reads and validates the header of an open archive."""
    if "header" not in npz.files:
        found = ", ".join(sorted(npz.files)) or "none"
        raise _error(path, f"not a jrbm checkpoint: the .npz archive has no 'header' entry (entries: {found})")
    raw = _entry(path, npz, "header")
    if raw.shape != () or raw.dtype.kind != "U":
        raise _error(path, f"not a jrbm checkpoint: 'header' is not a JSON string (dtype {raw.dtype}, shape {raw.shape})")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise _error(path, f"not a jrbm checkpoint: 'header' is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise _error(path, "not a jrbm checkpoint: 'header' is not a JSON object")
    if header.get("format") != FORMAT:
        raise _error(path, f"not a jrbm checkpoint: header format is {header.get('format')!r}, expected {FORMAT!r}")
    version = header.get("version")
    if not _positive_int(version):
        raise _error(path, f"invalid checkpoint: header version is {version!r}, expected a positive integer")
    if version > VERSION:
        raise _error(
            path,
            f"unsupported checkpoint version {version}: this jrbm reads version {VERSION} and older; "
            "upgrade jrbm to load it",
        )
    families = _families()
    family = header.get("family")
    if family not in families:
        raise _error(path, f"unknown model family {family!r} in the header; expected one of {', '.join(families)}")
    for key in ("n_visible", "n_hidden"):
        if not _positive_int(header.get(key)):
            raise _error(path, f"invalid checkpoint: header {key} is {header.get(key)!r}, expected a positive integer")
    try:
        dtype = jnp.dtype(header.get("dtype"))
    except TypeError:
        raise _error(path, f"invalid checkpoint: unknown dtype {header.get('dtype')!r} in the header") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise _error(path, f"invalid checkpoint: header dtype {dtype} is not a floating dtype")
    leaves = header.get("leaves")
    fields = _field_names(family, header, _layer_types(layer_types), path)
    if not (isinstance(leaves, list) and all(isinstance(leaf, dict) for leaf in leaves)):
        raise _error(path, f"invalid checkpoint: header leaves is {leaves!r}, expected a list of objects")
    names = [leaf.get("name") for leaf in leaves]
    if names != fields:
        raise _error(path, f"invalid checkpoint: header leaves {names} do not match the fields {fields} of {family}")
    for leaf in leaves:
        shape = leaf.get("shape")
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise _error(path, f"invalid checkpoint: header shape {shape!r} of leaf {leaf['name']!r} is not a list of sizes")
    if not isinstance(header.get("metadata"), dict):
        raise _error(path, f"invalid checkpoint: header metadata is {type(header.get('metadata')).__name__}, expected an object")
    return header


def _restore_leaf(path: str, npz, leaf: dict, dtype: np.dtype) -> np.ndarray:
    """Reads one leaf and checks it against the header (shape, dtype, finite values)."""
    name, shape = leaf["name"], tuple(leaf["shape"])
    if name not in npz.files:
        raise _error(path, f"invalid checkpoint: the header lists leaf {name!r} but the archive has no such entry")
    a = _entry(path, npz, name)
    if a.shape != shape:
        raise _error(path, f"invalid checkpoint: leaf {name!r} has shape {a.shape} but the header says {shape}")
    if a.dtype != dtype:
        raw = np.dtype(f"u{dtype.itemsize}")
        if dtype in _NATIVE_DTYPES or a.dtype != raw:
            raise _error(path, f"invalid checkpoint: leaf {name!r} has dtype {a.dtype} but the header says {dtype}")
        a = a.view(dtype)
    if not np.all(np.isfinite(a.astype(np.float64))):
        raise _error(path, f"invalid checkpoint: leaf {name!r} holds non-finite values")
    return a


def read_header(path: PathLike) -> dict:
    """The validated header of a checkpoint: format, version, family, sizes, dtype, leaves, metadata.

    Reads only the header entry, not the leaves.

    Example:
      >>> import os, tempfile, jax, jrbm.io
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> jrbm.io.save(path, jrbm.init_gaussian(jax.random.key(0), 2, 4))
      >>> h = jrbm.io.read_header(path)
      >>> h["family"], h["n_visible"], h["n_hidden"], h["version"]
      ('GaussianRBM', 2, 4, 2)
    """
    with _archive(path) as (p, npz):
        return _parse_header(p, npz)


def load_metadata(path: PathLike) -> dict:
    """The metadata dict stored with :func:`save` (``{}`` when none was given)."""
    return read_header(path)["metadata"]


def load(path: PathLike, *, dtype: Optional[DTypeLike] = None, layers: Optional[Mapping[str, type]] = None):
    """Reads a checkpoint written by :func:`save`.

    Args:
      path: the checkpoint file.
      dtype: optional dtype to cast the leaves to; by default they keep the
        stored dtype, and loading a float64 checkpoint then requires
        ``jax_enable_x64`` (otherwise pass ``dtype=jnp.float32``).
      layers: ``{name: class}`` of layer types defined outside jrbm that the
        checkpoint of an :class:`~jrbm.RBM` may name.

    Returns:
      The parameters as the stored family's NamedTuple of ``jax.Array``\\ s.

    Raises:
      ValueError: naming the path and the problem, for anything that is not
        a valid checkpoint (not an npz, truncated, foreign, wrong format,
        newer version, unknown family, leaves disagreeing with the header).
      FileNotFoundError, IsADirectoryError: ``path`` is missing or a directory.

    Example:
      >>> import os, tempfile, jax, jrbm.io
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 3)
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> jrbm.io.save(path, params)
      >>> restored = jrbm.io.load(path)
      >>> type(restored).__name__, bool((restored.W == params.W).all())
      ('BernoulliRBM', True)
    """
    with _archive(path) as (p, npz):
        header = _parse_header(p, npz, layers)
        stored = np.dtype(jnp.dtype(header["dtype"]))
        arrays = [_restore_leaf(p, npz, leaf, stored) for leaf in header["leaves"]]
    target = _checks.float_dtype("dtype", dtype) if dtype is not None else stored
    if jax.dtypes.canonicalize_dtype(target) != target:
        raise ValueError(
            f"{p}: the checkpoint holds {target} parameters but jax_enable_x64 is off; enable it with "
            f"jax.config.update('jax_enable_x64', True) or pass dtype=jnp.float32"
        )
    n_visible, n_hidden = header["n_visible"], header["n_hidden"]
    family = header["family"]
    W = arrays[[leaf["name"] for leaf in header["leaves"]].index("W")]
    if (W.shape != (n_visible, n_hidden)) if family != "RBM" else (W.ndim < 2 or W.shape[0] != n_visible):
        raise _error(
            p, f"invalid checkpoint: leaf 'W' has shape {W.shape} but the header says "
            f"n_visible={n_visible}, n_hidden={n_hidden}"
        )
    leaves = [jnp.asarray(a, target) for a in arrays]
    if family == "RBM":
        types = _layer_types(layers)
        vis_cls, hid_cls = types[header["layers"]["visible"]], types[header["layers"]["hidden"]]
        nv = len(vis_cls._fields)
        params = RBM(vis_cls(*leaves[:nv]), hid_cls(*leaves[nv : nv + len(hid_cls._fields)]), leaves[-1])
    else:
        params = _families()[family](*leaves)
    try:
        model.check(params)
    except (TypeError, ValueError) as e:
        raise _error(p, f"invalid checkpoint: {e}") from None
    return params


# --------------------------------------------------------------------------- pytrees (training state)

TREE_FORMAT = "jrbm-tree"
TREE_VERSION = 1


def _npy_native(dtype: np.dtype) -> bool:
    """Whether ``.npy`` stores ``dtype`` itself (not ``bfloat16`` and the other ``ml_dtypes`` floats)."""
    return dtype in _NATIVE_DTYPES or dtype.kind in "biuc"


def _is_key(a) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _tree_leaf_spec(path_str: str, a) -> dict:
    """A leaf's header entry: its path, shape and dtype (of its ``key_data`` for a typed PRNG key)."""
    entry: dict[str, Any] = {"path": path_str}
    if _is_key(a):
        entry["key_impl"] = str(jax.random.key_impl(a))
        a = jax.random.key_data(a)
    entry.update(shape=[int(d) for d in np.shape(a)], dtype=jnp.dtype(getattr(a, "dtype", None) or np.result_type(a)).name)
    return entry


def save_tree(path: PathLike, tree: Any, metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Writes any pytree of arrays (a training state) to one ``.npz`` file, atomically.

    The companion of :func:`load_tree`, which needs a tree of the same
    structure to restore into (the *template*): the file stores the leaves, in
    ``jax.tree`` order, with their paths (``jax.tree_util.keystr``), shapes and
    dtypes, not the tree's Python types, so it holds no pickled objects. The
    values are stored bit for bit (raw bits for dtypes ``.npy`` lacks, such as
    ``bfloat16``; ``key_data`` for typed PRNG keys), so a restored state
    continues a computation exactly. Written like :func:`save`: to a temporary
    file, flushed to disk (``fsync``), then renamed over ``path``.

    Layout: one entry ``leaf_<i>`` per leaf and a ``header`` entry holding
    ``{"format": "jrbm-tree", "version": 1, "leaves": [{"path", "shape",
    "dtype"[, "key_impl"]}, ...], "metadata": {...}}``.

    Args:
      path: the file to write.
      tree: a pytree of arrays (jax or numpy; typed PRNG keys allowed); arrays
        spread over several processes must be gathered first
        (:func:`jrbm.parallel.gather`).
      metadata: optional JSON-serialisable dict stored in the header.

    Example:
      >>> import os, tempfile, jax.numpy as jnp, jrbm.io
      >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
      >>> jrbm.io.save_tree(path, {"w": jnp.ones(3), "step": jnp.int32(7)}, {"epoch": 2})
      >>> tree, meta = jrbm.io.load_tree(path, {"w": jnp.zeros(3), "step": jnp.int32(0)})
      >>> int(tree["step"]), meta
      (7, {'epoch': 2})
    """
    meta = _metadata_json(metadata)
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    entries, leaves = {}, []
    for i, (key_path, leaf) in enumerate(flat):
        name = f"tree{jax.tree_util.keystr(key_path)}"
        if not _checks.is_concrete(leaf):
            raise TypeError(f"{name}: cannot save a traced value; call save_tree outside jit/vmap/grad")
        if not (_is_key(leaf) or isinstance(leaf, (bool, int, float, complex, np.generic, np.ndarray, jax.Array))):
            raise TypeError(f"{name}: expected an array or a number, got {type(leaf).__name__} {leaf!r:.60}")
        host = np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
        if not (jnp.issubdtype(host.dtype, jnp.number) or host.dtype == bool):
            raise TypeError(f"{name}: expected a numeric or boolean array, got dtype {host.dtype}")
        entry = _tree_leaf_spec(jax.tree_util.keystr(key_path), leaf)
        leaves.append(entry)
        entries[f"leaf_{i}"] = host if _npy_native(host.dtype) else _to_storage(host)
    header = {"format": TREE_FORMAT, "version": TREE_VERSION, "leaves": leaves, "metadata": meta}
    entries["header"] = np.array(json.dumps(header))
    atomic_write(path, lambda f: np.savez(f, **entries))


def read_tree_header(path: PathLike) -> dict:
    """The validated header of a file written by :func:`save_tree` (without reading the leaves)."""
    with _archive(path) as (p, npz):
        return _parse_tree_header(p, npz)


def _parse_tree_header(path: str, npz) -> dict:
    if "header" not in npz.files:
        raise _error(path, "not a jrbm tree file: no 'header' entry")
    try:
        header = json.loads(str(_entry(path, npz, "header")))
    except json.JSONDecodeError as e:
        raise _error(path, f"invalid tree file: the header is not JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != TREE_FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise _error(path, f"not a jrbm tree file: expected format {TREE_FORMAT!r}, got {found!r}")
    version = header.get("version")
    if not _positive_int(version) or version > TREE_VERSION:
        raise _error(path, f"unsupported tree file version {version!r}: this jrbm reads versions up to {TREE_VERSION}; upgrade jrbm")
    if not isinstance(header.get("leaves"), list) or not isinstance(header.get("metadata"), dict):
        raise _error(path, "invalid tree file: the header needs a 'leaves' list and a 'metadata' object")
    return header


def load_tree(path: PathLike, like: Any) -> tuple[Any, dict]:
    """Reads a file written by :func:`save_tree` into the structure of ``like``; returns ``(tree, metadata)``.

    ``like`` is a tree of the same structure (for a training state, the state
    a fresh start would have): every leaf of the file must have the path,
    shape and dtype of ``like``'s leaf in the same position, or a
    ``ValueError`` names the first that differs. The restored leaves are
    NumPy arrays (typed PRNG keys come back as keys), bit-identical to the
    saved ones.

    Raises:
      ValueError: naming the path and the problem for a file that is not a
        valid tree file or does not match ``like``.
      FileNotFoundError, IsADirectoryError: ``path`` is missing or a directory.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    with _archive(path) as (p, npz):
        header = _parse_tree_header(p, npz)
        stored = header["leaves"]
        if len(stored) != len(flat):
            raise _error(p, f"does not match the expected structure: it holds {len(stored)} leaves, expected {len(flat)}")
        out = []
        for i, ((key_path, leaf), entry) in enumerate(zip(flat, stored)):
            want = _tree_leaf_spec(jax.tree_util.keystr(key_path), leaf)
            for field in ("path", "shape", "dtype", "key_impl"):
                if entry.get(field) != want.get(field):
                    raise _error(
                        p, f"does not match the expected structure at leaf {want['path'] or i}: "
                        f"{field} {entry.get(field)!r} in the file, expected {want.get(field)!r}"
                    )
            name = f"leaf_{i}"
            if name not in npz.files:
                raise _error(p, f"invalid tree file: the header lists {name!r} but the archive has no such entry")
            a = _entry(p, npz, name)
            dtype, shape = np.dtype(jnp.dtype(want["dtype"])), tuple(want["shape"])
            if a.dtype != dtype:
                if a.dtype != np.dtype(f"u{dtype.itemsize}") or _npy_native(dtype):
                    raise _error(p, f"invalid tree file: {name!r} has dtype {a.dtype}, the header says {dtype}")
                a = a.view(dtype)
            if a.shape != shape:
                raise _error(p, f"invalid tree file: {name!r} has shape {a.shape}, the header says {shape}")
            if "key_impl" in entry:
                a = jax.random.wrap_key_data(a, impl=entry["key_impl"])
            out.append(a)
    return jax.tree_util.tree_unflatten(treedef, out), header["metadata"]
