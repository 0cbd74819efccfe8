"""Block Gibbs sampling: ``v -> h ~ p(h | v) -> v' ~ p(v | h)``, under ``lax.scan``.

Because ``p(h | v)`` and ``p(v | h)`` factorise (eqs. 2.10/2.19, 3.10/3.19),
one sweep updates each layer at once. A batch of ``v0`` is a batch of
independent chains; a stack of models is a ``jax.vmap`` away.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, parallel
from jrbm.model import family, sample_h_given_v, sample_v_given_h, _visible
from jrbm.params import RBM

UNROLL = 8
"""Sweeps per iteration of the compiled Gibbs loops (``lax.scan(..., unroll=UNROLL)``): a single
chain of a 784 x 500 model runs about twice as fast as with one sweep per iteration."""

PREDRAW_LIMIT = 1 << 18
"""Most random numbers :func:`negative_phase` draws before its scan (1 MB of float32)."""


def gibbs_step(key: Array, params: RBM, v: ArrayLike) -> Array:
    """One block-Gibbs sweep ``v -> h -> v'``; returns ``v'`` (same shape as ``v``).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3)
      >>> jrbm.gibbs_step(jax.random.key(1), params, jnp.zeros((10, 4))).shape
      (10, 4)
    """
    key_h, key_v = jax.random.split(key)
    return sample_v_given_h(key_v, params, sample_h_given_v(key_h, params, v))


def gibbs_chain(key: Array, params: RBM, v0: ArrayLike, n_steps: int, *, trajectory: bool = False, mesh=None) -> Array:
    """Runs ``n_steps`` Gibbs sweeps from ``v0`` under ``lax.scan``.

    Args:
      key: a ``jax.random`` key; sweep ``t`` (from 0) uses ``jax.random.fold_in(key, t)``,
        derived inside the loop so that memory does not grow with ``n_steps``.
      params: a model.
      v0: ``(..., n_visible)`` start states; each leading index is one chain.
      n_steps: number of sweeps (static).
      trajectory: if true, return every state, shape ``(n_steps, *v0.shape)``;
        otherwise only the final state, so memory does not grow with ``n_steps``.
      mesh: optional :class:`jax.sharding.Mesh` with a ``"data"`` axis: the
        chains (the first axis of ``v0``, a multiple of the axis size) are split
        across its devices and the model replicated; the states equal the
        single-device ones (:mod:`jrbm.parallel`).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3)
      >>> jrbm.gibbs_chain(jax.random.key(1), params, jnp.zeros((10, 4)), 100).shape
      (10, 4)
    """
    _checks.key("key", key)
    n_steps = _checks.positive_int("n_steps", n_steps)
    family(params)
    v0 = _visible(params, v0, "v0")
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, need=parallel.DATA_AXIS)
        if v0.ndim < 2:
            raise ValueError(f"v0: expected a batch of chains (n_chains, ..., n_visible) to split over the mesh, got shape {tuple(v0.shape)}")
        parallel.check_divisible("v0", v0.shape[0], mesh, "chains (rows of v0)")
        key, params = parallel.place((key, params), mesh)
        v0 = parallel.place_rows(v0, mesh)

    return _chain(key, params, v0, n_steps, trajectory, mesh)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _chain(key, params, v0, n_steps, trajectory, mesh):
    """The scan of :func:`gibbs_chain`, compiled once per shape, so eager calls do not re-trace it."""

    def body(carry, _):
        v, t = carry
        v = parallel.constrain_rows(gibbs_step(jax.random.fold_in(key, t), params, v), mesh)
        return (v, t + 1), (v if trajectory else None)

    (v, _), traj = lax.scan(body, (v0, jnp.zeros((), jnp.uint32)), None, length=n_steps, unroll=min(n_steps, UNROLL))
    return traj if trajectory else v


def negative_phase(key: Array, params: RBM, p_h0: Array, k: int) -> tuple[Array, Array]:
    """``k`` sweeps started from ``h ~ Bernoulli(p_h0)``; returns ``(v_k, P(h = 1 | v_k))``.

    The negative phase of CD and PCD: the hidden probabilities of the last
    state are what the gradient needs (hidden units Rao-Blackwellised), and the
    first half-sweep reuses ``p_h0`` so no product is computed twice.

    Keys: small chains (``k > 1``, at most :data:`PREDRAW_LIMIT` random numbers
    for all ``k`` sweeps) draw the
    randomness of every sweep before the scan, one call per layer, since a tiny
    sweep otherwise spends most of its time in the generator's per-call cost:
    with ``key_h, key_v = jax.random.split(key)``, sweep ``t`` compares
    ``jax.random.uniform(key_h, (k, *p_h0.shape))[t]`` with the hidden
    probabilities and uses ``visible_noise(key_v, (k, ..., n_visible))[t]``.
    Other chains draw as they go, so memory does not grow with ``k``: sweep
    ``t`` splits ``jax.random.split(key, k)[t]`` into the keys of ``h`` and of
    ``v`` (:func:`jrbm.model.sample_v_given_h`).
    """
    fam = family(params)
    dtype = p_h0.dtype
    v_shape = p_h0.shape[:-1] + params.W.shape[:1]
    predraw = k > 1 and k * (p_h0.size + math.prod(v_shape)) <= PREDRAW_LIMIT
    if predraw:
        key_h, key_v = jax.random.split(key)
        xs = (jax.random.uniform(key_h, (k,) + p_h0.shape, dtype), fam.visible_noise(key_v, (k,) + v_shape, dtype))
    else:
        xs = jax.random.split(key, k)

    def body(carry, x):
        _, p_h = carry
        if predraw:
            u, noise = x
            h = (u < p_h).astype(dtype)
            v = fam.visible_given_noise(params, h, noise)
        else:
            key_h, key_v = jax.random.split(x)
            h = (jax.random.uniform(key_h, p_h.shape, dtype) < p_h).astype(dtype)
            v = sample_v_given_h(key_v, params, h)
        return (v, jax.nn.sigmoid(fam.hidden_input(params, v))), None

    unroll = min(k, UNROLL) if predraw else 1
    (v_k, p_hk), _ = lax.scan(body, (jnp.zeros(v_shape, dtype), p_h0), xs, unroll=unroll)
    return v_k, p_hk
