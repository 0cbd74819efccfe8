"""The generator behind every draw of a layer's noise.

Every sampler in jrbm takes an explicit ``jax.random`` key and splits it with
that key's own generator. The unit-level noise (the uniforms of a Bernoulli
draw, the normals of a Gaussian one: :meth:`jrbm.layers.Layer.noise`), which
is almost all of the random numbers an RBM uses, is drawn with
:func:`noise_key` of the key that reaches the layer:

* a key of JAX's default ``threefry2x32`` generator draws its noise with the
  counter-based ``philox4x32`` generator keyed by the same 64 bits
  (``jax.random.wrap_key_data(jax.random.key_data(key), impl="philox4x32")``);
* a key of any other generator (``philox2x32``, ``rbg``, a custom one) draws
  with its own;
* with a jax older than 0.10.2, which has no ``philox4x32``, every key draws
  with its own generator.

Why: on CPU, JAX lowers threefry as a rolled loop, and drawing uniforms costs
more than the matrix products of a Gibbs sweep. The speed suite
(``python -m benchmarks.run --suite speed``) times every sampler with its
noise drawn both ways (the "threefry noise" rows of ``benchmarks/RESULTS.md``),
and the bars-and-stripes benchmark times the two generators' uniforms alone. Philox4x32 is counter-based
like threefry, passes the same statistical test batteries (Salmon et al.,
SC 2011), and has a 64-bit key like threefry's, so distinct keys stay
distinct (``philox2x32``'s key has 32 bits: some ten thousand ``fold_in``
keys would collide with a probability of about 1%).

Determinism is unchanged: the noise is a fixed function of the key, the same
with ``jit`` on or off, under ``vmap`` equal to the loop over keys, and the
same on every backend.

**On a mesh**, jrbm draws with the key's own generator: with jax 0.10.2 (and
0.12), philox bits do not compile when XLA partitions them over devices (the
``mulhi`` of its rounds fails to lower with a sharding attached). Every
function that takes ``mesh=`` does this itself (its compiled program is
traced inside :func:`own_generator`), so a run with a mesh equals
the single-device run inside :func:`own_generator` up to reduction order. Code
of your own that traces jrbm's samplers under a sharding of its own should do
the same::

    with jrbm.rng.own_generator():
        jax.jit(my_sharded_step).lower(...)   # draws with the keys' own generator
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Iterator

import jax
from jax import Array

NOISE_IMPL = "philox4x32"
"""The generator that draws the noise of keys of JAX's default ``threefry2x32``."""

_OWN = contextvars.ContextVar("jrbm_rng_own_generator", default=False)


@functools.cache
def _has_noise_impl() -> bool:
    try:
        jax.eval_shape(lambda: jax.random.key(0, impl=NOISE_IMPL))
    except (ValueError, KeyError, TypeError):  # an unknown implementation's name, across jax versions
        return False
    return True


@contextlib.contextmanager
def own_generator(enabled: bool = True) -> Iterator[None]:
    """While active (and ``enabled``), :func:`noise_key` returns every key as it is.

    It acts when a function is traced: a program compiled outside it keeps
    its generator when called inside. jrbm's functions that take ``mesh=``
    trace their programs inside it.

    Example:
      >>> import jax, jrbm
      >>> key = jax.random.key(0)
      >>> str(jax.random.key_impl(jrbm.rng.noise_key(key)))
      'philox4x32'
      >>> with jrbm.rng.own_generator():
      ...     str(jax.random.key_impl(jrbm.rng.noise_key(key)))
      'threefry2x32'
    """
    token = _OWN.set(bool(enabled) or _OWN.get())
    try:
        yield
    finally:
        _OWN.reset(token)


def noise_key(key: Array) -> Array:
    """The key that draws a layer's noise from ``key``: see the module's description.

    Works on a batch of keys, under ``jit`` and ``vmap``.

    Example:
      >>> import jax, jrbm
      >>> key = jax.random.key(0)
      >>> bool((jax.random.key_data(jrbm.rng.noise_key(key)) == jax.random.key_data(key)).all())
      True
    """
    if _OWN.get() or not _has_noise_impl() or str(jax.random.key_impl(key)) != "threefry2x32":
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=NOISE_IMPL)


def own(mesh=None) -> bool:
    """Whether a program traced now, with this ``mesh`` argument, draws with the keys' own generator."""
    return _OWN.get() or mesh is not None


def traced_own(fn, enabled: bool):
    """``fn``, traced inside :func:`own_generator` when ``enabled``; for programs jrbm jits and caches by :func:`own`."""
    if not enabled:
        return fn

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with own_generator():
            return fn(*args, **kwargs)

    return wrapped


def jit(fn=None, *, static_argnames=()):
    """``jax.jit`` for jrbm's compiled samplers, with :func:`own` as part of the program's cache key.

    A call with a ``mesh`` argument that is not ``None``, or inside
    :func:`own_generator`, runs a program traced inside :func:`own_generator`;
    other calls one traced outside it. The jitted function's ``lower`` does the
    same. Arguments are passed to the program by name.
    """
    if fn is None:
        return functools.partial(jit, static_argnames=static_argnames)
    signature = inspect.signature(fn)

    def traced(own_generator_, **kwargs):
        with own_generator(own_generator_):
            return fn(**kwargs)

    compiled = jax.jit(traced, static_argnames=(*static_argnames, "own_generator_"))

    def arguments(args, kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments, own_generator_=own(bound.arguments.get("mesh")))

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return compiled(**arguments(args, kwargs))

    call.lower = lambda *args, **kwargs: compiled.lower(**arguments(args, kwargs))
    return call


def own_on_mesh(fn):
    """Decorator: ``fn`` runs inside :func:`own_generator` when its argument ``mesh`` is not ``None``.

    For :func:`jrbm.fit` and :func:`jrbm.fit_ensemble`, which also draw outside
    their compiled programs (the estimator's initial state); functions whose
    draws are all inside a program of :func:`jit` need only that."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with own_generator(signature.bind(*args, **kwargs).arguments.get("mesh") is not None):
            return fn(*args, **kwargs)

    return wrapped
