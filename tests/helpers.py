"""Shared test fixtures: random models whose weights are not small, and brute-force references."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

import jrbm


def random_bernoulli(seed: int, n_visible: int, n_hidden: int, scale: float = 1.0, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return jrbm.BernoulliRBM(
        W=scale * jax.random.normal(k1, (n_visible, n_hidden), dtype),
        b=scale * jax.random.normal(k2, (n_visible,), dtype),
        c=scale * jax.random.normal(k3, (n_hidden,), dtype),
    )


def random_gaussian(seed: int, n_visible: int, n_hidden: int, scale: float = 1.0, dtype=jnp.float64):
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    return jrbm.GaussianRBM(
        W=scale * jax.random.normal(k1, (n_visible, n_hidden), dtype),
        b=scale * jax.random.normal(k2, (n_visible,), dtype),
        c=scale * jax.random.normal(k3, (n_hidden,), dtype),
        log_sigma=0.3 * jax.random.normal(k4, (n_visible,), dtype),
    )


def all_binary(n: int) -> np.ndarray:
    """All 2^n binary vectors, as float64 rows (itertools order, independent of jrbm.exact.states)."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def tutorial_negative_energy_bb(params, v, h):
    """The tutorial's E(v, h) of eq. 2.3, written out in numpy."""
    W, b, c = (np.asarray(x) for x in params)
    return v @ W @ h + b @ v + c @ h


def tutorial_negative_energy_gb(params, v, h):
    """The tutorial's E(v, h) of eq. 3.3 with one a_i per visible unit, written out in numpy."""
    W, b, c, log_sigma = (np.asarray(x) for x in params)
    a = np.exp(-log_sigma)
    return np.sum(a * v * (W @ h)) - np.sum(a**2 / 2 * (v - b) ** 2) + c @ h


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def bb_transition_matrix(params) -> np.ndarray:
    """The exact one-sweep Gibbs kernel T[v, v'] = sum_h p(h | v) p(v' | h), from the tutorial's energy."""
    W, b, c = (np.asarray(x, np.float64) for x in params)
    V, H = all_binary(W.shape[0]), all_binary(W.shape[1])
    logits = (V @ W) @ H.T + (V @ b)[:, None] + (H @ c)[None, :]  # E_tutorial(v, h)
    p_h_v = np.exp(logits - logits.max(1, keepdims=True))
    p_h_v /= p_h_v.sum(1, keepdims=True)  # p(h | v), rows v
    p_v_h = np.exp(logits - logits.max(0, keepdims=True))
    p_v_h /= p_v_h.sum(0, keepdims=True)  # p(v | h), columns h
    return p_h_v @ p_v_h.T


def bb_marginal(params) -> np.ndarray:
    """p(v) over all_binary(n_visible), by summing the joint of eq. 2.1."""
    W, b, c = (np.asarray(x, np.float64) for x in params)
    V, H = all_binary(W.shape[0]), all_binary(W.shape[1])
    logits = (V @ W) @ H.T + (V @ b)[:, None] + (H @ c)[None, :]
    p = np.exp(logits - logits.max()).sum(1)
    return p / p.sum()


def state_index(v) -> np.ndarray:
    """Row index of binary rows v in all_binary (first unit is the most significant bit)."""
    v = np.asarray(v).astype(np.int64)
    return v @ (1 << np.arange(v.shape[-1])[::-1])


def bb_stats(params, v) -> list:
    """Mean of the tutorial's conditional expectations (eqs. 2.11-2.13) over rows v, in numpy: [W, b, c]."""
    W, b, c = (np.asarray(x, np.float64) for x in params)
    p = sigmoid(v @ W + c)
    return [v.T @ p / len(v), v.mean(0), p.mean(0)]


def tv_bound(p, n, delta=1e-6):
    """A (1 - delta) bound on the total variation distance of an n-sample empirical distribution to p.

    E[TV] <= 1/2 sum_s sqrt(p_s (1 - p_s) / n) (Cauchy-Schwarz per state), and TV
    moves by at most 1/n when one sample changes, so McDiarmid's inequality adds
    sqrt(log(1/delta) / (2 n)).
    """
    return 0.5 * np.sum(np.sqrt(p * (1 - p) / n)) + np.sqrt(np.log(1 / delta) / (2 * n))
