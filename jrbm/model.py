"""The model functions, written once against the layer interface (:mod:`jrbm.layers`).

For ``params`` with layers ``vis``, ``hid`` and weights ``W`` the physical
energy is (``E_tutorial = -energy``, Cheng eqs. 2.3 and 3.3)

    energy(v, h) = U_vis(v) + U_hid(h) - <s_vis(v), W, s_hid(h)>.

Summing a layer out gives a free energy through the other layer's cumulant
generating function (Cheng eqs. 2.4/2.9, 3.4/3.9, 2.18, 3.18):

    free_energy(v)        = U_vis(v) - cgf_hid(I_hid(v)),   I_hid(v) = <s_vis(v), W>,
    hidden_free_energy(h) = U_hid(h) - cgf_vis(I_vis(h)),   I_vis(h) = <W, s_hid(h)>,

and the conditionals are the layers' own given those inputs (eqs. 2.10/2.19,
3.10/3.19). Every function below, and everything built on it (chains,
estimators, exact likelihoods, AIS, training), works for any pairing of
layers; none tests a layer's type.

Public functions validate their arguments once (:func:`check`, data shapes
and finiteness) and cast inputs to the parameters' dtype; the functions they
call (``hidden_input``, ``free_energy_grad``, ...) take checked arrays. All
accept one example (``v.shape == visible.shape``) or any leading batch shape
and work under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, rng
from jrbm.layers import base as layer_base
from jrbm.params import Model, check_type

# --- validation at the public boundary ------------------------------------------------------------


def check(params, name: str = "params"):
    """Validates a model (its type, the layers' leaves, ``W``'s shape and dtype, and, when concrete, that every
    parameter is finite: a NaN or an infinity would otherwise come out as NaN, or as plausible states); returns it."""
    check_type(params, name)
    params.check(name)
    _checks.finite_leaves(name, params)
    return params


def dtype_of(params):
    return params.W.dtype


def visible_data(params: Model, v, name: str = "v") -> Array:
    """``v`` checked as states of the visible layer (shape ``(..., *visible.shape)``, finite) and cast."""
    return _checks.layer_data(name, v, params.visible, params.W.dtype, what="visible")


def hidden_data(params: Model, h, name: str = "h") -> Array:
    """``h`` checked as states of the hidden layer and cast."""
    return _checks.layer_data(name, h, params.hidden, params.W.dtype, what="hidden")


def flat_batch(params: Model, v, name: str) -> Array:
    """``v`` as a non-empty ``(n, *visible.shape)`` batch (a mean over no examples is undefined)."""
    v = visible_data(params, v, name)
    flat = v.reshape((-1,) + params.visible.shape)
    if flat.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got shape {tuple(v.shape)}")
    return flat


# --- the couplings (no checks) --------------------------------------------------------------------


def _sizes(params: Model) -> tuple[int, int]:
    return math.prod(params.visible.shape), math.prod(params.hidden.shape)


def _matrix(params: Model) -> Array:
    return params.W.reshape(_sizes(params))


def couple_to_hidden(params: Model, s: Array) -> Array:
    """``<s, W>``: a visible statistic ``(..., *visible.shape)`` to a hidden input ``(..., *hidden.shape)``."""
    nv, _ = _sizes(params)
    vs = params.visible.shape
    batch = s.shape[: s.ndim - len(vs)]
    return (s.reshape(batch + (nv,)) @ _matrix(params)).reshape(batch + params.hidden.shape)


def couple_to_visible(params: Model, s: Array) -> Array:
    """``<W, s>``: a hidden statistic ``(..., *hidden.shape)`` to a visible input ``(..., *visible.shape)``."""
    _, nh = _sizes(params)
    hs = params.hidden.shape
    batch = s.shape[: s.ndim - len(hs)]
    return (s.reshape(batch + (nh,)) @ _matrix(params).T).reshape(batch + params.visible.shape)


def hidden_input(params: Model, v: Array) -> Array:
    """``I_hid(v) = <s_vis(v), W>``, the input field of the hidden layer (its own fields not included)."""
    return couple_to_hidden(params, params.visible.statistic(v))


def visible_input(params: Model, h: Array) -> Array:
    """``I_vis(h) = <W, s_hid(h)>``."""
    return couple_to_visible(params, params.hidden.statistic(h))


def coupling(layer, x: Array, inputs: Array) -> Array:
    """``<s(x), inputs>`` summed over ``layer``'s unit axes: the couplings' term of the energy, from one side.

    ``x``: states of ``layer``; ``inputs``: that layer's input from the other
    (``I_hid(v)`` for the hidden layer, ``I_vis(h)`` for the visible one);
    both sides give ``<s_vis(v), W s_hid(h)>``.
    """
    s, inputs = jnp.broadcast_arrays(layer.statistic(x), inputs)
    lead = s.shape[: s.ndim - len(layer.shape)]
    # A contraction, not a product then a sum: XLA on a CPU hands row sums of 4,096 or more elements to a
    # separate kernel whose call costs more than the sum at these sizes (a Jarzynski update of 256 chains of
    # 16 units took twice as long).
    return jnp.einsum("...i,...i->...", s.reshape(lead + (-1,)), inputs.reshape(lead + (-1,)), precision=lax.Precision.HIGHEST)


def free_energy_unchecked(params: Model, v: Array, inputs: Array | None = None) -> Array:
    """:func:`free_energy` of checked states, for use inside compiled code (``inputs``: ``I_hid(v)`` if known)."""
    inputs = hidden_input(params, v) if inputs is None else inputs
    return params.visible.energy(v) - params.hidden.cgf(inputs)


def hidden_free_energy_unchecked(params: Model, h: Array) -> Array:
    """:func:`hidden_free_energy` of checked states, for use inside compiled code."""
    return params.hidden.energy(h) - params.visible.cgf(visible_input(params, h))


# --- public model functions -----------------------------------------------------------------------


def energy(params: Model, v: ArrayLike, h: ArrayLike) -> Array:
    """Physical energy ``-E_tutorial(v, h)`` (Cheng eqs. 2.3, 3.3): ``p(v, h) = exp(-energy) / Z``.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 3, 2)
      >>> jrbm.energy(params, jnp.ones(3), jnp.zeros(2)).shape
      ()
    """
    check(params)
    v, h = visible_data(params, v), hidden_data(params, h)
    vb = v.shape[: v.ndim - len(params.visible.shape)]
    hb = h.shape[: h.ndim - len(params.hidden.shape)]
    _checks.broadcastable(("v", vb), ("h", hb))
    return params.visible.energy(v) + params.hidden.energy(h) - coupling(params.hidden, h, hidden_input(params, v))


def free_energy(params: Model, v: ArrayLike) -> Array:
    """``-log sum_h exp(-energy(v, h)) = U_vis(v) - cgf_hid(I_hid(v))`` (Cheng eqs. 2.4/2.9, 3.4/3.9).

    So ``p(v) = exp(-free_energy(v)) / Z``; for continuous hidden units the sum is an integral.
    """
    check(params)
    return free_energy_unchecked(params, visible_data(params, v))


def hidden_free_energy(params: Model, h: ArrayLike) -> Array:
    """``-log sum_v exp(-energy(v, h))`` (Cheng eq. 2.18), or the integral over ``v`` (eq. 3.18)."""
    check(params)
    return hidden_free_energy_unchecked(params, hidden_data(params, h))


def p_h_given_v(params: Model, v: ArrayLike) -> Array:
    """``E[h | v]``: for Bernoulli hidden units ``P(h_j = 1 | v)`` (Cheng eqs. 2.10, 3.10); ``p(h | v)`` factorises."""
    check(params)
    return params.hidden.mean(hidden_input(params, visible_data(params, v)))


def p_v_given_h(params: Model, h: ArrayLike) -> Array:
    """``E[v | h]``: BB ``P(v_i = 1 | h)`` (Cheng eq. 2.19); GB the mean ``b_i + (W h)_i / a_i`` (eq. 3.19)."""
    check(params)
    return params.visible.mean(visible_input(params, hidden_data(params, h)))


@rng.own_on_mesh(set_mesh=False)
def sample_h_given_v(key: Array, params: Model, v: ArrayLike) -> Array:
    """Draws ``h ~ p(h | v)`` (Cheng eqs. 2.10, 3.10), in the parameters' dtype."""
    _checks.key("key", key)
    check(params)
    return layer_base.sample(key, params.hidden, hidden_input(params, visible_data(params, v)))


