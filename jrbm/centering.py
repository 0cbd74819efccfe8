"""Centred RBMs (Melchior, Fischer & Wiskott, JMLR 17, 2016) as a wrapper around any estimator.

A centred RBM subtracts *offsets* ``mu`` (visible) and ``lam`` (hidden) from
the states in its energy (the paper's centred binary RBM, section 3, written
here with the statistic ``s(x) = x`` of Bernoulli, Spin and Potts layers):

    E_c(v, h) = -(v - mu)^T W (h - lam) - b_c^T (v - mu) - c_c^T (h - lam).

Multiplied out, ``E_c`` is the ordinary energy
``U_vis(v) + U_hid(h) - s(v)^T W s(h)`` with ``U(x) = -theta . x`` and

    W = W_c,    b = b_c - W lam,    c = c_c - W^T mu            (reparametrisation)

up to the constant ``-mu^T W lam + b_c^T mu + c_c^T lam``, so the two are the
same distribution (``b`` and ``c`` are the fields ``theta`` of the visible and
hidden layer; for Potts layers ``v``, ``mu``, ``b`` have shape ``(n, q)``, ``W``
has shape ``visible.shape + hidden.shape`` and the products contract the layer
axes). jrbm keeps the ordinary parameters as the model; centring changes only
the *gradient step*.

**The step.** Let ``g_W, g_b, g_c`` be the gradient of the loss with respect
to the ordinary parameters, from any estimator. Seen as a function of the
centred parameters (with ``b = b_c - W_c lam``, ``c = c_c - W_c^T mu``) the
loss has the gradient (chain rule)

    gW_c = g_W - g_b lam^T - mu g_c^T,    gb_c = g_b,    gc_c = g_c,

which, with ``g_W = -(<v h^T>_d - <v h^T>_m)`` and so on, is the paper's
centred gradient ``-(<(v - mu)(h - lam)^T>_d - <(v - mu)(h - lam)^T>_m)``
(the ``mu lam^T`` terms cancel between the two phases). This is the paper's
result (iii), centring as a different update rule for the ordinary RBM, and
the transformation PyDeep applies for its ``use_centered_gradient``. A gradient
step of size ``eta`` on the centred parameters moves the ordinary ones by
``-eta`` times

    dW = gW_c,    db = g_b - gW_c lam,    dc = g_c - gW_c^T mu,

and :class:`Centered` returns ``(dW, db, dc)`` in place of ``(g_W, g_b, g_c)``:
a fixed linear transformation of the gradient, so plain SGD on the returned
"gradient" is exactly SGD on the centred parameters (momentum too, while the
offsets stay put; adaptive optimisers such as Adam rescale the transformed
gradient and are then no longer the same as Adam on the centred parameters).
Because the ordinary parameters are the state, moving the offsets changes
nothing in the model, only the preconditioning of later steps: the paper's
re-parametrisation of the centred biases when the offsets move (its
Algorithm 1) is implicit. That is why this works around any estimator.

**The offsets** follow the paper's Algorithm 1: at every step, before the
gradient is transformed, they move towards the current means,

    mu  <- (1 - rate) mu  + rate (mix <v>_data + (1 - mix) <v>_model),
    lam <- (1 - rate) lam + rate (mix <h>_data + (1 - mix) <h>_model),

``mix = 0.5`` being the average of the data and model means (the paper's
result (iv): with these offsets centring is the enhanced gradient; the
moving average keeps it from diverging), ``mix = 1`` the data means only
(PyDeep's default, ``offset_typ='DD'``). ``<v>_data`` is the minibatch mean and ``<h>_data`` the mean
of ``E[h | v]`` over it under the current parameters. The model means are
recovered from the estimator's own field gradients: for these three layer
types the free energy's derivative with respect to a field is minus the
statistic (``dF/db = -v``, ``dF/dc = -E[h | v]``), so

    g_b = <v>_model - <v>_data,    g_c = <h>_model - <h>_data,

whatever the estimator uses for the model term (CD's chains, PCD's, PT's
``beta = 1`` replicas, the exact expectation). This assumes the estimator's data
term is the plain minibatch mean, as for every jrbm estimator.

**Which layers.** Everything above assumes a layer energy
``U(x) = -theta . x`` with one field array ``theta`` and the state itself as
coupling statistic: Bernoulli, Spin and Potts layers (and the flat
:class:`jrbm.BernoulliRBM`). The tutorial's Gaussian layer (statistic
``a x``, which depends on ``log_sigma``), ReLU (quadratic energy) and dReLU
(quadratic energy, two fields) are not of that form, nor is
:class:`jrbm.GaussianRBM`; they are refused with a ``ValueError``.
The initial offsets are the data's visible mean and the mean of ``E[h | v]``
over the data at the initial parameters.

**Invariance to flipping.** For Bernoulli visible units, the data ``1 - v``
with offsets ``1 - mu`` give the centred energy with ``W_c -> -W_c``,
``b_c -> -b_c``, ``c_c -> c_c``: a sign change of coordinates, under which
gradient descent on the centred parameters is the same trajectory. With an
exact gradient, training on ``v`` and on ``1 - v`` from corresponding initial
parameters gives the same log-likelihoods at every step, for any ``rate`` and
``mix`` (the paper's result (ii); ``tests/test_centering.py`` checks it); the ordinary
parametrisation has no such symmetry (the flip is a shear,
``c -> c + W^T 1``). The exact statement needs SGD (with or without
momentum): Adam's per-coordinate scaling does not commute with that shear.
With a sampled estimator the two runs are mirror images in distribution,
not draw for draw: a draw ``u < p`` is not mirrored by ``u < 1 - p`` under
the same noise, so their log-likelihoods differ by sampling noise.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks
from jrbm.layers import Bernoulli, Potts, Spin
from jrbm.model import check, flat_batch, hidden_input
from jrbm.params import GaussianRBM, Model

SUPPORTED_LAYERS = (Bernoulli, Spin, Potts)
"""The layer types :class:`Centered` accepts: ``U(x) = -theta . x`` with statistic ``s(x) = x``."""


def check_supported(params: Model, name: str = "params") -> None:
    """Raises ``ValueError`` unless both layers of ``params`` are Bernoulli, Spin or Potts layers.

    Example:
      >>> import jax, jrbm
      >>> from jrbm.layers import Bernoulli, ReLU
      >>> jrbm.centering.check_supported(jrbm.init_bernoulli(jax.random.key(0), 4, 2))
      >>> try:
      ...     jrbm.centering.check_supported(jrbm.init(jax.random.key(0), Bernoulli.init(4), ReLU.init(2)))
      ... except ValueError as e:
      ...     print(str(e)[:68])
      params.hidden: centring is defined for Bernoulli, Spin and Potts lay
    """
    check(params, name)
    if isinstance(params, GaussianRBM):
        raise ValueError(
            f"{name}: centring is defined for Bernoulli, Spin and Potts layers only, "
            "got a GaussianRBM (its Gaussian visible layer's coupling statistic a x depends on log_sigma)"
        )
    for side in ("visible", "hidden"):
        layer = getattr(params, side)
        if not isinstance(layer, SUPPORTED_LAYERS):
            raise ValueError(
                f"{name}.{side}: centring is defined for Bernoulli, Spin and Potts layers only, "
                f"got a {type(layer).__name__} layer (the centred update assumes the energy -theta . x with the "
                "state as coupling statistic)"
            )


def _flat(x: Array, shape: tuple) -> Array:
    """``(..., *shape)`` -> ``(..., prod(shape))``."""
    return x.reshape(x.shape[: x.ndim - len(shape)] + (math.prod(shape),))


def data_means(params: Model, v: ArrayLike) -> tuple[Array, Array]:
    """``(<v>_data, <E[h | v]>_data)`` over a non-empty ``(n, *visible.shape)`` batch, flattened over the layer axes."""
    v = flat_batch(params, v, "v")
    vis, hid = params.visible, params.hidden
    h = hid.mean(hidden_input(params, v))
    return jnp.mean(_flat(v, vis.shape), axis=0), jnp.mean(_flat(h, hid.shape), axis=0)


def centered_step(params: Model, grads: Model, mu: Array, lam: Array) -> Model:
    """The ordinary parameters' step for a gradient step on the centred parameters (see the module docstring).

    Args:
      params: the model (its type and layer types shape the result).
      grads: the loss gradient with respect to the ordinary parameters, a pytree like ``params``.
      mu: the visible offsets, ``(prod(visible.shape),)``.
      lam: the hidden offsets, ``(prod(hidden.shape),)``.

    Returns:
      A pytree like ``params``: ``W: gW_c = g_W - g_b lam^T - mu g_c^T``,
      visible fields ``g_b - gW_c lam``, hidden fields ``g_c - gW_c^T mu``.

    Example:
      >>> import jax.numpy as jnp, jrbm
      >>> params = jrbm.BernoulliRBM(jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros(1))
      >>> grads = jrbm.BernoulliRBM(jnp.zeros((2, 1)), jnp.ones(2), jnp.zeros(1))
      >>> step = jrbm.centering.centered_step(params, grads, jnp.zeros(2), jnp.full(1, 0.5))
      >>> step.W[:, 0].tolist(), step.b.tolist()
      ([-0.5, -0.5], [1.25, 1.25])
    """
    vis, hid = params.visible, params.hidden
    nv, nh = math.prod(vis.shape), math.prod(hid.shape)
    g_W = grads.W.reshape(nv, nh)
    g_b = grads.visible.theta.reshape(nv)
    g_c = grads.hidden.theta.reshape(nh)
    gW_c = g_W - jnp.outer(g_b, lam) - jnp.outer(mu, g_c)
    db = g_b - gW_c @ lam
    dc = g_c - gW_c.T @ mu
    return params.assemble(
        type(vis)(db.reshape(vis.shape)), type(hid)(dc.reshape(hid.shape)), gW_c.reshape(params.W.shape)
    )


class CenteredState(NamedTuple):
    """The state of :class:`Centered`: the inner estimator's state and the offsets.

    Attributes:
      inner: the wrapped estimator's state (persistent chains, ...).
      mu: the visible offsets, flattened over the layer's axes:
        ``(prod(visible.shape),)`` (``mu.reshape(params.visible.shape)`` for a
        Potts layer's ``(n, q)``). Kept flat so that no offset is mistaken for
        a batch of chains (:func:`jrbm.parallel.estimator_state_specs`).
      lam: the hidden offsets, ``(prod(hidden.shape),)``.
    """

    inner: Any
    mu: Array
    lam: Array

    def partition_specs(self, mesh):
        """How :mod:`jrbm.parallel` lays the state out: the inner state as it declares, the offsets replicated."""
        from jrbm import parallel

        return CenteredState(parallel.estimator_state_specs(self.inner, mesh), parallel.P(), parallel.P())


class _CenteredFields(NamedTuple):
    estimator: Any
    rate: float = 0.01
    mix: float = 0.5


class Centered(_CenteredFields):
    """Centring (Melchior, Fischer & Wiskott 2016) around any estimator: CD, PCD, FPCD, PT or your own.

    ``grad`` asks the wrapped estimator for the loss gradient of the ordinary
    parameters, moves the offsets towards the data and model means, and
    returns the step of a gradient step on the centred parameters, expressed
    for the ordinary ones (the module docstring derives it). The model stays
    an ordinary :class:`jrbm.BernoulliRBM` or :class:`jrbm.RBM`: everything
    else in jrbm (likelihoods, sampling, AIS, checkpoints) is unchanged. Works
    with :func:`jrbm.fit`, :func:`jrbm.fit_ensemble` and a device mesh, and
    forwards the wrapped estimator's ``diagnostics``.

    Defined for Bernoulli, Spin and Potts layers on both sides (and
    :class:`jrbm.BernoulliRBM`); other layers are refused with a
    ``ValueError`` when the state is made.

    Args:
      estimator: the estimator to wrap (``jrbm.PCD(1, 100)``, ...); not
        itself a :class:`Centered`.
      rate: the offsets' moving-average rate per update, in ``[0, 1]``
        (the paper's ``nu``; 0 keeps the initial offsets fixed).
      mix: the weight of the data means in the offsets' target, in
        ``[0, 1]``: ``0.5`` averages the data and model means (the paper's
        recommendation), ``1.0`` uses the data means only.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jrbm
      >>> data = jrbm.datasets.bars_and_stripes(3)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 9, 4, data=data)
      >>> est = jrbm.Centered(jrbm.PCD(1, 16), rate=0.01, mix=0.5)
      >>> state = est.init(jax.random.key(1), params, data)
      >>> state.mu.shape, state.lam.shape, state.inner.shape
      ((9,), (4,), (16, 9))
      >>> params, history = jrbm.fit(jax.random.key(2), params, data, optimizer=optax.sgd(0.1),
      ...                            estimator=est, epochs=3, batch_size=8, progress=False)
    """

    __slots__ = ()

    def __new__(cls, estimator: Any, rate: float = 0.01, mix: float = 0.5):
        _checks.estimator("estimator", estimator)
        if isinstance(estimator, Centered):
            raise ValueError(
                "estimator: expected an estimator to centre (jrbm.PCD(1), ...), got a Centered one; "
                "its transformed gradient has no field gradients to read the model means from"
            )
        rate = _checks.real_in("rate", rate, 0.0, 1.0, "a float in [0, 1] (the offsets' moving-average rate)")
        mix = _checks.real_in("mix", mix, 0.0, 1.0, "a float in [0, 1] (the weight of the data means in the offsets)")
        return super().__new__(cls, estimator, rate, mix)

    def init(self, key: Array, params: Model, data: ArrayLike) -> CenteredState:
        """The inner estimator's state, ``mu`` the data's mean and ``lam`` the mean of ``E[h | v]`` over the data."""
        _checks.key("key", key)
        check_supported(params)
        inner = self.estimator.init(key, params, data)
        mu, lam = data_means(params, flat_batch(params, data, "data"))
        return CenteredState(inner, mu, lam)

    def grad(self, key: Array, params: Model, batch: Array, state: CenteredState) -> tuple[Model, CenteredState]:
        """The centred step for ``batch`` (a pytree like ``params``) and the next state."""
        check_supported(params)
        if not isinstance(state, CenteredState):
            raise TypeError(f"state: expected the CenteredState of Centered.init, got {type(state).__name__}")
        grads, inner = self.estimator.grad(key, params, batch, state.inner)
        v = flat_batch(params, batch, "batch")
        dtype = params.W.dtype
        d_v, d_h = data_means(params, v)
        g_b = grads.visible.theta.reshape(d_v.shape)
        g_c = grads.hidden.theta.reshape(d_h.shape)
        # mix <x>_data + (1 - mix) <x>_model with <x>_model = <x>_data + g (the field gradient).
        target_v = d_v + (1 - self.mix) * g_b
        target_h = d_h + (1 - self.mix) * g_c
        rate = jnp.asarray(self.rate, dtype)
        mu = ((1 - rate) * state.mu + rate * target_v).astype(dtype)
        lam = ((1 - rate) * state.lam + rate * target_h).astype(dtype)
        return centered_step(params, grads, mu, lam), CenteredState(inner, mu, lam)

    def diagnostics(self, state: CenteredState) -> dict:
        """The wrapped estimator's ``diagnostics(state.inner)`` (``{}`` when it has none)."""
        own = getattr(self.estimator, "diagnostics", None)
        return {} if own is None else dict(own(state.inner))


__all__ = ["Centered", "CenteredState", "SUPPORTED_LAYERS", "centered_step", "check_supported", "data_means"]
