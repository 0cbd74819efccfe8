"""Input validation at the public boundary.

Every check here runs in Python on static information (shapes, dtypes) or, for
value checks (NaN, non-binary data), only on concrete arrays: inside ``jit`` or
``vmap`` the values are tracers and the value checks are skipped, so nothing is
added to compiled hot loops. Each error names the argument, what was expected
and what was given.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer under jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def _integer(name: str, value, low: int, expected: str, show_type: bool = False) -> int:
    """``value`` as an int of at least ``low`` (not a bool); ``expected`` words the error."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected {expected}, got the bool {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        got = f"{type(value).__name__} {value!r}" if show_type else repr(value)
        raise TypeError(f"{name}: expected {expected}, got {got}") from None
    if out < low:
        raise ValueError(f"{name}: expected {expected}, got {out}")
    return out


def positive_int(name: str, value) -> int:
    return _integer(name, value, 1, "a positive integer")


def seed(name: str, value) -> int:
    """A seed for ``numpy.random.default_rng``: a non-negative integer."""
    return _integer(name, value, 0, "a non-negative integer seed", show_type=True)


def flag(name: str, value) -> bool:
    """``value`` when it is a bool (a string such as ``"no"`` would read as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def static_positive_int(name: str, value) -> int:
    """:func:`positive_int` for a loop length or shape, with a hint when it was traced under ``jit``."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name}: expected a positive integer known at trace time (a static argument), got a traced value; "
            f"close over it or mark it static (jax.jit(..., static_argnames=...))"
        )
    return positive_int(name, value)


