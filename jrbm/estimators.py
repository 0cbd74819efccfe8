"""Gradient estimators of the mean negative log-likelihood.

For a minibatch ``v_1..v_B`` the loss is ``-(1/B) sum_n log p(v_n)`` and its
gradient is (eqs. 2.14-2.16, 3.14-3.16, signs flipped for a loss)

    d loss / d theta = mean_n d F(v_n) / d theta  -  E_model[d F(u) / d theta],

with ``F`` the free energy. The estimators differ in the model term:
contrastive divergence (CD-k, Hinton 2002) uses a k-step Gibbs chain started at
the data, persistent CD (PCD, Tieleman 2008) chains that carry over between
updates. Both use ``P(h | v)`` in place of sampled ``h`` in the statistics.

The returned gradients are pytrees shaped like the parameters, ready for
``optax`` (which minimises), and compare directly with
``jax.grad(lambda p: -jrbm.exact.log_likelihood(p, v).mean())(params)``.

Estimator objects (:class:`CD`, :class:`PCD`, and :class:`jrbm.PT`) share one
interface so that :func:`jrbm.fit` takes any of them:
``init(key, params, data) -> state`` and
``grad(key, params, batch, state) -> (grads, state)``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks
from jrbm.model import _visible, family, hidden_logits
from jrbm.params import RBM
from jrbm.sampling import negative_phase


def _flat(params, v, name):
    """``v`` as a non-empty ``(n, n_visible)`` batch (a mean over no examples is undefined)."""
    flat = _visible(params, v, name).reshape(-1, params.W.shape[0])
    if flat.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got shape {tuple(jnp.shape(v))}")
    return flat


def contrast_grad(params: RBM, v_data: Array, p_data: Array, v_model: Array, p_model: Array) -> RBM:
    """``mean d F(v_data) - mean d F(v_model)`` with given hidden probabilities, in one pass.

    The positive and negative statistics are stacked so each weight gradient
    is a single ``(I, B + M) @ (B + M, J)`` product.
    """
    fam = family(params)
    n, m = v_data.shape[0], v_model.shape[0]
    dtype = v_data.dtype
    w = jnp.concatenate([jnp.full((n,), 1.0 / n, dtype), jnp.full((m,), -1.0 / m, dtype)])
    return fam.free_energy_grad(
        params, jnp.concatenate([v_data, v_model]), jnp.concatenate([p_data, p_model]), w
    )


def cd_grad(key: Array, params: RBM, v: ArrayLike, k: int = 1) -> RBM:
    """CD-k estimate of the loss gradient (Hinton 2002).

    The model term of eqs. 2.14-2.16 / 3.14-3.16 is taken at the end of a
    ``k``-step Gibbs chain started at each example. Biased for finite ``k``
    (towards the data), unbiased as ``k -> infinity``.

    Args:
      key: a ``jax.random`` key.
      params: a model.
      v: ``(..., n_visible)`` minibatch.
      k: number of Gibbs sweeps (static, >= 1).

    Returns:
      A pytree like ``params``: the estimate of ``d/d params`` of
      ``-mean(log p(v))``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> v = jnp.ones((8, 6))
      >>> grads = jrbm.cd_grad(jax.random.key(1), params, v, k=1)
      >>> opt = optax.sgd(0.1)
      >>> updates, _ = opt.update(grads, opt.init(params))
      >>> params = optax.apply_updates(params, updates)
    """
    _checks.key("key", key)
    k = _checks.positive_int("k", k)
    return _cd_grad(key, params, _flat(params, v, "v"), k)


@functools.partial(jax.jit, static_argnums=(3,))
def _cd_grad(key, params, v, k):
    """Compiled once per shape and ``k``, so eager calls do not re-trace the chain's scan."""
    p0 = jax.nn.sigmoid(hidden_logits(params, v))
    v_k, p_k = negative_phase(key, params, p0, k)
    return contrast_grad(params, v, p0, v_k, p_k)


def pcd_grad(key: Array, params: RBM, v: ArrayLike, chains: ArrayLike, k: int = 1) -> tuple[RBM, Array]:
    """Persistent CD estimate (Tieleman 2008); returns ``(grads, new_chains)``.

    The model term comes from ``chains`` (``(n_chains, n_visible)``, any number
    of chains) advanced by ``k`` Gibbs sweeps; the advanced chains are returned
    to be passed to the next call.
    """
    _checks.key("key", key)
    k = _checks.positive_int("k", k)
    chains = _visible(params, chains, "chains")
    grads, v_k = _pcd_grad(key, params, _flat(params, v, "v"), _flat(params, chains, "chains"), k)
    return grads, v_k.reshape(chains.shape)


@functools.partial(jax.jit, static_argnums=(4,))
def _pcd_grad(key, params, v, chains, k):
    """Compiled once per shape and ``k``, so eager calls do not re-trace the chain's scan."""
    p0 = jax.nn.sigmoid(hidden_logits(params, v))
    p_c = jax.nn.sigmoid(hidden_logits(params, chains))
    v_k, p_k = negative_phase(key, params, p_c, k)
    return contrast_grad(params, v, p0, v_k, p_k), v_k


class CD(NamedTuple):
    """Contrastive divergence with ``k`` Gibbs sweeps; stateless.

    Example:
      >>> import jax, jax.numpy as jnp, jrbm
      >>> est = jrbm.CD(k=1)
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 6, 4)
      >>> data = jnp.ones((8, 6))
      >>> state = est.init(jax.random.key(1), params, data)
      >>> grads, state = est.grad(jax.random.key(2), params, data, state)
    """

    k: int = 1

    def init(self, key: Array, params: RBM, data: ArrayLike) -> tuple:
        _checks.positive_int("k", self.k)
        return ()

    def grad(self, key: Array, params: RBM, batch: Array, state: Any) -> tuple[RBM, tuple]:
        return cd_grad(key, params, batch, self.k), state


class PCD(NamedTuple):
    """Persistent contrastive divergence: ``n_chains`` chains, ``k`` sweeps per update.

    ``init`` starts the chains at examples drawn from ``data`` (with
    replacement), the usual choice; the state is the ``(n_chains, n_visible)``
    array of chain states.
    """

    k: int = 1
    n_chains: int = 100

    def init(self, key: Array, params: RBM, data: ArrayLike) -> Array:
        _checks.positive_int("k", self.k)
        n = _checks.positive_int("n_chains", self.n_chains)
        data = _flat(params, data, "data")
        return data[jax.random.randint(key, (n,), 0, data.shape[0])]

    def grad(self, key: Array, params: RBM, batch: Array, state: Array) -> tuple[RBM, Array]:
        return pcd_grad(key, params, batch, state, self.k)
