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

When the log-weight of a state is ``s^T d + sum_k softplus(e_k + (s^T M)_k)``
(a family with ``softplus_form``: the BB-RBM, either layer), a state's index
is split into a high and a low half (meet in the middle): the affine terms of
the ``2^low`` low halves are computed once, and a block adds those of its high
halves by broadcasting, so no matrix product is done per state; the softplus
sum is :func:`softplus_sum`, one ``exp`` per term.

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

SOFTPLUS_GROUP = 32
"""Most factors ``1 + exp(-|x|)`` (each in ``(1, 2]``) multiplied before one ``log`` in :func:`softplus_sum`."""


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


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def softplus_sum(x: ArrayLike, axis: int = -1) -> Array:
    """``sum softplus(x)`` along ``axis``, exactly, with one ``exp`` per term and one ``log`` per group.

    ``softplus(x) = max(x, 0) + log(1 + exp(-|x|))``; the logs of up to
    :data:`SOFTPLUS_GROUP` consecutive factors ``1 + exp(-|x|)``, each in
    ``(1, 2]``, are taken as the log of their product, which stays below
    ``2^32`` (no overflow or underflow in float32 or float64) and is within a
    few dozen roundings of the sum of the logs. Its derivative is
    ``sigmoid(x)`` (defined so, also at the kink ``x = 0`` of the pieces).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> x = jnp.array([[-30.0, 0.0, 2.0]])
      >>> bool(jnp.allclose(jrbm.exact.softplus_sum(x), jax.nn.softplus(x).sum(-1)))
      True
    """
    x = jnp.moveaxis(jnp.asarray(x), axis, 0)
    n = x.shape[0]
    group = max(1, min(n, SOFTPLUS_GROUP))
    n_groups = -(-n // group)
    factors = 1 + jnp.exp(-jnp.abs(x))
    factors = jnp.pad(factors, [(0, n_groups * group - n)] + [(0, 0)] * (x.ndim - 1), constant_values=1)
    logs = jnp.log(jnp.prod(factors.reshape((n_groups, group) + x.shape[1:]), axis=1))
    return jnp.sum(jnp.maximum(x, 0), axis=0) + jnp.sum(logs, axis=0)


@softplus_sum.defjvp
def _softplus_sum_jvp(axis, primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return softplus_sum(x, axis), jnp.sum(jax.nn.sigmoid(x) * x_dot, axis=axis)


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
    form = getattr(family(params), "softplus_form", None)
    if form is not None:
        return _log_partition_split(*form(params, layer), n, chunk, n_chunks)

    def block(i):
        s = states(n, i.astype(jnp.uint32) * chunk, chunk, params.W.dtype)
        return jax.nn.logsumexp(_log_weights(params, layer, s))

    return jax.nn.logsumexp(lax.map(block, jnp.arange(n_chunks)))


def _log_partition_split(d, e, M, n, chunk, n_chunks):
    """``logsumexp_s [s^T d + softplus_sum(e + s^T M)]`` over the ``2^n`` binary ``s``, meeting in the middle.

    State ``hi * 2^low + lo`` has ``s^T [M | d] = s_hi^T [M | d]_hi + s_lo^T [M | d]_lo``:
    the ``2^low`` low terms are computed once, and each block of ``chunk``
    states adds the terms of its ``chunk / 2^low`` high halves by broadcasting.
    The unit axis ``k`` leads, so the sums over it are elementwise.
    """
    bits = chunk.bit_length() - 1
    low = min(bits, (n + 1) // 2)
    per_block = 1 << (bits - low)
    dM = jnp.concatenate([M, d[:, None]], axis=1)  # the linear term as one more column
    offset = jnp.concatenate([e, jnp.zeros((1,), e.dtype)])[:, None]
    lo = (states(low, 0, 1 << low, M.dtype) @ dM[:low]).T  # (K + 1, 2^low)

    def block(i):
        s_hi = states(n - low, i.astype(jnp.uint32) * per_block, per_block, M.dtype)
        hi = (s_hi @ dM[low:]).T + offset  # (K + 1, per_block)
        x = hi[:, :, None] + lo[:, None, :]  # (K + 1, per_block, 2^low)
        return jax.nn.logsumexp(x[-1] + softplus_sum(x[:-1], axis=0))

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
