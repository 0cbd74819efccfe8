"""Exact log-partition, log-likelihood and gradient by enumeration (small models).

``log Z`` sums over the states of one discrete layer with the other layer
summed or integrated out analytically through its cumulant generating
function (:mod:`jrbm.model`):

* enumerating ``v``: ``log Z = logsumexp_v -free_energy(v)`` (Cheng eqs. 2.4, 2.9);
* enumerating ``h``: ``log Z = logsumexp_h -hidden_free_energy(h)`` (eq. 2.18;
  eq. 3.18 for the tutorial's Gaussian visible layer).

The discrete layer with fewer states is enumerated (``k^n`` states for ``n``
units of ``k`` states: ``2^n`` Bernoulli or Spin, ``q^n`` Potts). The states
are generated block by block from their indices inside a ``lax.map``, so
memory is bounded by one block (``chunk_size`` states). A layer with more
than ``2^max_bits`` states raises an error: use :mod:`jrbm.ais` for those.

When the enumerated layer's states are ``offset + scale * bits`` with an
energy affine in the state (a layer with ``affine_bits``: Bernoulli, Spin), a
state's index is split into a high and a low half (meet in the middle): the
other layer's inputs of the ``2^low`` low halves are computed once, and a
block adds those of its high halves by broadcasting, so no matrix product is
done per state.

:func:`grad` is the loss gradient with the model expectation of Cheng eqs.
2.14-2.16 / 3.14-3.16 computed exactly from the free energies' derivatives
(:func:`jrbm.model.free_energy_grad`, not by autodiff of ``log Z``);
:func:`log_likelihood` is differentiable, so ``jax.grad`` of it is an
independent reference for :func:`grad`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, model
from jrbm.layers import base as layer_base
from jrbm.layers.bernoulli import softplus_sum  # noqa: F401  (public here since the first release)
from jrbm.model import (
    couple_to_hidden,
    couple_to_visible,
    flat_batch,
    free_energy_grad,
    free_energy_unchecked,
    hidden_free_energy_grad,
    hidden_free_energy_unchecked,
    visible_data,
)
from jrbm.params import Model

MAX_BITS = 24
"""Default largest enumeration: ``2^24`` states of one layer."""

CHUNK_SIZE = 4096
"""Default number of states per block."""


class Plan(NamedTuple):
    """How :mod:`jrbm.exact` enumerates a model: which layer, how many states, in which blocks."""

    layer: str
    n_states: int
    chunk: int
    n_chunks: int


def enumerated_layer(params: Model) -> str:
    """``"visible"`` or ``"hidden"``: the discrete layer with fewer states (the hidden one on a tie).

    Raises ``TypeError`` when neither layer is discrete.
    """
    options = [(layer_base.log2_states(getattr(params, side)), i, side)
               for i, side in enumerate(("hidden", "visible")) if layer_base.is_discrete(getattr(params, side))]
    if not options:
        raise TypeError(
            f"params: exact enumeration needs a discrete layer, got {type(params.visible).__name__} visible and "
            f"{type(params.hidden).__name__} hidden units; use jrbm.ais"
        )
    return min(options)[2]


def plan(params: Model, max_bits: int = MAX_BITS, chunk_size: int = CHUNK_SIZE, layer: str | None = None) -> Plan:
    """The enumeration :func:`log_partition` would do, checked against ``max_bits`` (fails fast, no compute).

    ``layer`` (``"visible"`` or ``"hidden"``) forces which layer is enumerated; by default the
    discrete one with fewer states (:func:`enumerated_layer`).
    """
    max_bits = _checks.positive_int("max_bits", max_bits)
    if max_bits > 32:
        raise ValueError(f"max_bits: expected at most 32 (states are indexed by 32-bit integers), got {max_bits}")
    if layer is None:
        side = enumerated_layer(params)
    elif layer in ("visible", "hidden") and layer_base.is_discrete(getattr(params, layer)):
        side = layer
    else:
        raise ValueError(f"layer: expected None or the name of a discrete layer ('visible' or 'hidden'), got {layer!r}")
    enumerated = getattr(params, side)
    bits = layer_base.log2_states(enumerated)
    if bits > max_bits + 1e-9:
        q, n = enumerated.unit_states().shape[0], enumerated.shape[0]
        count = f"2^{n}" if q == 2 else f"{q}^{n} = 2^{bits:.4g}"
        raise ValueError(
            f"params: exact enumeration of the {side} layer needs {count} states, over the limit of "
            f"max_bits={max_bits} (2^{max_bits} states); use jrbm.ais for a model of this size or raise max_bits"
        )
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    n_states = enumerated.unit_states().shape[0] ** enumerated.shape[0]
    chunk = min(n_states, 1 << (chunk_size.bit_length() - 1))
    return Plan(side, n_states, chunk, -(-n_states // chunk))


def states(n: int, start, count: int, dtype) -> Array:
    """Binary states with indices ``start .. start + count - 1``, bit ``i`` of the index as unit ``i``."""
    idx = start + jnp.arange(count, dtype=jnp.uint32)
    return ((idx[:, None] >> jnp.arange(n, dtype=jnp.uint32)) & 1).astype(dtype)


def _log_weights(params, side, s):
    return -free_energy_unchecked(params, s) if side == "visible" else -hidden_free_energy_unchecked(params, s)


def _block(params, p: Plan, i):
    """The states of block ``i`` and a mask of those that exist (the last block of ``k^n`` may overrun)."""
    layer = getattr(params, p.layer)
    start = i.astype(jnp.uint32) * p.chunk
    s = layer_base.enumerate_states(layer, start, p.chunk, params.W.dtype)
    if p.n_states % p.chunk == 0:  # no overrun (2^32 states, the most max_bits allows, included)
        return s, jnp.ones((p.chunk,), bool)
    # uint32 on both sides: a Python int of 2^31 or more overflows JAX's default int32 without x64
    valid = (start + jnp.arange(p.chunk, dtype=jnp.uint32)) < jnp.uint32(p.n_states)
    return s, valid


def log_partition(params: Model, *, max_bits: int = MAX_BITS, chunk_size: int = CHUNK_SIZE, layer: str | None = None) -> Array:
    """Exact ``log Z`` (Cheng eqs. 2.2, 3.2), summing the smaller discrete layer (or ``layer``) in blocks.

    Example:
      >>> import jax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> float(jrbm.exact.log_partition(params)) > 0
      True
    """
    model.check(params)
    return _log_partition(params, plan(params, max_bits, chunk_size, layer))


@functools.partial(jax.jit, static_argnums=1)
def _log_partition(params, p: Plan):
    """Compiled once per model shape and plan, so eager calls do not re-trace the ``lax.map``."""
    layer = getattr(params, p.layer)
    if hasattr(layer, "affine_bits") and layer.unit_states().shape[0] == 2:
        return _log_partition_split(params, p)

    def block(i):
        s, valid = _block(params, p, i)
        return jax.nn.logsumexp(jnp.where(valid, _log_weights(params, p.layer, s), -jnp.inf))

    return jax.nn.logsumexp(lax.map(block, jnp.arange(p.n_chunks)))


def _log_partition_split(params, p: Plan):
    """``logsumexp_b [-U(o + g b) + cgf_other(e + b M)]`` over the ``2^n`` bit vectors ``b``, meeting in the middle.

    The enumerated layer's energy and statistic are affine in the bits:
    ``-U(o + g b) = -U(o) + b . d`` and its contribution to the other layer's
    input is ``e + b M``, with ``d`` and the rows of ``M`` read off the states
    with one bit set. State ``hi * 2^low + lo`` then has
    ``b . [M | d] = b_hi . [M | d]_hi + b_lo . [M | d]_lo``: the ``2^low`` low
    terms are computed once, and each block of ``chunk`` states adds the terms
    of its high halves by broadcasting.
    """
    side = p.layer
    layer = getattr(params, side)
    other = params.hidden if side == "visible" else params.visible
    couple = couple_to_hidden if side == "visible" else couple_to_visible
    dtype = params.W.dtype
    n = layer.shape[0]
    offset, scale = (jnp.asarray(x, dtype) for x in layer.affine_bits())
    ones = jnp.broadcast_to(offset, layer.shape)
    single = ones + jnp.eye(n, dtype=dtype) * scale  # (n, n): state with only bit i set
    u0 = layer.energy(ones)
    d = u0 - layer.energy(single)  # -U(o + g e_i) + U(o)
    s0 = layer.statistic(ones)
    e = couple(params, s0).reshape(-1)
    M = (couple(params, layer.statistic(single)) - couple(params, s0)).reshape(n, -1)
    dM = jnp.concatenate([M, d[:, None]], axis=1)  # the linear term as one more column
    bits = p.chunk.bit_length() - 1
    low = min(bits, (n + 1) // 2)
    per_block = 1 << (bits - low)
    lo = states(low, 0, 1 << low, dtype) @ dM[:low]  # (2^low, K + 1)
    other_shape = other.shape

    def block(i):
        b_hi = states(n - low, i.astype(jnp.uint32) * per_block, per_block, dtype)
        hi = b_hi @ dM[low:]  # (per_block, K + 1)
        x = hi[:, None, :] + lo[None, :, :]  # (per_block, 2^low, K + 1)
        inputs = (x[..., :-1] + e).reshape(x.shape[:2] + other_shape)
        return jax.nn.logsumexp(x[..., -1] + other.cgf(inputs))

    return jax.nn.logsumexp(lax.map(block, jnp.arange(p.n_chunks))) - u0


def _check_data(params, v, check_values):
    v = visible_data(params, v)
    if _checks.flag("check", check_values):
        layer_base.check_data(params.visible, "v", v)
    return v


def log_likelihood(params: Model, v: ArrayLike, *, check: bool = True, **kwargs) -> Array:
    """Exact ``log p(v) = -free_energy(v) - log Z`` per example (Cheng eqs. 2.6, 3.6).

    Differentiable in ``params``. ``v`` must lie in the visible layer's state
    space (binary for Bernoulli units; checked when ``check`` and ``v`` is
    concrete); ``kwargs`` go to :func:`log_partition`.
    """
    model.check(params)
    v = _check_data(params, v, check)
    log_z = log_partition(params, **kwargs)  # first: a model too wide to enumerate is refused before any work
    return -free_energy_unchecked(params, v) - log_z


def grad(
    params: Model, v: ArrayLike, *, check: bool = True, max_bits: int = MAX_BITS, chunk_size: int = CHUNK_SIZE, layer: str | None = None
) -> Model:
    """Exact gradient of ``-mean(log p(v))`` from the free energies' derivatives, not by autodiff of ``log Z``.

    Data term: the conditional expectations of Cheng eqs. 2.11-2.13 / 3.12-3.13 and the
    unnumbered result of section 3.4 (``a_i v_i sigmoid(x_j)`` for ``W``, 3.11 by sequence).
    Model term: their expectation under the model (eqs. 2.14-2.16,
    3.14-3.16), summed exactly over the enumerated layer with the weights
    ``exp(log_weight)`` normalised by their own sum, accumulated in one pass
    over the chunks against a running maximum (as a streaming softmax). So
    the weights sum to 1 to rounding however large the free energies are
    (normalising by :func:`log_partition`, which sums the same terms in
    another order, left them off by about ``eps * |F|``). ``layer`` forces
    the enumerated layer, as in :func:`log_partition`.
    """
    model.check(params)
    p = plan(params, max_bits, chunk_size, layer)
    v = _check_data(params, flat_batch(params, v, "v"), check)
    return _grad(params, v, p)


@functools.partial(jax.jit, static_argnums=2)
def _grad(params, v, p: Plan):
    def block(carry, i):
        acc, total, top = carry  # sums of the weights exp(log_weight - top) and of the gradients they weigh
        s, valid = _block(params, p, i)
        log_w = jnp.where(valid, _log_weights(params, p.layer, s), -jnp.inf)
        new_top = jnp.maximum(top, jnp.max(log_w))
        rescale = jnp.where(jnp.isneginf(top), 0.0, jnp.exp(top - new_top))
        w = jnp.exp(log_w - new_top)
        if p.layer == "visible":
            g = free_energy_grad(params, s, w)
        else:
            g = hidden_free_energy_grad(params, s, w)
        acc = jax.tree.map(lambda a, b: a * rescale + b, acc, g)
        return (acc, total * rescale + jnp.sum(w), new_top), None

    dtype = params.W.dtype
    start = (jax.tree.map(jnp.zeros_like, params), jnp.zeros((), dtype), jnp.full((), -jnp.inf, dtype))
    (acc, total, _), _ = lax.scan(block, start, jnp.arange(p.n_chunks))
    model = jax.tree.map(lambda a: a / total, acc)
    data = free_energy_grad(params, v)
    # d loss = mean dF(v) + d log Z, and d log Z = -E_model[dF(u)] (or -E_p(h)[dF_h(h)]).
    return jax.tree.map(jnp.subtract, data, model)


def _visible_plan(params: Model, what: str, max_bits: int, chunk_size: int) -> Plan:
    """The blocks of every state of the visible layer, refused by name when it is continuous or too wide."""
    model.check(params)
    if not layer_base.is_discrete(params.visible):
        raise TypeError(f"params: {what} needs a discrete visible layer, got {type(params.visible).__name__}")
    return plan(params, max_bits, chunk_size, layer="visible")


def marginal_visible(
    params: Model, *, max_bits: int = MAX_BITS, chunk_size: int = CHUNK_SIZE, layer: str | None = None
) -> Array:
    """``p(v)`` of every state of a discrete visible layer, in the order of :func:`jrbm.layers.enumerate_states`
    (for binary units: index ``s`` holds bit ``i`` as ``v_i``).

    Computed block by block (``chunk_size`` states at a time), so memory
    beyond the result stays bounded; ``layer`` goes to :func:`log_partition`.
    """
    p = _visible_plan(params, "marginal_visible", max_bits, chunk_size)
    return _marginal_visible(params, p, log_partition(params, max_bits=max_bits, chunk_size=chunk_size, layer=layer))


@functools.partial(jax.jit, static_argnums=1)
def _marginal_visible(params, p: Plan, log_z):
    def block(i):
        s, _ = _block(params, p, i)
        return jnp.exp(-free_energy_unchecked(params, s) - log_z)

    return lax.map(block, jnp.arange(p.n_chunks)).reshape(-1)[: p.n_states]


def visible_states(params: Model, *, max_bits: int = MAX_BITS) -> Array:
    """Every state of a discrete visible layer, in the order of :func:`marginal_visible` (refused when continuous or
    wider than ``max_bits``)."""
    p = _visible_plan(params, "visible_states", max_bits, CHUNK_SIZE)
    return layer_base.enumerate_states(params.visible, 0, p.n_states, params.W.dtype)


__all__ = ["MAX_BITS", "CHUNK_SIZE", "Plan", "enumerated_layer", "grad", "log_likelihood", "log_partition",
           "marginal_visible", "plan", "softplus_sum", "states", "visible_states"]
