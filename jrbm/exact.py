"""Exact log-partition, log-likelihood and gradient by enumeration (small models).

``log Z`` sums over the states of one binary layer with the other layer
summed or integrated out analytically:

* BB-RBM, enumerating ``v``: ``log Z = logsumexp_v -free_energy(v)`` (eqs. 2.4, 2.9);
  enumerating ``h``: ``log Z = logsumexp_h -hidden_free_energy(h)`` (eq. 2.18).
  The smaller layer is enumerated.
* GB-RBM: the hidden layer, with the Gaussian integral over ``v`` of eq. 3.18.

The ``2^n`` states are generated block by block from their indices inside a
``lax.map``, so memory is bounded by one block (``chunk_size`` states) and
``2^20`` states take a few MB. Layers wider than ``max_bits`` units raise an
error: use :mod:`jrbm.ais` for those.

:func:`grad` is the loss gradient with the model expectation of eqs.
2.14-2.16 / 3.14-3.16 computed exactly from the hand-derived derivatives of the
family (not by autodiff); :func:`log_likelihood` is differentiable, so
``jax.grad`` of it is an independent reference for :func:`grad`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks
from jrbm.model import _visible, family, free_energy
from jrbm.params import RBM

MAX_BITS = 24
"""Default widest layer :mod:`jrbm.exact` enumerates (``2^24`` states)."""

CHUNK_SIZE = 4096
"""Default number of states per block."""


def enumerated_layer(params: RBM) -> str:
    """``"visible"`` or ``"hidden"``: the layer :mod:`jrbm.exact` sums over for ``params``."""
    fam = family(params)
    n_visible, n_hidden = params.W.shape
    if fam.binary_visible and n_visible < n_hidden:
        return "visible"
    return "hidden"


def _plan(params, max_bits, chunk_size):
    layer = enumerated_layer(params)
    n = params.W.shape[0] if layer == "visible" else params.W.shape[1]
    if n > max_bits:
        raise ValueError(
            f"params: exact enumeration of the {layer} layer needs 2^{n} states, over the limit of "
            f"max_bits={max_bits} units (2^{max_bits} states); use jrbm.ais for a model of this size "
            "or raise max_bits"
        )
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    chunk = min(1 << n, 1 << (chunk_size.bit_length() - 1))  # a power of two dividing 2^n
    return layer, n, chunk, (1 << n) // chunk


def states(n: int, start, count: int, dtype) -> Array:
    """Binary states with indices ``start .. start + count - 1``, bit ``i`` of the index as unit ``i``."""
    idx = start + jnp.arange(count, dtype=jnp.uint32)
    return ((idx[:, None] >> jnp.arange(n, dtype=jnp.uint32)) & 1).astype(dtype)


def _log_weights(params, layer, s):
    fam = family(params)
    if layer == "visible":
        return -free_energy(params, s)
    return -fam.hidden_free_energy(params, s)


def log_partition(params: RBM, *, max_bits: int = MAX_BITS, chunk_size: int = CHUNK_SIZE) -> Array:
    """Exact ``log Z`` (eqs. 2.2, 3.2), summing the smaller binary layer in blocks.

    Example:
      >>> import jax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> float(jrbm.exact.log_partition(params)) > 0
      True
    """
    return _log_partition(params, *_plan(params, max_bits, chunk_size))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _log_partition(params, layer, n, chunk, n_chunks):
    """Compiled once per model shape and plan, so eager calls do not re-trace the ``lax.map``."""

    def block(i):
        s = states(n, i.astype(jnp.uint32) * chunk, chunk, params.W.dtype)
        return jax.nn.logsumexp(_log_weights(params, layer, s))

    return jax.nn.logsumexp(lax.map(block, jnp.arange(n_chunks)))


def _check_data(params, v, check):
    v = _visible(params, v)
    if check and family(params).binary_visible:
        _checks.binary("v", v)
    return v


def log_likelihood(params: RBM, v: ArrayLike, *, check: bool = True, **kwargs) -> Array:
    """Exact ``log p(v) = -free_energy(v) - log Z`` per example (eqs. 2.6, 3.6).

    Differentiable in ``params``. For a BB-RBM, ``v`` must be binary (checked
    when ``check`` and ``v`` is concrete); ``kwargs`` go to :func:`log_partition`.
    """
    v = _check_data(params, v, check)
    return -free_energy(params, v) - log_partition(params, **kwargs)


def grad(params: RBM, v: ArrayLike, *, check: bool = True, max_bits: int = MAX_BITS, chunk_size: int = CHUNK_SIZE) -> RBM:
    """Exact gradient of ``-mean(log p(v))`` from the seed's formulas, not by autodiff.

    Data term: the conditional expectations of eqs. 2.11-2.13 / 3.11-3.13.
    Model term: their expectation under ``p(u)`` (eqs. 2.14-2.16, 3.14-3.16),
    summed exactly over the enumerated layer with weights
    ``exp(log_weight - log Z)``.
    """
    v = _check_data(params, v, check).reshape(-1, params.W.shape[0])
    return _grad(params, v, *_plan(params, max_bits, chunk_size))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _grad(params, v, layer, n, chunk, n_chunks):
    fam = family(params)
    dtype = params.W.dtype
    log_z = _log_partition(params, layer, n, chunk, n_chunks)

    def block(acc, i):
        s = states(n, i.astype(jnp.uint32) * chunk, chunk, dtype)
        w = jnp.exp(_log_weights(params, layer, s) - log_z)
        if layer == "visible":
            g = fam.free_energy_grad(params, s, jax.nn.sigmoid(fam.hidden_input(params, s)), w)
        else:
            g = fam.hidden_free_energy_grad(params, s, w)
        return jax.tree.map(jnp.add, acc, g), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    model, _ = lax.scan(block, zeros, jnp.arange(n_chunks))
    w_data = jnp.full(v.shape[:1], 1.0 / v.shape[0], dtype)
    data = fam.free_energy_grad(params, v, jax.nn.sigmoid(fam.hidden_input(params, v)), w_data)
    # d loss = mean dF(v) + d log Z, and d log Z = -E_model[dF(u)] (or -E_p(h)[dF_h(h)]).
    return jax.tree.map(jnp.subtract, data, model)


def marginal_visible(params: RBM, **kwargs) -> Array:
    """``p(v)`` of every visible state of a BB-RBM, index ``s`` holding bit ``i`` as ``v_i``."""
    fam = family(params)
    if not fam.binary_visible:
        raise TypeError(f"params: marginal_visible needs binary visible units, got {type(params).__name__}")
    n = params.W.shape[0]
    max_bits = kwargs.get("max_bits", MAX_BITS)
    if n > max_bits:
        raise ValueError(f"params: {n} visible units exceed max_bits={max_bits} for marginal_visible")
    s = states(n, 0, 1 << n, params.W.dtype)
    return jnp.exp(-free_energy(params, s) - log_partition(params, **kwargs))
