"""The model-family protocol and the model functions written once against it.

Both families split the physical energy (``energy = -E_seed``, seed eqs. 2.3
and 3.3) the same way:

    energy(v, h) = U(v) - h^T x(v),

with ``x(v)`` affine in ``v`` (the hidden logits). Summing the binary hidden
layer out gives the free energy (eqs. 2.9, 3.9)

    free_energy(v) = -log sum_h exp(-energy(v, h)) = U(v) - sum_j softplus(x_j(v)),

and ``P(h_j = 1 | v) = sigmoid(x_j(v))`` (eqs. 2.10, 3.10) for both. A family
module (:mod:`jrbm.bernoulli`, :mod:`jrbm.gaussian`) supplies ``U``, ``x``, the
visible conditional, the marginal over ``v`` for fixed ``h``, their
hand-derived parameter derivatives and the annealing path; every function
here, and everything built on it (chains, estimators, exact likelihoods, AIS,
training), works for any family registered in :data:`FAMILIES`.

A family draws ``v ~ p(v | h)`` in two parts, ``visible_noise`` (uniforms or
standard normals) and ``visible_given_noise``, so that
:func:`jrbm.sampling.negative_phase` can draw the noise of all its sweeps in
one call. One part of the protocol is optional and only makes a hot loop
faster: ``softplus_form`` (a log-weight ``s^T d + sum_k softplus(e_k + (s^T
M)_k)`` of a layer's states, which lets :mod:`jrbm.exact` enumerate by meeting
in the middle); the BB-RBM has it.

All functions accept one example (``v.shape == (n_visible,)``) or any leading
batch shape, cast inputs to the parameters' dtype, and work under ``jit``,
``vmap`` and ``grad``.
"""

from __future__ import annotations

from types import ModuleType

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks, bernoulli, gaussian
from jrbm.params import RBM, BernoulliRBM, GaussianRBM

FAMILIES: dict[type, ModuleType] = {BernoulliRBM: bernoulli, GaussianRBM: gaussian}


def family(params) -> ModuleType:
    """The family module of a parameter pytree; checks the leaves' shapes and dtypes."""
    fam = FAMILIES.get(type(params))
    if fam is None:
        raise TypeError(
            f"params: expected one of {', '.join(t.__name__ for t in FAMILIES)}, got {type(params).__name__}"
        )
    W = params.W
    if getattr(W, "ndim", None) != 2:
        raise ValueError(
            f"params.W: expected shape (n_visible, n_hidden), got shape {getattr(W, 'shape', None)}; "
            "use jax.vmap for a stack of models"
        )
    n_visible, n_hidden = W.shape
    expected = {"b": (n_visible,), "c": (n_hidden,), "log_sigma": (n_visible,)}
    if not jnp.issubdtype(W.dtype, jnp.floating):
        raise TypeError(f"params.W: expected a floating dtype, got {W.dtype}")
    for name, leaf in zip(params._fields, params):
        if name == "W":
            continue
        if getattr(leaf, "shape", None) != expected[name]:
            raise ValueError(
                f"params.{name}: expected shape {expected[name]} to match W of shape {tuple(W.shape)}, "
                f"got {getattr(leaf, 'shape', None)}"
            )
        if leaf.dtype != W.dtype:
            raise TypeError(f"params.{name}: expected dtype {W.dtype} like params.W, got {leaf.dtype}")
    fam.check_params(params)
    return fam


def _visible(params, v, name="v"):
    return _checks.layer(name, v, params.W.shape[0], params.W.dtype, what="visible")


def _hidden(params, h, name="h"):
    return _checks.layer(name, h, params.W.shape[1], params.W.dtype, what="hidden")


def energy(params: RBM, v: ArrayLike, h: ArrayLike) -> Array:
    """Physical energy ``-E_seed(v, h)`` (eqs. 2.3, 3.3): ``p(v, h) = exp(-energy) / Z``.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 3, 2)
      >>> jrbm.energy(params, jnp.ones(3), jnp.zeros(2)).shape
      ()
    """
    fam = family(params)
    v, h = _visible(params, v), _hidden(params, h)
    _checks.broadcastable(("v", v.shape[:-1]), ("h", h.shape[:-1]))
    return fam.visible_energy(params, v) - jnp.sum(h * fam.hidden_input(params, v), axis=-1)


def free_energy(params: RBM, v: ArrayLike) -> Array:
    """``-log sum_h exp(-energy(v, h)) = U(v) - sum_j softplus(x_j(v))`` (eqs. 2.4/2.9, 3.4/3.9).

    So ``p(v) = exp(-free_energy(v)) / Z``.
    """
    fam = family(params)
    v = _visible(params, v)
    return fam.visible_energy(params, v) - jnp.sum(jax.nn.softplus(fam.hidden_input(params, v)), axis=-1)


def hidden_logits(params: RBM, v: ArrayLike) -> Array:
    """``x(v)``, the logits of ``P(h = 1 | v)``."""
    fam = family(params)
    return fam.hidden_input(params, _visible(params, v))


def p_h_given_v(params: RBM, v: ArrayLike) -> Array:
    """``P(h_j = 1 | v) = sigmoid(x_j(v))`` (eqs. 2.10, 3.10); ``p(h | v)`` factorises over ``j``."""
    return jax.nn.sigmoid(hidden_logits(params, v))


