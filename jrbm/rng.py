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
with ``jit`` on or off, and, for threefry and philox keys, under ``vmap`` equal
to the loop over keys and the same on every backend. (``rbg`` and
``unsafe_rbg`` keys draw with XLA's RandomBitGenerator, which draws otherwise
under ``vmap`` than one key at a time and is not portable across backends.)

**On a mesh**, jrbm draws with the key's own generator: with jax 0.10.2 (and
0.12), philox bits do not compile when XLA partitions them over devices (the
``mulhi`` of its rounds fails to lower with a sharding attached). Every
function that takes ``mesh=`` does this itself (its compiled program is
traced inside :func:`own_generator`), as does every sampler called inside a
mesh context (``jax.set_mesh``: :func:`noise_key` returns keys as they are
there) or, among the public ones, with an argument placed on several devices; so a run with a mesh equals the single-device run inside
:func:`own_generator` up to reduction order, and not the plain single-device
run. They refuse philox keys (``philox2x32``, ``philox4x32``) by name. Code
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
      >>> noise = str(jax.random.key_impl(jrbm.rng.noise_key(key)))
      >>> noise in (jrbm.rng.NOISE_IMPL, "threefry2x32")  # philox4x32; the key's own with jax older than 0.10.2
      True
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
    dtype = getattr(key, "dtype", None)
    if dtype is None or not (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or dtype == "uint32"):
        raise TypeError(f"key: expected a jax.random key (or a batch of them), got {type(key).__name__} with dtype {dtype}")
    if _OWN.get() or _context_mesh() or not _has_noise_impl() or str(jax.random.key_impl(key)) != "threefry2x32":
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=NOISE_IMPL)


def own(mesh=None) -> bool:
    """Whether a program traced now, with this ``mesh`` argument, draws with the keys' own generator: inside
    :func:`own_generator`, with a mesh, or inside a mesh context (``jax.set_mesh``)."""
    return _OWN.get() or mesh is not None or _context_mesh()


def _context_mesh() -> bool:
    """Whether a mesh context (``jax.set_mesh``, ``jax.sharding.use_mesh``) is active."""
    get = getattr(jax.sharding, "get_abstract_mesh", None)
    return get is not None and not getattr(get(), "empty", True)


def _spans_devices(tree) -> bool:
    """Whether an array of ``tree`` is placed on more than one device (XLA then partitions the program)."""
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer) and len(leaf.sharding.device_set) > 1:
            return True
    return False


def _across_devices(arguments: dict) -> str:
    """Why a call's program is split over devices (its ``mesh``, a mesh context, an argument placed on several
    devices), or ``""``."""
    mesh = arguments.get("mesh")
    if mesh is not None and getattr(mesh, "size", 1) > 1:
        return "a mesh"
    if _context_mesh():
        return "a mesh context"
    if _spans_devices([v for k, v in arguments.items() if k != "mesh"]):
        return "an argument placed on several devices"
    return ""


def mesh_context(mesh, values=()):
    """``jax.set_mesh(mesh)`` when a mesh context is active and ``mesh`` is given (jrbm's mesh, with ``Auto`` axes,
    inside a user's ``jax.set_mesh`` of the same devices with ``Explicit`` axes: the program must see one), else a
    no-op: also when the context already is ``mesh``, or while ``values`` are traced (inside the user's ``jit``,
    where ``set_mesh`` is refused)."""
    if mesh is None or not _context_mesh() or not hasattr(jax, "set_mesh"):
        return contextlib.nullcontext()
    if jax.sharding.get_abstract_mesh() == getattr(mesh, "abstract_mesh", None):
        return contextlib.nullcontext()
    if any(isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(values)):
        return contextlib.nullcontext()
    return jax.set_mesh(mesh)


def _auto_axes(x):
    """An array placed on a mesh with ``Explicit`` axes, put on the same devices and spec with ``Auto`` axes."""
    sharding = getattr(x, "sharding", None) if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) else None
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or not hasattr(mesh, "axis_types") or all(str(t).endswith("Auto") for t in mesh.axis_types):
        return x
    from jax.sharding import AxisType, Mesh, NamedSharding  # noqa: PLC0415

    auto = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return jax.device_put(x, NamedSharding(auto, sharding.spec))


def _mesh_context_of(mesh, values=()):
    """:func:`mesh_context` of a public function's ``mesh`` argument, with ``Auto`` axes (as jrbm uses it)."""
    if mesh is None or not _context_mesh() or isinstance(mesh, jax.core.Tracer):
        return contextlib.nullcontext()
    from jrbm import parallel  # noqa: PLC0415 - parallel imports this module

    return mesh_context(parallel.check_mesh(mesh), values)


def check_key_for_devices(key, why: str, name: str = "key") -> None:
    """Refuses, naming ``name``, philox keys for a program split over devices (``why``): XLA fails to compile
    partitioned philox bits ("Unable to convert MHLO to StableHLO")."""
    if not why or key is None or isinstance(key, jax.core.Tracer):
        return
    try:
        impl = str(jax.random.key_impl(key))
    except (TypeError, ValueError):
        return  # not a key: the function's own check names it
    if "philox" in impl:
        raise ValueError(
            f"{name}: expected a key that compiles when XLA splits the work over devices (here {why}), got a {impl} key, "
            "whose bits fail to compile partitioned; use JAX's default threefry2x32 keys (jax.random.key(seed))"
        )


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

    A call with a ``mesh`` argument that is not ``None``, inside
    :func:`own_generator` or a mesh context, or with an argument placed on
    several devices, runs a program traced inside :func:`own_generator` (and
    refuses a philox key, which does not compile split over devices); other
    calls one traced outside it. The jitted function's ``lower`` does the
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
        why = _across_devices(bound.arguments)
        check_key_for_devices(bound.arguments.get("key"), why)
        return dict(bound.arguments, own_generator_=own(bound.arguments.get("mesh")) or bool(why))

    @functools.wraps(fn)
    def call(*args, **kwargs):
        kw = arguments(args, kwargs)
        with mesh_context(kw.get("mesh"), kw):
            return compiled(**kw)

    call.lower = lambda *args, **kwargs: compiled.lower(**arguments(args, kwargs))
    return call


def own_on_mesh(fn=None, *, set_mesh: bool = True):
    """Decorator: ``fn`` runs inside :func:`own_generator` when its argument ``mesh`` is not ``None`` (or a mesh
    context is active, or an argument is placed on several devices), and refuses a philox ``key`` (or ``keys``)
    then.

    For :func:`jrbm.fit` and :func:`jrbm.fit_ensemble`, which also draw outside
    their compiled programs (the estimator's initial state); functions whose
    draws are all inside a program of :func:`jit` need only that."""
    if fn is None:  # ``set_mesh=False``: for functions called inside the user's jit, where set_mesh is refused
        return functools.partial(own_on_mesh, set_mesh=set_mesh)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        why = _across_devices(arguments)
        name = next((n for n in ("key", "keys", "key_train") if n in arguments), "key")
        check_key_for_devices(arguments.get(name), why, name)
        context = _mesh_context_of(arguments.get("mesh"), arguments) if set_mesh else contextlib.nullcontext()
        if not isinstance(context, contextlib.nullcontext):  # arrays made inside the user's Explicit context follow
            args, kwargs = jax.tree.map(_auto_axes, (args, kwargs))
        with own_generator(arguments.get("mesh") is not None or bool(why)), context:
            return fn(*args, **kwargs)

    return wrapped
