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


def positive_int(name: str, value) -> int:
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected a positive integer, got {value!r}") from None
    if out < 1:
        raise ValueError(f"{name}: expected a positive integer, got {out}")
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


def finite(name: str, x) -> None:
    """Raises if a concrete array holds NaN or infinity."""
    if is_concrete(x) and jnp.issubdtype(x.dtype, jnp.floating):
        bad = ~np.isfinite(np.asarray(x))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}: expected finite values, got {np.asarray(x)[idx]} at index {idx} "
                f"({int(bad.sum())} non-finite entries)"
            )


def binary(name: str, x) -> None:
    """Raises if a concrete array holds values other than 0 and 1."""
    if is_concrete(x):
        a = np.asarray(x)
        bad = (a != 0) & (a != 1)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}: expected binary values (0 or 1) for a Bernoulli layer, got {a[idx]} "
                f"at index {idx}; pass check=False to evaluate the formula on real values anyway"
            )


def layer(name: str, x, size: int, dtype, *, what: str):
    """Validates one example or a batch for a layer of ``size`` units and casts it to ``dtype``."""
    x = _as_array(name, x)
    _numeric_dtype(name, x)
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(
            f"{name}: expected shape (..., {size}) for {size} {what} units, got shape {tuple(x.shape)}"
        )
    finite(name, x)
    return jnp.asarray(x, dtype)


def data_matrix(name: str, data, n_visible: int | None = None):
    """Validates a data set: a non-empty 2-D array of finite numbers."""
    data = _as_array(name, data)
    _numeric_dtype(name, data)
    if data.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_examples, n_visible), got shape {tuple(data.shape)}")
    if data.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got shape {tuple(data.shape)}")
    if n_visible is not None and data.shape[1] != n_visible:
        raise ValueError(f"{name}: expected {n_visible} columns (n_visible), got shape {tuple(data.shape)}")
    finite(name, data)
    return data


def key(name: str, k) -> None:
    """Raises unless ``k`` is a JAX PRNG key (new-style or raw uint32[2])."""
    dt = getattr(k, "dtype", None)
    if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        return
    if dt is not None and dt == jnp.uint32 and getattr(k, "shape", None) == (2,):
        return
    raise TypeError(
        f"{name}: expected a jax.random key (jax.random.key(seed)) as the first argument, "
        f"got {type(k).__name__} with dtype {dt}"
    )
