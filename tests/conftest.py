"""Strict numerics for the whole suite.

float64 is enabled (the exactness tests need it; float32 is tested by passing
``dtype=jnp.float32`` explicitly), and dtype promotion is strict so that a
silent float32/float64 mix anywhere in the library fails a test. Rank promotion
stays allowed: the model functions broadcast the biases over any leading batch
shape by design.

float32 matrix products run at full float32 precision on every backend: on
recent GPUs JAX's default may use TF32 (a 10-bit mantissa) for them, and the
float32 tolerances here assume IEEE float32 arithmetic (the README states what
the library promises across backends).

Compiled programs are shared through JAX's persistent compilation cache, in a
folder made for the session (or ``JAX_COMPILATION_CACHE_DIR`` when it is set):
pytest-xdist's workers compile many of the same small programs, and most of
the suite's time is compilation. (The fresh interpreters that some tests
start do not use it: they lack the atomic writes below.) A program read
from the cache is the one XLA compiled, so no result changes. Entries are
written to a temporary file and renamed into place, so that no process reads
one while another writes it (JAX's cache writes in place unless its size is
limited, and a limited cache scans the whole folder at every write). On a JAX
without that cache class, the suite runs without the cache, and so it does
where a program read back from the cache computes otherwise than the one
compiled: each process first compiles a loop of a run-time length that draws
random numbers, drops its in-memory copy and runs it again from the cache
(jax 0.5.3 and 0.6.0 ran it zero times on a CPU, and with it ``fit``'s loop
over epochs: the parameters came back untrained; 0.6.1 and later run it right).
"""

import atexit
import os
import shutil
import tempfile

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_default_matmul_precision", "highest")


SESSION_CACHE = "JRBM_TESTS_JAX_CACHE"


def _atomic_cache_writes() -> bool:
    """JAX's file cache writing each entry to a temporary file renamed into place; False where it has no such class."""
    try:
        from jax._src import lru_cache

        put, suffix = lru_cache.LRUCache.put, lru_cache._CACHE_SUFFIX
    except (ImportError, AttributeError):
        return False

    def atomic_put(self, key, value):
        if getattr(self, "eviction_enabled", True):
            return put(self, key, value)  # a limited cache locks its folder itself
        path = self.path / f"{key}{suffix}"
        if not path.exists():
            tmp = self.path / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(value)
            os.replace(tmp, path)

    lru_cache.LRUCache.put = atomic_put
    return True


def _cache_reads_back_correctly() -> bool:
    """Whether a loop of a run-time length that draws random numbers runs the same read back from the cache
    (see above): compiled, dropped from memory, then run from the persistent cache."""

    def loop(key, n, x):
        return jax.lax.fori_loop(0, n, lambda i, x: x + 1.0 + 0.0 * jax.random.uniform(jax.random.fold_in(key, i), dtype=x.dtype), x)

    runs = []
    for _ in range(2):
        jax.clear_caches()  # the second run finds the program in the persistent cache only
        runs.append(float(jax.jit(loop)(jax.random.key(0), jax.numpy.int32(3), jax.numpy.float32(0.0))))
    return runs == [3.0, 3.0]


def _share_compiled_programs() -> None:
    """Points this process and pytest-xdist's workers at one persistent compilation cache (see above)."""
    if not _atomic_cache_writes() or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # no cache, or the user's own
    folder = os.environ.get(SESSION_CACHE)  # the workers inherit the folder that the first process made
    if folder is None:
        folder = tempfile.mkdtemp(prefix="jrbm-tests-jax-cache-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[SESSION_CACHE] = folder  # a name JAX does not read: the tests' own subprocesses do without
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the small programs too: most of the time
    if not _cache_reads_back_correctly():
        from jax._src import compilation_cache

        jax.config.update("jax_enable_compilation_cache", False)
        compilation_cache.reset_cache()  # JAX decides once per process whether the cache is used: decide again


_share_compiled_programs()


def pytest_report_header(config):
    import jrbm

    return f"jrbm {jrbm.__version__} from {jrbm.__file__}; jax {jax.__version__} on {jax.default_backend()}"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Plain ``pytest`` runs on every core (pytest-xdist's ``-n auto``) without putting ``-n`` in addopts,
    so that ``pytest -p no:xdist`` and ``pytest -n 0`` (or ``-n 4``) work as pytest users expect."""
    if hasattr(config, "workerinput") or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # an xdist worker: never start workers of its own
    if config.pluginmanager.has_plugin("xdist") and getattr(config.option, "numprocesses", None) is None \
            and getattr(config.option, "dist", "no") == "no" and not getattr(config.option, "collectonly", False):
        config.option.numprocesses = "auto"