def real_in(name: str, value, low: float, high: float, expected: str, *, open_high: bool = False) -> float:
    """A Python float in ``[low, high]`` (``[low, high)`` with ``open_high``); ``expected`` words the error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    out = float(value)
    if not (low <= out <= high) or (open_high and out == high) or out != out:
        raise ValueError(f"{name}: expected {expected}, got {out}")
    return out


def float32_or_wider(dtype, what: str, why: str) -> None:
    """Refuses half-precision parameters (``params``) where ``what`` (AIS, the samplers) needs float32 or wider."""
    if jnp.finfo(dtype).bits < 32:
        raise TypeError(
            f"params: {what} float32 or float64 parameters, got {jnp.dtype(dtype).name}, {why}; "
            "cast them first, e.g. jax.tree.map(lambda x: x.astype(jnp.float32), params)"
        )


def float_dtype(name: str, dtype):
    """``dtype`` as a floating ``numpy`` dtype (float32, float64, ...); raises naming ``name`` otherwise."""
    try:
        out = jnp.dtype(dtype)
    except TypeError:
        out = None
    if out is None or not jnp.issubdtype(out, jnp.floating):
        got = repr(dtype) if out is None or isinstance(dtype, str) else str(out)
        raise TypeError(f"{name}: expected a floating dtype (float32, float64, ...), got {got}")
    return out


def _as_array(name: str, x):
    if isinstance(x, (jax.Array, np.ndarray)):
        return x
    try:
        return np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array, got {type(x).__name__} ({e})") from None


def _numeric_dtype(name: str, x) -> None:
    dt = x.dtype
    if not (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.integer) or jnp.issubdtype(dt, jnp.bool_)):
        raise TypeError(f"{name}: expected a real numeric or boolean array, got dtype {dt}")


def finite(name: str, x, squares_in=None) -> None:
    """Raises if a concrete array holds NaN or infinity, or with ``squares_in`` (a dtype) values whose squares
    overflow it (energies and moments square the data: 1e20 is finite in float32, its square is not)."""
    if not is_concrete(x) or jnp.issubdtype(x.dtype, jnp.bool_):
        return
    a = np.asarray(x)
    if jnp.issubdtype(a.dtype, jnp.floating):
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}: expected finite values, got {a[idx]} at index {idx} ({int(bad.sum())} non-finite entries)")
    if squares_in is not None and a.size:
        limit = float(np.sqrt(np.finfo(squares_in).max))
        if float(np.max(np.abs(a))) >= limit:
            idx = tuple(int(i) for i in np.argwhere(np.abs(a) >= limit)[0])
            raise ValueError(
                f"{name}: expected values of magnitude below {limit:.3g}, whose squares are finite in "
                f"{jnp.dtype(squares_in).name}, got {a[idx]} at index {idx}; rescale the data"
            )


def leaf_names(tree, name: str) -> list[str]:
    """``name.field.subfield`` for every leaf of a parameter pytree, in ``jax.tree.leaves`` order."""
    out = []
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = [getattr(p, "name", None) or str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
        out.append(".".join([name] + parts))
    return out


def same_tree(tree, like) -> bool:
    """Whether ``tree`` has the structure and leaf shapes of ``like`` (a state made for another model fails)."""
    return jax.tree.structure(tree) == jax.tree.structure(like) and [
        tuple(jnp.shape(a)) for a in jax.tree.leaves(tree)] == [tuple(jnp.shape(b)) for b in jax.tree.leaves(like)]


def finite_leaves(name: str, tree) -> None:
    """:func:`finite` on every leaf of a parameter pytree, named ``name.field``."""
    for leaf_name, leaf in zip(leaf_names(tree, name), jax.tree.leaves(tree)):
        finite(leaf_name, leaf)


def layer_data(name: str, x, layer, dtype, *, what: str = "visible"):
    """Validates one state or a batch for ``layer`` (trailing shape ``layer.shape``, finite, within the layer's
    states as :func:`jrbm.layers.base.check_training_data` has them: ``[0, 1]`` for Bernoulli units, the states
    themselves for the others) and casts it to ``dtype``. Values are checked when concrete."""
    from jrbm.layers import base as layer_base  # the layers import this module
    x = _as_array(name, x)
    _numeric_dtype(name, x)
    shape = tuple(layer.shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        dims = ", ".join(str(d) for d in shape)
        states = "" if k == 1 else f" of shape {shape[1:]}"
        raise ValueError(f"{name}: expected shape (..., {dims}) for {shape[0]} {what} units{states}, got shape {tuple(x.shape)}")
    finite(name, x, squares_in=dtype)
    layer_base.check_training_data(layer, name, x)
    return jnp.asarray(x, dtype)


def data_matrix(name: str, data, n_visible: int | None = None, squares_in=None):
    """Validates a data set: a non-empty 2-D array of finite numbers (whose squares are finite in ``squares_in``)."""
    data = _as_array(name, data)
    _numeric_dtype(name, data)
    if data.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_examples, n_visible), got shape {tuple(data.shape)}")
    if data.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got shape {tuple(data.shape)}")
    if n_visible is not None and data.shape[1] != n_visible:
        raise ValueError(f"{name}: expected {n_visible} columns (n_visible), got shape {tuple(data.shape)}")
    finite(name, data, squares_in)
    return data


def data_batch(name: str, data, layer, dtype=None):
    """Validates a data set for ``layer``: a non-empty ``(n_examples, *layer.shape)`` array of finite numbers.

    Returns it as a jax array in ``dtype`` (kept as is when ``dtype`` is None).
    """
    shape = tuple(layer.shape)
    if len(shape) == 1:
        data = data_matrix(name, data, shape[0], dtype)
    else:
        data = _as_array(name, data)
        _numeric_dtype(name, data)
        if data.ndim != 1 + len(shape) or tuple(data.shape[1:]) != shape:
            raise ValueError(f"{name}: expected shape (n_examples, {', '.join(map(str, shape))}), got shape {tuple(data.shape)}")
        if data.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one example, got shape {tuple(data.shape)}")
        finite(name, data, dtype)
    return data if dtype is None else jnp.asarray(data, dtype)


def broadcastable(*named_shapes) -> None:
    """Raises unless the batch shapes ``(name, shape)`` broadcast against each other."""
    try:
        np.broadcast_shapes(*(shape for _, shape in named_shapes))
    except ValueError:
        described = ", ".join(f"{name} {tuple(shape)}" for name, shape in named_shapes)
        raise ValueError(f"{' and '.join(n for n, _ in named_shapes)}: expected batch shapes that broadcast, got {described}") from None


def optimizer(name: str, opt) -> None:
    """Raises unless ``opt`` looks like an ``optax.GradientTransformation`` (has ``init`` and ``update``)."""
    if callable(opt) and not hasattr(opt, "init") and getattr(opt, "__module__", "").startswith("optax"):
        raise TypeError(
            f"{name}: expected an optax.GradientTransformation, got the function {getattr(opt, '__name__', opt)!r} itself; "
            f"call it with its settings, e.g. {name}=optax.{getattr(opt, '__name__', 'sgd')}(0.1)"
        )
    if not (callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))):
        raise TypeError(
            f"{name}: expected an optax.GradientTransformation such as optax.sgd(0.1), got {type(opt).__name__} {opt!r}"
        )


def estimator(name: str, est) -> None:
    """Raises unless ``est`` has the estimator interface ``init(key, params, data)`` and ``grad(key, params, batch, state)``."""
    if isinstance(est, type):
        raise TypeError(
            f"{name}: expected an estimator instance, got the class {est.__name__} itself; "
            f"make one with its settings, e.g. {name}=jrbm.{est.__name__}(1)"
        )
    if not (callable(getattr(est, "init", None)) and callable(getattr(est, "grad", None))):
        raise TypeError(
            f"{name}: expected an estimator with init and grad methods such as jrbm.CD(1), jrbm.PCD(1) or jrbm.PT(10), "
            f"got {type(est).__name__} {est!r}"
        )


def key(name: str, k) -> None:
    """Raises unless ``k`` is a JAX PRNG key (new-style or raw uint32[2])."""
    dt = getattr(k, "dtype", None)
    if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        if k.shape != ():
            raise ValueError(
                f"{name}: expected one jax.random key (shape ()), got a batch of keys of shape {tuple(k.shape)}; "
                "pass one key, or jax.vmap over the batch"
            )
        return
    if dt is not None and dt == jnp.uint32 and getattr(k, "shape", None) == (2,):
        return
    shape = getattr(k, "shape", None)
    batch = " (a batch of raw keys? pass one key, or jax.vmap over the batch)" if dt == jnp.uint32 and shape and shape[-1:] == (2,) else ""
    raise TypeError(
        f"{name}: expected a jax.random key (jax.random.key(seed)), "
        f"got {type(k).__name__} with dtype {dt}" + (f" and shape {tuple(shape)}" if shape is not None else "") + batch
    )


def schedule(name: str, betas, dtype, *, from_zero: bool):
    """Validates inverse temperatures for AIS (``from_zero``: 0 to 1) or tempering (ending at 1).

    An int ``m`` means ``m`` values equally spaced in ``[0, 1]`` (``[1.0]`` when
    ``m = 1``). An array must be 1-D, finite, in ``[0, 1]``, non-decreasing, end at
    exactly 1 and, with ``from_zero``, start at exactly 0; values of a traced
    array are not checked. Returns a 1-D array in ``dtype``.
    """
    least = 2 if from_zero else 1
    if isinstance(betas, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int (the number of temperatures) or a 1-D array, got a bool")
    if isinstance(betas, (int, np.integer)):
        m = operator.index(betas)
        if m < least:
            raise ValueError(f"{name}: expected at least {least} temperatures, got {m}")
        return jnp.asarray(np.linspace(0.0, 1.0, m) if m > 1 else np.ones(1), dtype)
    if not isinstance(betas, (jax.Array, np.ndarray)):
        try:
            betas = np.asarray(betas, np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name}: expected an int or a 1-D array, got {type(betas).__name__} ({e})") from None
    if not (jnp.issubdtype(betas.dtype, jnp.floating) or jnp.issubdtype(betas.dtype, jnp.integer)):
        raise TypeError(f"{name}: expected a real array, got dtype {betas.dtype}")
    if betas.ndim != 1 or betas.shape[0] < least:
        raise ValueError(
            f"{name}: expected a non-empty 1-D array of at least {least} inverse temperatures, got shape {tuple(betas.shape)}"
        )
    if is_concrete(betas):
        b = np.asarray(betas, np.float64)
        finite(name, b)
        if np.any(np.diff(b) < 0):
            i = int(np.argmax(np.diff(b) < 0))
            raise ValueError(f"{name}: expected a non-decreasing (ascending) schedule, got {b[i]} then {b[i + 1]} at index {i}")
        if np.any((b < 0) | (b > 1)):
            raise ValueError(f"{name}: expected values in [0, 1], got min {b.min()}, max {b.max()}")
        if from_zero and b[0] != 0:
            raise ValueError(f"{name}: expected to start at 0 (the base model), got {b[0]}")
        if b[-1] != 1:
            raise ValueError(f"{name}: expected to end at 1 (exactly 1: the model itself), got {b[-1]}")
    return jnp.asarray(betas, dtype)