@rng.own_on_mesh(set_mesh=False)
def sample_v_given_h(key: Array, params: Model, h: ArrayLike) -> Array:
    """Draws ``v ~ p(v | h)`` (Cheng eqs. 2.19, 3.19), in the parameters' dtype."""
    _checks.key("key", key)
    check(params)
    return layer_base.sample(key, params.visible, visible_input(params, hidden_data(params, h)))


# --- the annealing path of AIS and parallel tempering ----------------------------------------------


def base_rate(params: Model, data: ArrayLike | None = None) -> Model:
    """The base model of AIS: ``W = 0``, the visible layer ``visible.from_data(data)``, the hidden layer
    ``hidden.from_data(None)``.

    With ``W = 0`` the layers are independent, so its ``log Z`` is
    ``cgf_vis_base(0) + cgf_hid_base(0)`` and its visible states are exact
    draws of ``visible.from_data(data)``. Without data the visible layer is the
    layer's neutral choice (uniform for Bernoulli, Spin and Potts units; the
    model's own Gaussian); the hidden layer's neutral choice has no fields
    (``theta = 0``) and keeps its curvatures (ReLU, dReLU) or is the layer
    itself (Gaussian), so that every intermediate model is proper.
    """
    if data is not None:
        data = jnp.asarray(data, params.W.dtype)
    return params.assemble(params.visible.from_data(data), params.hidden.from_data(None), jnp.zeros_like(params.W))


