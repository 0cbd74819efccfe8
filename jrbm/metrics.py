"""Cheap training monitors: reconstruction error, free-energy gap, pseudo-log-likelihood.

None of these is the likelihood (:mod:`jrbm.exact` for small models,
:mod:`jrbm.ais` for any size); they are what Hinton's practical guide
(G. Hinton, "A practical guide to training restricted Boltzmann machines",
UTML TR 2010-003) suggests watching during training:

* **Reconstruction error** (guide, section 5): the squared error between the
  data and its one-step reconstruction ``p_v_given_h(p_h_given_v(v))``
  (eqs. 2.10/2.19 or 3.10/3.19). Easy to compute but a poor measure of
  progress: it is not the quantity CD optimises, and a mixing chain can make it
  rise while the model improves.
* **Free-energy gap** (guide, section 6): the mean free energy (eqs. 2.9, 3.9)
  of held-out data minus that of (a subset of) the training data. ``log Z``
  cancels, so it is the mean log-likelihood of the training data minus that of
  the held-out data; a gap that starts to grow means overfitting.
* **Pseudo-log-likelihood** (Besag 1975), for visible layers of two-state units (Bernoulli, Spin):
  ``sum_i log P(v_i | v_{-i})``, each term a ratio of two probabilities of the
  model in which ``Z`` cancels. With ``v^(i)`` the vector ``v`` with bit ``i``
  flipped and ``F`` the free energy,

      P(v_i | v_{-i}) = p(v) / (p(v) + p(v^(i))) = sigmoid(F(v^(i)) - F(v)),
      log P(v_i | v_{-i}) = -softplus(F(v) - F(v^(i))).

  jrbm reports it per visible unit (divided by ``n_visible``), per example, so
  that models of different widths compare; the sampled form with one random bit
  per example (as scikit-learn's ``BernoulliRBM.score_samples``, there times
  ``n_visible``) is an unbiased estimate of the same per-unit value.

Flipping unit ``i`` of a two-state layer (states ``o`` and ``o + g``) changes
it by ``d_i = +-g``; the layer's energy is affine in the state, so with the
hidden input ``I = I_hid(v)`` and the free energy ``F = U - cgf_hid(I)``
(for a BB-RBM, ``U(v) = -b^T v`` and ``cgf = sum softplus(c + I)``, the
tutorial's eq. 2.9 with ``energy = -E_tutorial``)

    F(v) - F(v^(i)) = -slope_i d_i + cgf_hid(I + d_i W_i / g) - cgf_hid(I),

which evaluates all ``n_visible`` flips in ``O(n_visible n_hidden)`` per example
instead of ``n_visible`` full free energies.

Everything here is jit-able, batch-agnostic and computes in the parameters'
dtype.

References:
  G. Hinton, "A practical guide to training restricted Boltzmann machines",
  UTML TR 2010-003, sections 5 and 6.
  J. Besag, "Statistical analysis of non-lattice data", The Statistician 24, 1975.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks, rng
from jrbm.layers import base as layer_base
from jrbm.model import check as check_model
from jrbm.model import couple_to_hidden, couple_to_visible, flat_batch, free_energy_unchecked, hidden_input, visible_data
from jrbm.params import Model


@rng.own_on_mesh(set_mesh=False)
def reconstruction_error(params: Model, v: ArrayLike, *, key: Optional[Array] = None) -> Array:
    """Mean squared error per visible entry between ``v`` and its one-step reconstruction.

    With ``key=None`` (deterministic, mean field) the reconstruction is
    ``p_v_given_h(params, p_h_given_v(params, v))``; with a key, ``h`` is
    sampled, ``h ~ p(h | v)``, and the reconstruction is
    ``p_v_given_h(params, h)``: the probabilities (BB) or the mean (GB) of
    ``v | h``, as in CD-1's negative phase (Hinton's guide, sections 3.2
    and 5). The mean runs over all examples and entries of ``v``: a unit's
    value, or for Potts units each of its ``q`` one-hot components (the
    squared error of a unit's one-hot vector is ``q`` times that mean).

    Args:
      params: a model.
      v: ``(..., *visible.shape)`` data.
      key: ``None`` (mean field) or a ``jax.random`` key (sampled ``h``).

    Returns:
      A scalar in the parameters' dtype.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.metrics
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3, weight_std=0.0)
      >>> float(jrbm.metrics.reconstruction_error(params, jnp.ones((2, 4))))  # (1 - 1/2)^2
      0.25
    """
    check_model(params)
    v = flat_batch(params, v, "v")
    return reconstruction_error_unchecked(params, v, key)


def reconstruction_error_unchecked(params: Model, v: Array, key: Optional[Array] = None) -> Array:
    """:func:`reconstruction_error` of checked data (what :func:`jrbm.fit` monitors inside its compiled epoch)."""
    vis, hid = params.visible, params.hidden
    inputs = hidden_input(params, v)
    if key is None:
        h = hid.mean(inputs)
    else:
        _checks.key("key", key)
        h = layer_base.sample(key, hid, inputs)
    recon = vis.mean(couple_to_visible(params, hid.statistic(h)))
    return jnp.mean((v - recon) ** 2)


def free_energy_gap(params: Model, train: ArrayLike, held_out: ArrayLike) -> Array:
    """Mean free energy of ``held_out`` minus that of ``train`` (Hinton's guide, section 6).

    Equal to ``mean log p(train) - mean log p(held_out)`` (``log Z`` cancels):
    positive when the model prefers the training data, and a gap that grows
    during training signals overfitting. Use a training subset of the size of
    ``held_out``. Either argument may have any leading batch shape.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.metrics
      >>> train = jnp.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3, data=train)  # b fits train's marginals
      >>> bool(jrbm.metrics.free_energy_gap(params, train, 1 - train) > 0)
      True
    """
    check_model(params)
    train = flat_batch(params, train, "train")
    held_out = flat_batch(params, held_out, "held_out")
    return jnp.mean(free_energy_unchecked(params, held_out)) - jnp.mean(free_energy_unchecked(params, train))


def pseudo_log_likelihood(params: Model, v: ArrayLike, *, key: Optional[Array] = None, check: bool = True) -> Array:
    """Pseudo-log-likelihood per visible unit, per example (visible units of two states: Bernoulli, Spin).

    ``(1 / n_visible) sum_i log P(v_i | v_{-i})`` with
    ``log P(v_i | v_{-i}) = -softplus(F(v) - F(v^(i)))`` (module docstring).

    Args:
      params: a model whose visible units have two states (Bernoulli, Spin)
        and any hidden layer; other visible layers raise ``TypeError``.
      v: ``(..., n_visible)`` states of the visible layer (checked when
        ``check`` and ``v`` is concrete).
      key: ``None`` for the exact average over all bits; a ``jax.random`` key
        for the sampled form, ``log P(v_i | v_{-i})`` at one bit ``i`` drawn
        uniformly per example: an unbiased estimate of the exact value at
        ``O(n_hidden)`` cost per example.
      check: validate that ``v`` lies in the visible layer's states.

    Returns:
      ``(...)``, one value (``<= 0``) per example, in the parameters' dtype.
      Multiply by ``n_visible`` for the usual sum over units.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm, jrbm.metrics
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 4, 3, weight_std=0.0)
      >>> [round(x, 4) for x in jrbm.metrics.pseudo_log_likelihood(params, jnp.ones((2, 4))).tolist()]  # log(1/2)
      [-0.6931, -0.6931]
    """
    check_model(params)
    vis, hid = params.visible, params.hidden
    if not (hasattr(vis, "affine_bits") and layer_base.is_discrete(vis) and vis.unit_states().shape[0] == 2):
        raise TypeError(
            f"params: the pseudo-log-likelihood here needs binary visible units (a layer of two-state units: Bernoulli, Spin), "
            f"got {type(vis).__name__}; use jrbm.exact.log_likelihood or jrbm.ais"
        )
    v = visible_data(params, v)
    if _checks.flag("check", check):
        layer_base.check_data(vis, "v", v)
    dtype = params.W.dtype
    offset, scale = (jnp.asarray(a, dtype) for a in vis.affine_bits())
    n = vis.shape[0]
    base_state = jnp.broadcast_to(offset, vis.shape)
    single = base_state + jnp.eye(n, dtype=dtype) * scale
    slope = (vis.energy(single) - vis.energy(base_state)) / scale  # U is affine: dU = slope_i dx_i
    rows = (couple_to_hidden(params, vis.statistic(single)) - couple_to_hidden(params, vis.statistic(base_state))) / scale  # (I, *hidden.shape)
    hd = (1,) * len(hid.shape)
    x = hidden_input(params, v)  # (..., *hidden.shape)
    d = (offset + scale - v) - (v - offset)  # the change of each unit when flipped: +-scale
    if key is None:
        # (..., I, *hidden.shape): the hidden inputs with unit i flipped
        x_flip = jnp.expand_dims(x, -1 - len(hid.shape)) + d.reshape(d.shape + hd) * rows
        delta = -slope * d + hid.cgf(x_flip) - hid.cgf(x)[..., None]  # F(v) - F(v^(i))
        return -jnp.mean(layer_base.softplus(delta), axis=-1)
    _checks.key("key", key)
    i = jax.random.randint(key, v.shape[:-1], 0, n)
    d_i = jnp.take_along_axis(d, i[..., None], axis=-1)[..., 0]
    x_flip = x + d_i.reshape(d_i.shape + hd) * rows[i]
    delta = -slope[i] * d_i + hid.cgf(x_flip) - hid.cgf(x)
    return -layer_base.softplus(delta)
