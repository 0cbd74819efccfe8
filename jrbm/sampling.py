"""Block Gibbs sampling: ``v -> h ~ p(h | v) -> v' ~ p(v | h)``, under ``lax.scan``.

Because ``p(h | v)`` and ``p(v | h)`` factorise over units (Cheng eqs.
2.10/2.19, 3.10/3.19, and the same for every layer of :mod:`jrbm.layers`), one
sweep updates each layer at once. A batch of ``v0`` is a batch of independent
chains; a stack of models is a ``jax.vmap`` away.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, parallel, rng
from jrbm.layers import base as layer_base
from jrbm.model import check, hidden_input, visible_data, visible_input
from jrbm.params import Model

UNROLL = 8
"""Sweeps per iteration of the compiled Gibbs loops (``lax.scan(..., unroll=UNROLL)``): a single
chain of a 784 x 500 model runs about twice as fast as with one sweep per iteration."""

PREDRAW_LIMIT = 1 << 18
"""Most unit states whose noise the compiled chains draw in one call (:func:`negative_phase` before its scan,
:func:`gibbs_chain` and AIS per block): 1 MB of float32 uniforms for layers that draw one number per state; a
dReLU unit draws two, so twice that for dReLU layers."""


def _sweep(key: Array, params: Model, v: Array) -> Array:
    key_h, key_v = jax.random.split(key)
    h = layer_base.sample(key_h, params.hidden, hidden_input(params, v))
    return layer_base.sample(key_v, params.visible, visible_input(params, h))


@rng.own_on_mesh(set_mesh=False)
def gibbs_step(key: Array, params: Model, v: ArrayLike) -> Array:
    """One block-Gibbs sweep ``v -> h -> v'``; returns ``v'`` (same shape as ``v``).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3)
      >>> jrbm.gibbs_step(jax.random.key(1), params, jnp.zeros((10, 4))).shape
      (10, 4)
    """
    _checks.key("key", key)
    check(params)
    return _sweep(key, params, visible_data(params, v))


def gibbs_chain(key: Array, params: Model, v0: ArrayLike, n_steps: int, *, trajectory: bool = False, mesh=None) -> Array:
    """Runs ``n_steps`` Gibbs sweeps from ``v0`` under ``lax.scan``.

    Args:
      key: a ``jax.random`` key; the sweeps run in blocks of up to 64 whose
        randomness is drawn at once (the noise of at most :data:`PREDRAW_LIMIT` states), block
        ``j`` (from 0) from ``jax.random.fold_in(key, j)``, derived inside the
        loop so that memory does not grow with ``n_steps``.
      params: a model.
      v0: ``(..., *visible.shape)`` start states; each leading index is one chain.
      n_steps: number of sweeps (static).
      trajectory: if true, return every state, shape ``(n_steps, *v0.shape)``,
        of the same chain (its last state is what ``trajectory=False`` returns
        for the same key); otherwise only the final state, so memory does not
        grow with ``n_steps``.
      mesh: optional :class:`jax.sharding.Mesh` with a ``"data"`` axis: the
        chains (the first axis of ``v0``, a multiple of the axis size) are split
        across its devices and the model replicated; the states equal the
        single-device ones inside :func:`jrbm.rng.own_generator` (:mod:`jrbm.parallel`).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3)
      >>> jrbm.gibbs_chain(jax.random.key(1), params, jnp.zeros((10, 4)), 100).shape
      (10, 4)
    """
    _checks.key("key", key)
    n_steps = _checks.static_positive_int("n_steps", n_steps)
    trajectory = _checks.flag("trajectory", trajectory)
    check(params)
    v0 = visible_data(params, v0, "v0")
    if mesh is not None:
        mesh = parallel.check_mesh(mesh, need=parallel.DATA_AXIS)
        if v0.ndim < 1 + len(params.visible.shape):
            raise ValueError(f"v0: expected a batch of chains (n_chains, ..., *visible.shape) to split over the mesh, got shape {tuple(v0.shape)}")
        parallel.check_divisible("v0", v0.shape[0], mesh, "chains (rows of v0)")
        key, params = parallel.place((key, params), mesh)
        v0 = parallel.place_rows(v0, mesh)

    return _chain(key, params, v0, n_steps, trajectory, mesh)


def compile_gibbs_chain(key: Array, params: Model, v0: ArrayLike, n_steps: int, *, trajectory: bool = False) -> None:
    """Compiles the program of :func:`gibbs_chain` (without a mesh) for these shapes and dtypes, without running it.

    A later :func:`gibbs_chain` call with arguments of the same shapes and
    dtypes finds it compiled; a thread can compile while the caller works.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.sampling
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3)
      >>> jrbm.sampling.compile_gibbs_chain(jax.random.key(1), params, jnp.zeros((10, 4)), 100)
    """
    _checks.key("key", key)
    n_steps = _checks.static_positive_int("n_steps", n_steps)
    trajectory = _checks.flag("trajectory", trajectory)
    check(params)
    _chain.lower(key, params, visible_data(params, v0, "v0"), n_steps, trajectory, None).compile()


@rng.jit(static_argnames=("n_steps", "trajectory", "mesh"))
def _chain(key, params, v0, n_steps, trajectory, mesh):
    """The scan of :func:`gibbs_chain`, compiled once per shape, so eager calls do not re-trace it.

    The sweeps run in blocks of ``B`` (:func:`block_size`), each drawing the
    randomness of its ``B`` sweeps in one call per layer: block ``j`` splits
    ``jax.random.fold_in(key, j)`` into the keys of the hidden and the visible
    noise, of shape ``(B, *batch, ...)``. ``n_steps`` is padded to whole blocks
    with sweeps whose result is dropped (a trajectory, written in place block by
    block, drops their states).
    """
    vis, hid = params.visible, params.hidden
    dtype = v0.dtype
    batch = v0.shape[: v0.ndim - len(vis.shape)]
    # The same blocks with and without a trajectory, so that its last state is the chain's final state.
    block = block_size(math.prod(batch) * (math.prod(vis.shape) + math.prod(hid.shape)), n_steps)
    n_blocks = -(-n_steps // block)

    def sweep(v, inp):
        is_real, noise_h, noise_v = inp
        h = hid.sample_given_noise(hidden_input(params, v), noise_h)
        v_new = parallel.constrain_rows(vis.sample_given_noise(visible_input(params, h), noise_v), mesh)
        v = jnp.where(is_real, v_new, v)
        return v, (v if trajectory else None)

    def keep(out, j, states):
        """Writes block ``j``'s states into the trajectory ``out`` in place; the last block, whose sweeps past
        ``n_steps`` are padding, writes the window that ends at ``n_steps``, its real states rolled to its end."""
        start = jnp.minimum(j.astype(jnp.int32) * block, n_steps - block)
        shift = j.astype(jnp.int32) * block - start  # 0 but in a last block of padding
        window = lax.dynamic_slice_in_dim(out, start, block, axis=0)
        real = (jnp.arange(block, dtype=jnp.int32) >= shift).reshape((block,) + (1,) * v0.ndim)
        return lax.dynamic_update_slice_in_dim(out, jnp.where(real, jnp.roll(states, shift, axis=0), window), start, axis=0)

    def run_block(carry, _):
        v, j, out = carry  # a counter, not a scanned array, so memory does not grow with n_steps
        key_h, key_v = jax.random.split(jax.random.fold_in(key, j))
        noise = (layer_base.noise(key_h, hid, (block,) + batch, dtype), layer_base.noise(key_v, vis, (block,) + batch, dtype))
        is_real = j * block + jnp.arange(block, dtype=jnp.uint32) < n_steps
        v, states = lax.scan(sweep, v, (is_real,) + noise, unroll=min(block, UNROLL))
        return (v, j + 1, None if out is None else keep(out, j, states)), None

    out = jnp.zeros((n_steps,) + v0.shape, dtype) if trajectory else None
    (v, _, out), _ = lax.scan(run_block, (v0, jnp.zeros((), jnp.uint32), out), None, length=n_blocks)
    return out if trajectory else v


def draw_rows(key: Array, data: Array, shape) -> Array:
    """Rows of ``data`` drawn uniformly with replacement, in an array of ``shape + data.shape[1:]``: the
    persistent chains' starting states: ``data[jax.random.randint(key, shape, 0, len(data))]``, as one
    compiled program (run eagerly, the draw and the gather would compile half a dozen small ones, a few
    tenths of a second on a CPU core).

    Example:
      >>> import jax, jax.numpy as jnp, jrbm.sampling
      >>> jrbm.sampling.draw_rows(jax.random.key(0), jnp.eye(3), (4, 2)).shape
      (4, 2, 3)
    """
    _checks.key("key", key)
    data = jnp.asarray(data) if isinstance(data, (list, tuple)) else data
    if getattr(data, "ndim", 0) < 1 or data.shape[0] == 0:
        raise ValueError(f"data: expected an array with at least one row, got shape {getattr(data, 'shape', None)}")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        shape = tuple(_checks.positive_int("shape", n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape: expected a tuple of positive ints, got {shape!r}") from None
    return _draw_rows(key, data, shape)


@functools.partial(jax.jit, static_argnums=2)
def _draw_rows(key: Array, data: Array, shape: tuple[int, ...]) -> Array:
    return data[jax.random.randint(key, shape, 0, data.shape[0])]


def block_size(numbers_per_sweep: int, n_steps: int) -> int:
    """Sweeps whose randomness a compiled chain draws in one call: as many as :data:`PREDRAW_LIMIT` states allow, 1 to 64."""
    return max(1, min(64, PREDRAW_LIMIT // max(numbers_per_sweep, 1), n_steps))


def negative_phase(key: Array, params: Model, inputs0: Array, k: int) -> tuple[Array, Array]:
    """``k`` sweeps started from ``h ~ p(h | inputs0)``; returns ``(v_k, I_hid(v_k))``.

    The negative phase of CD and PCD: the hidden inputs of the last state are
    what the gradient needs (the hidden layer is Rao-Blackwellised: its
    conditional mean, not a draw, enters the statistics), and the first
    half-sweep reuses ``inputs0`` so no product is computed twice.

    Keys: small chains (``k > 1``, the noise of at most :data:`PREDRAW_LIMIT`
    states for all ``k`` sweeps) draw the randomness of every sweep before the
    scan, one call per layer, since a tiny sweep otherwise spends most of its
    time in the generator's per-call cost: with
    ``key_h, key_v = jax.random.split(key)``, sweep ``t`` uses
    ``hidden.noise(jrbm.rng.noise_key(key_h), (k, ...))[t]`` and
    ``visible.noise(jrbm.rng.noise_key(key_v), (k, ...))[t]``. Other chains draw as they go, so
    memory does not grow with ``k``: sweep ``t`` splits
    ``jax.random.split(key, k)[t]`` into the keys of ``h`` and of ``v``.
    """
    _checks.key("key", key)
    k = _checks.static_positive_int("k", k)
    vis, hid = params.visible, params.hidden
    dtype = inputs0.dtype
    batch = inputs0.shape[: inputs0.ndim - len(hid.shape)]
    v_shape = batch + vis.shape
    predraw = k > 1 and k * (math.prod(inputs0.shape) + math.prod(v_shape)) <= PREDRAW_LIMIT
    if predraw:
        key_h, key_v = jax.random.split(key)
        xs = (layer_base.noise(key_h, hid, (k,) + batch, dtype), layer_base.noise(key_v, vis, (k,) + batch, dtype))
    else:
        xs = jax.random.split(key, k)

    def body(carry, x):
        _, inputs = carry
        if predraw:
            noise_h, noise_v = x
        else:
            key_h, key_v = jax.random.split(x)
            noise_h, noise_v = layer_base.noise(key_h, hid, batch, dtype), layer_base.noise(key_v, vis, batch, dtype)
        h = hid.sample_given_noise(inputs, noise_h)
        v = vis.sample_given_noise(visible_input(params, h), noise_v)
        return (v, hidden_input(params, v)), None

    unroll = min(k, UNROLL) if predraw else 1
    (v_k, inputs_k), _ = lax.scan(body, (jnp.zeros(v_shape, dtype), inputs0), xs, unroll=unroll)
    return v_k, inputs_k
