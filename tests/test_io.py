"""Tests of jrbm.io: exact round trips, atomic writes and clear errors on bad files."""

import errno
import gc
import json
import os
import stat
import sys
import tempfile
import warnings
import zipfile

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jrbm
from jrbm import io


def _params(family, n_visible=5, n_hidden=3, dtype=jnp.float32, seed=0):
    key = jax.random.key(seed)
    if family == "BernoulliRBM":
        p = jrbm.init_bernoulli(key, n_visible, n_hidden, weight_std=1.0, dtype=dtype)
    else:
        p = jrbm.init_gaussian(key, n_visible, n_hidden, sigma=0.7, weight_std=1.0, dtype=dtype)
    # Non-trivial biases, so that every leaf carries information.
    return p._replace(b=p.b + jnp.arange(n_visible, dtype=dtype) / 3, c=p.c - jnp.arange(n_hidden, dtype=dtype) / 7)


def _assert_bitwise_equal(a, b):
    assert type(a) is type(b)
    for name, x, y in zip(a._fields, a, b):
        assert isinstance(y, jax.Array), name
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes(), name


def _rewrite(path, header_update=None, drop=(), replace=None):
    """Rewrites a checkpoint with a modified header or entries (to build bad files)."""
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files if k not in drop}
    if header_update is not None:
        header = json.loads(str(entries["header"]))
        header.update(header_update)
        entries["header"] = np.array(json.dumps(header))
    entries.update(replace or {})
    with open(path, "wb") as f:
        np.savez(f, **entries)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    params = _params("GaussianRBM")
    io.save(path, params, {"epochs": 3})
    return path, params


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("family", ["BernoulliRBM", "GaussianRBM"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_round_trip_is_exact(tmp_path, family, dtype):
    params = _params(family, dtype=dtype)
    metadata = {"epochs": 10, "lr": 1e-3, "name": "ünïcode", "tags": ["a", 1, None, True], "nested": {"k": 2}}
    path = tmp_path / "model.npz"
    io.save(path, params, metadata)
    _assert_bitwise_equal(params, io.load(path))
    assert io.load_metadata(path) == metadata
    header = io.read_header(str(path))
    assert header["format"] == "jrbm-checkpoint" and header["version"] == io.VERSION == 2
    assert header["family"] == family
    assert (header["n_visible"], header["n_hidden"]) == (5, 3)
    assert header["dtype"] == jnp.dtype(dtype).name
    assert [leaf["name"] for leaf in header["leaves"]] == list(params._fields)
    assert header["leaves"][0]["shape"] == [5, 3]


def test_file_is_a_plain_npz_without_pickle(saved):
    path, params = saved
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["W", "b", "c", "header", "log_sigma"]
        np.testing.assert_array_equal(f["W"], params.W)
    assert zipfile.is_zipfile(path)


def test_metadata_defaults_to_empty_and_tuples_become_lists(tmp_path):
    io.save(tmp_path / "a.npz", _params("BernoulliRBM"))
    assert io.load_metadata(tmp_path / "a.npz") == {}
    io.save(tmp_path / "b.npz", _params("BernoulliRBM"), {"shape": (2, 3)})
    assert io.load_metadata(tmp_path / "b.npz") == {"shape": [2, 3]}
    io.save(tmp_path / "c.npz", _params("BernoulliRBM"), {"lr": np.float32(1.5), "n": np.int64(3), "ok": np.bool_(True)})
    meta = io.load_metadata(tmp_path / "c.npz")
    assert meta == {"lr": 1.5, "n": 3, "ok": True} and [type(v) for v in meta.values()] == [float, int, bool]


def test_a_truncated_file_is_closed_when_it_is_refused(tmp_path):
    io.save(tmp_path / "a.npz", _params("BernoulliRBM"))
    raw = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    unraisable = []  # a file left open warns when it is collected, through sys.unraisablehook
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)  # np.load's own file, left open when the zip is unreadable
            with pytest.raises(ValueError, match="truncated or corrupt checkpoint"):
                io.load(tmp_path / "t.npz")
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not [u for u in unraisable if isinstance(u.exc_value, ResourceWarning)], [str(u.exc_value) for u in unraisable]


def test_bfloat16_round_trip(tmp_path):
    params = _params("GaussianRBM", dtype=jnp.bfloat16)
    io.save(tmp_path / "m.npz", params)
    assert io.read_header(tmp_path / "m.npz")["dtype"] == "bfloat16"
    _assert_bitwise_equal(params, io.load(tmp_path / "m.npz"))


def test_load_can_cast(saved):
    path, params = saved
    loaded = io.load(path, dtype=jnp.float64)
    assert loaded.W.dtype == jnp.float64
    np.testing.assert_array_equal(loaded.W, params.W.astype(jnp.float64))


def test_overwrite_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "model.npz"
    io.save(path, _params("BernoulliRBM", seed=0))
    os.chmod(path, 0o640)
    new = _params("GaussianRBM", seed=1)
    io.save(path, new)
    _assert_bitwise_equal(new, io.load(path))
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["model.npz"]


_FAMILIES = st.sampled_from(["BernoulliRBM", "GaussianRBM"])


@st.composite
def _random_params(draw):
    family = draw(_FAMILIES)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n_visible, n_hidden = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    width = 32 if dtype == np.float32 else 64
    values = st.floats(allow_nan=False, allow_infinity=False, width=width)
    # log_sigma: wherever exp(2 |log_sigma|) is finite (model.check refuses the rest): +-44 in float32, +-354 in float64
    bound = float(np.floor(np.log(np.finfo(dtype).max) / 2))
    log_scales = st.floats(-bound, bound, width=width)
    shapes = {"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,), "log_sigma": (n_visible,)}
    cls = getattr(jrbm, family)
    return cls(*(
        jnp.asarray(draw(hnp.arrays(dtype, shapes[f], elements=log_scales if f == "log_sigma" else values)))
        for f in cls._fields
    ))  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(params=_random_params(), metadata=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
def test_round_trip_property(params, metadata):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.npz")
        io.save(path, params, metadata)
        _assert_bitwise_equal(params, io.load(path))
        assert io.load_metadata(path) == metadata
        assert os.listdir(d) == ["m.npz"]


# ----------------------------------------------------------------- atomicity


def _assert_intact(tmp_path, path, params):
    _assert_bitwise_equal(params, io.load(path))
    assert io.load_metadata(path) == {"epochs": 3}
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_failed_rename_keeps_old_file(saved, tmp_path, monkeypatch):
    path, params = saved

    def crash(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        io.save(path, _params("BernoulliRBM", seed=1))
    monkeypatch.undo()
    _assert_intact(tmp_path, path, params)


@pytest.mark.parametrize("exception", [OSError("no space left on device"), KeyboardInterrupt()])
def test_failed_write_midway_keeps_old_file(saved, tmp_path, monkeypatch, exception):
    path, params = saved
    real_savez = np.savez

    def half_write(file, **entries):
        real_savez(file, **entries)
        file.seek(file.tell() // 2)
        file.truncate()
        raise exception

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(type(exception)):
        io.save(path, _params("BernoulliRBM", seed=1))
    monkeypatch.undo()
    _assert_intact(tmp_path, path, params)


def test_invalid_input_writes_nothing(saved, tmp_path):
    path, params = saved
    bad = params._replace(W=params.W.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match=r"params.W: expected finite values, got nan at index \(0, 0\)"):
        io.save(path, bad)
    with pytest.raises(TypeError, match="metadata: expected JSON-serialisable"):
        io.save(path, params, {"rng": object()})
    _assert_intact(tmp_path, path, params)


# ----------------------------------------------------------------- save errors


def test_save_rejects_non_json_metadata(tmp_path):
    params = _params("BernoulliRBM")
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="metadata: expected JSON-serialisable values .*ndarray"):
        io.save(path, params, {"mean": np.zeros(3)})
    with pytest.raises(ValueError, match="metadata: .* non-finite float"):
        io.save(path, params, {"loss": float("nan")})
    with pytest.raises(TypeError, match=r"metadata: keys must be str for JSON, got key 1 at metadata\['a'\]"):
        io.save(path, params, {"a": {1: 2}})
    with pytest.raises(TypeError, match="metadata: expected a dict with str keys, got list"):
        io.save(path, params, [1, 2])
    assert os.listdir(tmp_path) == []


def test_save_rejects_bad_params(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match=r"params: expected one of RBM, BernoulliRBM, GaussianRBM \(a model with visible, hidden and W\), got tuple"):
        io.save(path, (jnp.zeros((2, 2)),) * 3)
    p = _params("BernoulliRBM")
    with pytest.raises(ValueError, match="params.c: expected shape"):
        io.save(path, p._replace(c=jnp.zeros(7, p.W.dtype)))
    g = _params("GaussianRBM")
    with pytest.raises(ValueError, match="params.log_sigma: expected finite values, got inf"):
        io.save(path, g._replace(log_sigma=g.log_sigma.at[1].set(jnp.inf)))
    assert os.listdir(tmp_path) == []


def test_save_path_errors(tmp_path, monkeypatch):
    params = _params("BernoulliRBM")
    with pytest.raises(IsADirectoryError, match="path: .* names a directory"):
        io.save(tmp_path, params)
    with pytest.raises(FileNotFoundError, match="path: the parent directory .*missing.* does not exist"):
        io.save(tmp_path / "missing" / "m.npz", params)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", denied)
    with pytest.raises(PermissionError, match="path: cannot write to the directory"):
        io.save(tmp_path / "m.npz", params)


def test_save_through_a_link_and_after_a_killed_writer(tmp_path):
    params = _params("BernoulliRBM")
    with pytest.raises(TypeError, match=r"path: expected a file path \(str, bytes or os.PathLike\), got NoneType"):
        io.save(None, params)
    # Through a symbolic link: the file it points to is replaced, the link stays.
    (tmp_path / "real.npz").write_text("old")
    os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    io.save(tmp_path / "link.npz", params)
    assert os.path.islink(tmp_path / "link.npz")
    np.testing.assert_array_equal(io.load(tmp_path / "real.npz").W, params.W)
    # A temporary file that a killed writer left (SIGKILL runs no cleanup) goes with the next write of that path,
    # and only that path's.
    (tmp_path / ".m.npz.abc123.tmp").write_bytes(b"partial")
    (tmp_path / ".other.npz.abc123.tmp").write_bytes(b"partial")
    io.save(tmp_path / "m.npz", params)
    assert sorted(os.listdir(tmp_path)) == [".other.npz.abc123.tmp", "link.npz", "m.npz", "real.npz"]


def test_save_refuses_special_files_and_file_parents(tmp_path):
    params = _params("BernoulliRBM")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # like /dev/null: os.replace would swap the special file for a regular one
    with pytest.raises(FileExistsError, match="path: .*pipe.* exists and is not a regular file"):
        io.save(pipe, params)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    parent = tmp_path / "file"
    parent.write_text("x")
    with pytest.raises(NotADirectoryError, match="path: the parent .*file.* is a file, not a directory"):
        io.save(parent / "m.npz", params)
    assert parent.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["file", "pipe"]


def test_save_to_a_read_only_file_system(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(OSError, match="path: cannot write to the directory .*: Read-only file system"):
        io.save(tmp_path / "m.npz", _params("BernoulliRBM"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_save_to_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="path: cannot write to the directory"):
            io.save(ro / "m.npz", _params("BernoulliRBM"))
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------- load errors


def test_truncated_file(saved):
    path, _ = saved
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 1, 10):
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match=f"{path}: truncated or corrupt checkpoint"):
            io.load(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="truncated checkpoint: the file is empty"):
        io.load(path)


def test_corrupt_entry(saved):
    path, _ = saved
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("W.npy")
    data = bytearray(path.read_bytes())
    # Flip the last byte of W's stored data (behind its 30-byte local header, name
    # and extra field; the archive is uncompressed): the CRC check fails on read.
    local_extra = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    end = info.header_offset + 30 + len(info.filename) + local_extra + info.compress_size
    data[end - 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated or corrupt checkpoint: cannot read entry 'W'"):
        io.load(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="noise.npz: not a jrbm checkpoint: not an .npz"):
        io.load(path)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz"):
        io.read_header(tmp_path / "array.npy")


def test_pickled_file_is_not_executed(tmp_path):
    import pickle

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"W": 1}))
    with pytest.raises(ValueError, match="not a jrbm checkpoint"):
        io.load(path)
    # An npz whose entry is a pickled object array is refused, not unpickled.
    np.savez(tmp_path / "obj.npz", header=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(ValueError, match="cannot read entry 'header'"):
        io.load(tmp_path / "obj.npz")


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, x=np.ones(3))
    with pytest.raises(ValueError, match=r"foreign.npz: not a jrbm checkpoint: the .npz archive has no 'header' entry \(entries: x\)"):
        io.load(path)
    np.savez(path, header=np.array("not json"))
    with pytest.raises(ValueError, match="'header' is not valid JSON"):
        io.load(path)


def test_wrong_format(saved):
    path, _ = saved
    _rewrite(path, {"format": "other-format"})
    with pytest.raises(ValueError, match="not a jrbm checkpoint: header format is 'other-format'"):
        io.load(path)


def test_newer_version(saved):
    path, _ = saved
    _rewrite(path, {"version": 3})
    with pytest.raises(ValueError, match="unsupported checkpoint version 3: this jrbm reads version 2"):
        io.load(path)
    with pytest.raises(ValueError, match="unsupported checkpoint version 3"):
        io.load_metadata(path)
    _rewrite(path, {"version": "1"})
    with pytest.raises(ValueError, match="header version is '1', expected a positive integer"):
        io.load(path)


def test_unknown_family(saved):
    path, _ = saved
    _rewrite(path, {"family": "PoissonRBM"})
    with pytest.raises(ValueError, match="unknown model family 'PoissonRBM'"):
        io.load(path)


def test_leaves_disagree_with_header(saved):
    path, params = saved
    data = path.read_bytes()
    _rewrite(path, replace={"W": np.zeros((5, 4), np.float32)})
    with pytest.raises(ValueError, match=r"leaf 'W' has shape \(5, 4\) but the header says \(5, 3\)"):
        io.load(path)

    path.write_bytes(data)
    _rewrite(path, {"n_hidden": 4})
    with pytest.raises(ValueError, match="leaf 'W' has shape .* but the header says n_visible=5, n_hidden=4"):
        io.load(path)

    path.write_bytes(data)
    _rewrite(path, replace={"c": np.zeros(3, np.float64)})
    with pytest.raises(ValueError, match="leaf 'c' has dtype float64 but the header says float32"):
        io.load(path)

    path.write_bytes(data)
    _rewrite(path, drop=("log_sigma",))
    with pytest.raises(ValueError, match="lists leaf 'log_sigma' but the archive has no such entry"):
        io.load(path)

    path.write_bytes(data)
    header = io.read_header(path)
    header["leaves"] = header["leaves"][:3]
    _rewrite(path, {"leaves": header["leaves"]})
    with pytest.raises(ValueError, match=r"header leaves \['W', 'b', 'c'\] do not match the fields"):
        io.load(path)

    path.write_bytes(data)
    header["leaves"] = [dict(leaf, shape=[3]) if leaf["name"] == "b" else leaf for leaf in io.read_header(path)["leaves"]]
    _rewrite(path, {"leaves": header["leaves"]}, replace={"b": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="invalid checkpoint: params.b: expected shape"):
        io.load(path)

    path.write_bytes(data)
    _rewrite(path, replace={"b": np.full(5, np.inf, np.float32)})
    with pytest.raises(ValueError, match="leaf 'b' holds non-finite values"):
        io.load(path)


def test_load_path_errors(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory, not a checkpoint file"):
        io.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "missing.npz")


def test_float64_checkpoint_without_x64(tmp_path):
    io.save(tmp_path / "f64.npz", _params("BernoulliRBM", dtype=jnp.float64))
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)  # the global flag: jax before 0.8 has no jax.enable_x64
    try:
        with pytest.raises(ValueError, match="float64 parameters but jax_enable_x64 is off"):
            io.load(tmp_path / "f64.npz")
        assert io.load(tmp_path / "f64.npz", dtype=jnp.float32).W.dtype == jnp.float32
        with pytest.raises(ValueError, match=r"dtype: float64 needs jax_enable_x64, which is off"):  # not truncated to float32
            jrbm.init_bernoulli(jax.random.key(0), 3, 2, dtype=jnp.float64)
    finally:
        jax.config.update("jax_enable_x64", x64)


# --- files of the first release, and models of any pairing of layers --------------------------------


DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_version_1_files_written_by_the_first_release_still_load(family):
    """tests/data/v1_*.npz were written by jrbm 0.1.0 (format version 1), before layers existed."""
    path = os.path.join(DATA_DIR, f"v1_{family}.npz")
    assert io.read_header(path)["version"] == 1
    params = io.load(path)
    expected = np.load(os.path.join(DATA_DIR, "v1_expected.npz"))
    prefix = "bb" if family == "bernoulli" else "gb"
    assert type(params).__name__ == ("BernoulliRBM" if family == "bernoulli" else "GaussianRBM")
    for name, leaf in zip(params._fields, params):
        np.testing.assert_array_equal(np.asarray(leaf), expected[f"{prefix}_{name}"], err_msg=name)
    assert io.load_metadata(path) == {"written_by": "jrbm 0.1.0 (format version 1)"}


def _any_pairing():
    from jrbm.layers import Potts, dReLU

    k1, k2 = jax.random.split(jax.random.key(3))
    return jrbm.RBM(Potts(jax.random.normal(k1, (4, 3))), dReLU(*(0.1 * jnp.arange(2.0) + i for i in range(4))),
                    jax.random.normal(k2, (4, 3, 2)))


def test_any_pairing_round_trips(tmp_path):
    params = _any_pairing()
    path = str(tmp_path / "rbm.npz")
    io.save(path, params, {"note": "potts-drelu"})
    header = io.read_header(path)
    assert header["family"] == "RBM" and header["layers"] == {"visible": "Potts", "hidden": "dReLU"}
    assert [leaf["name"] for leaf in header["leaves"]][:1] == ["visible.theta"] and header["leaves"][-1]["name"] == "W"
    restored = io.load(path)
    assert type(restored.visible).__name__ == "Potts" and type(restored.hidden).__name__ == "dReLU"
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_layer_defined_outside_jrbm_loads_when_named(tmp_path):
    from jrbm.layers import Bernoulli

    class Mine(Bernoulli):  # a layer type jrbm does not know by name
        pass

    params = jrbm.RBM(Bernoulli(jnp.zeros(3)), Mine(jnp.ones(2)), jnp.zeros((3, 2)))
    path = str(tmp_path / "mine.npz")
    io.save(path, params)
    with pytest.raises(ValueError, match=r"unknown hidden layer type 'Mine'.*load\(path, layers="):
        io.load(path)
    restored = io.load(path, layers={"Mine": Mine})
    assert type(restored.hidden) is Mine


def test_a_save_leaves_the_temporary_file_of_a_longer_name_alone(tmp_path):
    """Found by a review: saving model.npz removed '.model.npz.best.XXXXXXXX.tmp', the file another writer of
    model.npz.best was writing. Only the path's own stale temporaries (random characters, no dots) are removed."""
    own, other = tmp_path / ".model.npz.abcdefgh.tmp", tmp_path / ".model.npz.best.abcdefgh.tmp"
    own.write_bytes(b"stale")
    other.write_bytes(b"being written")
    jrbm.save(tmp_path / "model.npz", jrbm.init_bernoulli(jax.random.key(0), 3, 2))
    assert not own.exists() and other.read_bytes() == b"being written"