def p_v_given_h(params: RBM, h: ArrayLike) -> Array:
    """BB: ``P(v_i = 1 | h)`` (eq. 2.19). GB: the mean ``b_i + (W h)_i / a_i`` of ``v | h`` (eq. 3.19)."""
    fam = family(params)
    return fam.visible_mean(params, _hidden(params, h))


def sample_h_given_v(key: Array, params: RBM, v: ArrayLike) -> Array:
    """Draws binary ``h ~ p(h | v)`` (eqs. 2.10, 3.10), in the parameters' dtype."""
    _checks.key("key", key)
    p = p_h_given_v(params, v)
    return (jax.random.uniform(key, p.shape, p.dtype) < p).astype(p.dtype)


def sample_v_given_h(key: Array, params: RBM, h: ArrayLike) -> Array:
    """Draws ``v ~ p(v | h)`` (eqs. 2.19, 3.19), in the parameters' dtype."""
    _checks.key("key", key)
    fam = family(params)
    h = _hidden(params, h)
    noise = fam.visible_noise(key, h.shape[:-1] + params.W.shape[:1], params.W.dtype)
    return fam.visible_given_noise(params, h, noise)


def hidden_free_energy(params: RBM, h: ArrayLike) -> Array:
    """``-log sum_v exp(-energy(v, h))`` (eq. 2.18), or the integral over ``v`` (eq. 3.18)."""
    fam = family(params)
    return fam.hidden_free_energy(params, _hidden(params, h))


def annealed_free_energy(base: RBM, params: RBM, beta, v: ArrayLike) -> Array:
    """Free energy of the intermediate model ``(1 - beta) U_base(v) + beta energy(v, h)``.

    ``-log sum_h exp(-(1 - beta) U_base(v) - beta energy(v, h))
    = (1 - beta) U_base(v) + beta U(v) - sum_j softplus(beta x_j(v))``: the
    unnormalised log-density of annealed importance sampling (Salakhutdinov &
    Murray 2008, eq. 14) and of the replicas of parallel tempering. ``base`` is a
    visible-only model of the same family (``W = 0``, ``c = 0``).
    """
    fam = family(params)
    v = _visible(params, v)
    return (
        (1 - beta) * fam.visible_energy(base, v)
        + beta * fam.visible_energy(params, v)
        - jnp.sum(jax.nn.softplus(beta * fam.hidden_input(params, v)), axis=-1)
    )


def annealed_log_ratio(base: RBM, params: RBM, v: Array, x: Array, beta0, beta1) -> Array:
    """``log f_beta1(v) - log f_beta0(v)`` with ``log f_beta = -annealed_free_energy(base, params, beta, .)``.

    The step of an AIS weight and the log swap ratio of parallel tempering,
    from the hidden logits ``x = x(v)`` of ``params`` (passed in, computed once):

        (beta1 - beta0) (U_base(v) - U(v)) + sum_j [softplus(beta1 x_j) - softplus(beta0 x_j)],

    no difference of two large free energies. For small steps the softplus
    difference is taken as ``log1p(sigmoid(beta0 x) expm1((beta1 - beta0) x))``,
    accurate to rounding of the step itself, so that 14,500 float32 AIS steps
    add up to about 1e-4 nats of rounding. ``beta0`` and ``beta1`` broadcast
    against the leading (batch) dimensions of ``v``; validated by the callers.
    """
    fam = family(params)
    beta0, beta1 = jnp.asarray(beta0, x.dtype), jnp.asarray(beta1, x.dtype)
    du = fam.visible_energy(base, v) - fam.visible_energy(params, v)
    b0, b1 = beta0[..., None], beta1[..., None]
    d = (b1 - b0) * x
    small = jnp.abs(d) < 1
    accurate = jnp.log1p(jax.nn.sigmoid(b0 * x) * jnp.expm1(jnp.where(small, d, 0)))
    plain = jax.nn.softplus(b1 * x) - jax.nn.softplus(b0 * x)
    return (beta1 - beta0) * du + jnp.sum(jnp.where(small, accurate, plain), axis=-1)


def interpolate(base: RBM, params: RBM, beta) -> RBM:
    """Parameters of the intermediate model of :func:`annealed_free_energy`, for sampling it.

    Its joint energy equals ``(1 - beta) U_base(v) + beta energy(v, h)`` up to a
    constant, so its hidden logits are ``beta x(v)``; AIS and parallel tempering
    rely on both facts (tested for every family).
    """
    return family(params).interpolate(base, params, beta)


def base_rate(params: RBM, data: ArrayLike | None = None) -> RBM:
    """A visible-only model (``W = 0``, ``c = 0``) matching the data's marginals (AIS's base model)."""
    return family(params).base_rate(params, data)


def free_energy_grad(params: RBM, v: ArrayLike, weights: ArrayLike | None = None) -> RBM:
    """``sum_n weights_n d free_energy(v_n) / d params`` by the seed's formulas (default: the mean).

    ``-d free_energy / d theta`` is the seed's conditional expectation
    ``sum_h p(h | v) dE_seed / d theta`` (eqs. 2.11-2.13, 3.11-3.13).
    """
    fam = family(params)
    v = _visible(params, v).reshape(-1, params.W.shape[0])
    w = jnp.full(v.shape[:1], 1.0 / v.shape[0], v.dtype) if weights is None else jnp.asarray(weights, v.dtype).reshape(-1)
    return fam.free_energy_grad(params, v, jax.nn.sigmoid(fam.hidden_input(params, v)), w)