def _broadcast_scale(shape: tuple, scale, dtype) -> Array:
    return jnp.broadcast_to(jnp.asarray(scale, dtype), shape)


def interpolated_layers(base: Model, params: Model, beta):
    """``(visible_beta, scale_vis, hidden_beta, scale_hid)`` of :func:`interpolate`, without forming ``W'``."""
    visible, scale_v = params.visible.interpolate(base.visible, beta)
    hidden, scale_h = params.hidden.interpolate(base.hidden, beta)
    return visible, scale_v, hidden, scale_h


def interpolate(base: Model, params: Model, beta) -> Model:
    """The model whose energy is ``(1 - beta) (U_vis_base(v) + U_hid_base(h)) + beta energy(v, h)``, up to a constant.

    Each layer is ``layer.interpolate(base_layer, beta)`` and
    ``W' = beta scale_vis scale_hid W``. Its free energy differs from
    :func:`annealed_free_energy` by one constant over all ``v``; AIS and
    parallel tempering rely on that (tested). With Bernoulli hidden units and
    a uniform visible base this is plain tempering, ``beta * energy``.
    """
    visible, scale_v, hidden, scale_h = interpolated_layers(base, params, beta)
    vs, hs = params.visible.shape, params.hidden.shape
    dtype = params.W.dtype
    sv = _broadcast_scale(vs, scale_v, dtype).reshape(vs + (1,) * len(hs))
    sh = _broadcast_scale(hs, scale_h, dtype)
    return params.assemble(visible, hidden, beta * sv * sh * params.W)


def annealed_hidden_cgf(base: Model, params: Model, beta, inputs: Array) -> Array:
    """``cgf`` of the intermediate hidden layer at its input ``beta scale_hid I_hid(v)``, from ``inputs = I_hid(v)``."""
    hidden, scale = params.hidden.interpolate(base.hidden, beta)
    return hidden.cgf(beta * scale * inputs)


def annealed_free_energy(base: Model, params: Model, beta, v: ArrayLike) -> Array:
    """``(1 - beta) U_vis_base(v) + beta U_vis(v) - cgf_hid_beta(beta scale I_hid(v))``.

    The unnormalised negative log-density of the intermediate models of
    annealed importance sampling (Salakhutdinov & Murray 2008, eq. 14) and of
    the replicas of parallel tempering, from ``beta = 0`` (``base``: the layers
    independent) to ``beta = 1`` (the model), with the hidden layer summed out.
    """
    v = visible_data(params, v)
    beta = jnp.asarray(beta, params.W.dtype)
    return (1 - beta) * base.visible.energy(v) + beta * params.visible.energy(v) - annealed_hidden_cgf(base, params, beta, hidden_input(params, v))


def annealed_log_ratio(
    base: Model, params: Model, v: Array | None, inputs: Array, beta0, beta1, *, accurate: bool = True, energy_gap: Array | None = None
) -> Array:
    """``log f_beta1(v) - log f_beta0(v)`` with ``log f_beta = -annealed_free_energy(base, params, beta, .)``.

    The step of an AIS weight and the log swap ratio of parallel tempering,
    from ``inputs = I_hid(v)`` (passed in, computed once):
    ``(beta1 - beta0) (U_base(v) - U(v)) + cgf_hid_beta1(.) - cgf_hid_beta0(.)``;
    the last difference by the hidden layer's ``annealed_cgf_difference``
    where it has one (accurate for small steps: Bernoulli units), otherwise
    as a plain difference. ``beta0`` and ``beta1`` broadcast against the
    leading dimensions of ``v``. With ``accurate=False``, always the plain
    difference: cheaper where the steps are not small (the swaps of parallel
    tempering), about ``eps * cgf`` from the exact value. ``energy_gap``:
    ``U_base(v) - U(v)`` where the caller has it (``v`` is then not read and
    may be ``None``; the betas then broadcast against the batch dimensions of
    ``inputs``).
    """
    if v is None and energy_gap is None:
        raise ValueError("annealed_log_ratio: expected the states v or their energy_gap, got neither")
    dtype = inputs.dtype
    beta0, beta1 = jnp.asarray(beta0, dtype), jnp.asarray(beta1, dtype)
    du = base.visible.energy(v) - params.visible.energy(v) if energy_gap is None else energy_gap
    extra = (1,) * len(params.hidden.shape)
    b0, b1 = beta0.reshape(beta0.shape + extra), beta1.reshape(beta1.shape + extra)
    own = getattr(params.hidden, "annealed_cgf_difference", None) if accurate else None
    if own is not None:
        step = own(base.hidden, inputs, b0, b1)
    else:
        step = annealed_hidden_cgf(base, params, b1, inputs) - annealed_hidden_cgf(base, params, b0, inputs)
    return (beta1 - beta0) * du + step


