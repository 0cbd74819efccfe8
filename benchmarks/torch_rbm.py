"""A straightforward PyTorch RBM: the peer the speed benchmarks compare jrbm with.

Written the way a PyTorch user would write it: tensors on one device
(CUDA when present, else CPU), ``torch.no_grad``, in-place updates
(``addmm_``), ``torch.bernoulli`` for binary draws, a Python loop over Gibbs
sweeps and minibatches. It implements exactly the algorithms jrbm's
estimators implement, so the two do the same arithmetic:

* CD-k: ``p0 = P(h | v)``; ``k`` sweeps ``h ~ Bernoulli(p)``, ``v ~ p(v | h)``,
  ``p = P(h | v)``; gradient from ``(v, p0)`` and ``(v_k, p_k)`` (hidden units
  Rao-Blackwellised);
* PCD-k: the same, with the sweeps started from persistent chains (whose
  hidden probabilities are recomputed with the current parameters, as
  ``jrbm.pcd_grad`` does);
* plain SGD on the mean log-likelihood.

The Gaussian-Bernoulli variant has a fixed ``sigma`` per visible unit
(``a = 1 / sigma``), as jrbm's default.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class TorchRBM:
    """A BB-RBM (``gaussian=False``) or GB-RBM with fixed ``sigma``; parameters as jrbm's ``W``, ``b``, ``c``."""

    def __init__(self, W, b, c, *, log_sigma=None, dev=None, dtype=torch.float32):
        dev = dev or device()
        t = lambda x: torch.as_tensor(np.array(x), dtype=dtype, device=dev)
        self.W, self.b, self.c = t(W), t(b), t(c)
        self.gaussian = log_sigma is not None
        if self.gaussian:
            self.sigma = torch.exp(t(log_sigma))
            self.a = 1.0 / self.sigma

    # conditionals ------------------------------------------------------------
    def p_h(self, v):
        if self.gaussian:
            v = v * self.a
        return torch.sigmoid(torch.addmm(self.c, v, self.W))

    def sample_v(self, h):
        if self.gaussian:
            mean = self.b + (h @ self.W.T) * self.sigma
            return mean + self.sigma * torch.randn_like(mean)
        return torch.bernoulli(torch.sigmoid(torch.addmm(self.b, h, self.W.T)))

    def negative(self, p, k):
        for _ in range(k):
            v = self.sample_v(torch.bernoulli(p))
            p = self.p_h(v)
        return v, p

    def gibbs(self, v, n_steps):
        for _ in range(n_steps):
            v = self.sample_v(torch.bernoulli(self.p_h(v)))
        return v

    # learning ----------------------------------------------------------------
    def _update(self, v, p0, vk, pk, lr):
        s = lr / v.shape[0]
        sk = lr / vk.shape[0]
        if self.gaussian:
            v, vk = v * self.a, vk * self.a
            self.b.add_((v.sum(0) * s - vk.sum(0) * sk) * self.a)  # a^2 (v - b), the b terms cancel
        else:
            self.b.add_(v.sum(0) * s - vk.sum(0) * sk)
        self.W.addmm_(v.T, p0, alpha=s)
        self.W.addmm_(vk.T, pk, alpha=-sk)
        self.c.add_(p0.sum(0) * s - pk.sum(0) * sk)

    @torch.no_grad()
    def cd_step(self, v, k=1, lr=0.01):
        p0 = self.p_h(v)
        vk, pk = self.negative(p0, k)
        self._update(v, p0, vk, pk, lr)

    @torch.no_grad()
    def pcd_step(self, v, chains, k=1, lr=0.01):
        p0 = self.p_h(v)
        vk, pk = self.negative(self.p_h(chains), k)
        self._update(v, p0, vk, pk, lr)
        return vk

    @torch.no_grad()
    def train_epoch(self, data, batch_size, *, k=1, lr=0.01, chains=None, generator=None):
        """One shuffled pass of CD-k (``chains=None``) or PCD-k; returns the chains."""
        n_batches = data.shape[0] // batch_size
        order = torch.randperm(data.shape[0], device=data.device, generator=generator)
        for i in range(n_batches):
            v = data[order[i * batch_size : (i + 1) * batch_size]]
            if chains is None:
                self.cd_step(v, k, lr)
            else:
                chains = self.pcd_step(v, chains, k, lr)
        return chains

    # exact likelihood of small BB models ---------------------------------------
    @torch.no_grad()
    def exact_log_likelihood(self, v):
        """Mean exact ``log p(v)`` by enumerating the hidden layer (small BB models only)."""
        n_hidden = self.W.shape[1]
        codes = torch.arange(2**n_hidden, device=self.W.device)
        h = ((codes[:, None] >> torch.arange(n_hidden - 1, -1, -1, device=self.W.device)) & 1).to(self.W.dtype)
        log_w = h @ self.c + torch.nn.functional.softplus(torch.addmm(self.b, h, self.W.T)).sum(1)
        log_z = torch.logsumexp(log_w, 0)
        free = -(v @ self.b) - torch.nn.functional.softplus(torch.addmm(self.c, v, self.W)).sum(1)
        return float((-free - log_z).mean())


def bas_run(data: np.ndarray, n_hidden: int, *, k: int, lr: float, n_updates: int, eval_every: int, seed: int):
    """One bars-and-stripes run as in :mod:`benchmarks.bas`: CD-k, full batch, plain SGD, exact LL every ``eval_every``.

    Returns the maximum mean log-likelihood seen.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dev = device()
    n_visible = data.shape[1]
    W = torch.randn(n_visible, n_hidden, generator=gen) * 0.01
    rbm = TorchRBM(W.numpy(), np.zeros(n_visible), np.zeros(n_hidden), dev=dev)
    v = torch.as_tensor(data, dtype=torch.float32, device=dev)
    best = -math.inf
    for t in range(1, n_updates + 1):
        rbm.cd_step(v, k, lr)
        if t % eval_every == 0:
            best = max(best, rbm.exact_log_likelihood(v))
    return best