# --- gradients of the free energies (no checks) ------------------------------------------------------


def _side_grad(params: Model, x: Array, weights: Array, own: str, inputs: Array | None) -> Model:
    """``sum_n weights_n d F(x_n) / d params`` for the free energy of layer ``own``'s states ``x`` (a flat batch).

    ``F(x) = U_own(x) - cgf_other(I(x))`` with ``I(x) = <s_own(x), W>``; with
    ``mu = E[s_other | I]``:

        dF/dW = -s_own(x) (x) mu,   dF/d other = -d cgf_other / d fields,
        dF/d own = dU_own/d fields - d<s_own(x), W mu>/d fields,

    the last term zero unless the statistic depends on the fields (the
    tutorial's Gaussian). Each is an explicit product or a ``jax.vjp`` of a
    layer's elementwise functions, so no matrix product is repeated.
    """
    visible_side = own == "visible"
    own_layer = params.visible if visible_side else params.hidden
    other = params.hidden if visible_side else params.visible
    s = own_layer.statistic(x)
    if inputs is None:
        inputs = couple_to_hidden(params, s) if visible_side else couple_to_visible(params, s)
    # Per-example derivatives, then one weighted sum over the batch as a product with ``weights``
    # (a dot, which XLA runs faster on a CPU than the column reductions autodiff would emit).
    d_other, mean = jax.vmap(jax.grad(lambda layer, i: layer.cgf(i), argnums=(0, 1)), in_axes=(None, 0))(other, inputs)
    mu = weights.reshape((-1,) + (1,) * (mean.ndim - 1)) * mean  # weights_n E[s_other | I_n]
    n = x.shape[0]
    s_flat, mu_flat = s.reshape(n, -1), mu.reshape(n, -1)
    if visible_side:
        dW = -(s_flat.T @ mu_flat)
        field = couple_to_visible(params, mean)
    else:
        dW = -(mu_flat.T @ s_flat)
        field = couple_to_hidden(params, mean)

    def own_free_energy(layer, xi, fi):
        return layer.energy(xi) - jnp.sum(layer.statistic(xi) * fi)

    _, pullback = jax.vjp(lambda layer: jax.vmap(own_free_energy, in_axes=(None, 0, 0))(layer, x, field), own_layer)
    (d_own,) = pullback(weights)
    d_other = jax.tree.map(lambda g: jnp.tensordot(weights, g, axes=1), d_other)
    d_other = jax.tree.map(jnp.negative, d_other)
    dW = dW.reshape(params.W.shape)
    return params.assemble(d_own, d_other, dW) if visible_side else params.assemble(d_other, d_own, dW)


def free_energy_grad(params: Model, v: ArrayLike, weights: ArrayLike | None = None, inputs: Array | None = None) -> Model:
    """``sum_n weights_n d free_energy(v_n) / d params`` (default weights: the mean), a pytree like ``params``.

    ``-d free_energy / d theta`` is the tutorial's conditional expectation
    ``sum_h p(h | v) dE_tutorial / d theta`` (Cheng eqs. 2.11-2.13, 3.12-3.13 and section 3.4's unnumbered result for ``W``).
    ``inputs``, the hidden inputs ``I_hid(v)``, may be passed when already computed.
    """
    v = jnp.asarray(v, params.W.dtype).reshape((-1,) + params.visible.shape)
    n = v.shape[0]
    w = jnp.full((n,), 1.0 / n, v.dtype) if weights is None else jnp.asarray(weights, v.dtype).reshape(-1)
    if inputs is not None:
        inputs = inputs.reshape((n,) + params.hidden.shape)
    return _side_grad(params, v, w, "visible", inputs)


def hidden_free_energy_grad(params: Model, h: ArrayLike, weights: ArrayLike | None = None) -> Model:
    """``sum_n weights_n d hidden_free_energy(h_n) / d params`` (the model expectations of Cheng eqs.
    2.14-2.16 / 3.14-3.16 with the visible layer summed or integrated out analytically)."""
    h = jnp.asarray(h, params.W.dtype).reshape((-1,) + params.hidden.shape)
    n = h.shape[0]
    w = jnp.full((n,), 1.0 / n, h.dtype) if weights is None else jnp.asarray(weights, h.dtype).reshape(-1)
    return _side_grad(params, h, w, "hidden", None)
