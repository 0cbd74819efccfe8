# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Layers: a Potts-dReLU RBM recovers a planted model; a layer written here, certified
#
# An RBM in jrbm is a visible layer, a hidden layer and a weight array:
# `jrbm.RBM(visible, hidden, W)` with `W.shape == visible.shape + hidden.shape`.
# Potts visible units (one-hot over `q` states) with dReLU hidden units are how
# RBMs model protein sequences (Tubiana, Cocco & Monasson, eLife 2019). Here a
# *planted* Potts-dReLU model small enough for exact likelihoods (5 sites of 4
# states: 1,024 sequences) generates the data, a fresh Potts-dReLU RBM is
# trained on it with PCD, and the two are compared: held-out exact
# log-likelihood, and the weights after the zero-sum gauge is fixed.
#
# The second part writes a new unit type (Binomial units of 3 trials) in this
# notebook, without touching jrbm, and certifies it with `jrbm.testing.check_layer`.

# %%
import os

SIZE = os.environ.get("JRBM_NOTEBOOK_SIZE", "full")
if SIZE not in ("small", "full"):
    raise ValueError(f"JRBM_NOTEBOOK_SIZE: expected 'small' or 'full', got {SIZE!r}")
SAVE_FIGURES = os.environ.get("JRBM_NOTEBOOK_SAVE_FIGURES") == "1"

import itertools
import math
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)  # exact likelihoods and the conformance kit run in float64

import jrbm
from jrbm.layers import Potts, dReLU, one_hot, zero_sum_gauge


def figures_dir():
    """notebooks/figures/, whether this runs as a script, in Jupyter, or from the repository root."""
    try:
        here = Path(__file__).resolve().parent
    except NameError:  # in a notebook: the kernel's working directory
        here = Path.cwd()
    if (here / "notebooks").is_dir():
        here = here / "notebooks"
    return here / "figures"


N_SITES, Q, N_HIDDEN = 5, 4, 2
N_TRAIN, N_TEST = (4000, 4000) if SIZE == "full" else (1000, 1000)
EPOCHS = 150 if SIZE == "full" else 20

# %% [markdown]
# ## The planted model and its data
#
# Two dReLU hidden units, each coupled to the sites by a `(5, 4)` slice of `W`.
# The data are exact draws: `jrbm.exact.marginal_visible` enumerates
# `p(v)` over all `4^5` sequences (the dReLU layer integrated out through its
# cumulant generating function), and sequences are drawn from it.

# %%
k_theta, k_w, k_data, k_init, k_fit = jax.random.split(jax.random.key(0), 5)
planted = jrbm.RBM(
    Potts(0.3 * jax.random.normal(k_theta, (N_SITES, Q))),
    dReLU(theta_pos=jnp.full(N_HIDDEN, -1.0), theta_neg=jnp.full(N_HIDDEN, 1.0),
          log_gamma_pos=jnp.zeros(N_HIDDEN), log_gamma_neg=jnp.zeros(N_HIDDEN)),
    0.8 * jax.random.normal(k_w, (N_SITES, Q, N_HIDDEN)),
)
planted = zero_sum_gauge(planted)
p_planted = jrbm.exact.marginal_visible(planted)
sequences = jrbm.exact.visible_states(planted)  # (1024, 5, 4) one-hot
idx = jax.random.choice(k_data, p_planted.shape[0], (N_TRAIN + N_TEST,), p=p_planted)
codes = np.asarray(jnp.argmax(sequences[idx], axis=-1))  # integer-coded sequences, as a user would have them
data = one_hot(jnp.asarray(codes), Q, dtype=jnp.float64)  # back to one-hot: what a Potts layer takes
train, test = data[:N_TRAIN], data[N_TRAIN:]
print("first sequences:", ["".join("ACGT"[c] for c in row) for row in codes[:5]])
print(f"entropy of the planted model: {float(-(p_planted * jnp.log(p_planted)).sum()):.3f} nats "
      f"(uniform: {N_SITES * math.log(Q):.3f})")

# %% [markdown]
# ## Training a Potts-dReLU RBM
#
# `jrbm.init` pairs the layers; with `data` the Potts fields start at the
# data's site frequencies. PCD with 200 chains and Adam; `fit` reports the
# exact log-likelihood of the training and held-out data every epoch (the
# Potts layer is enumerated, the dReLU layer integrated analytically).

# %%
params = jrbm.init(k_init, Potts.init(N_SITES, Q), dReLU.init(N_HIDDEN), data=train, weight_std=0.1)
params, history = jrbm.fit(
    k_fit, params, train, optimizer=optax.adam(0.01), estimator=jrbm.PCD(5, 200),
    epochs=EPOCHS, batch_size=100, validation=test, log_likelihood="exact", progress=False,
)
ll = {
    "planted": float(jrbm.exact.log_likelihood(planted, test).mean()),
    "learned": float(jrbm.exact.log_likelihood(params, test).mean()),
    "independent sites": float(jrbm.exact.log_likelihood(jrbm.RBM(params.visible.from_data(train), params.hidden, 0 * params.W), test).mean()),
}
for name, value in ll.items():
    print(f"held-out exact log-likelihood, {name:>17}: {value:.4f} nats per sequence")
# The couplings carry information the site frequencies alone do not; the learned model recovers
# most of what the planted one has over independent sites:
recovered = (ll["learned"] - ll["independent sites"]) / (ll["planted"] - ll["independent sites"])
print(f"fraction of the planted model's gain over independent sites recovered: {recovered:.2f}")
# The gain over independent sites, with its standard error over the held-out sequences.
gain = np.asarray(jrbm.exact.log_likelihood(params, test)) - np.asarray(
    jrbm.exact.log_likelihood(jrbm.RBM(params.visible.from_data(train), params.hidden, 0 * params.W), test)
)
se_gain = float(gain.std(ddof=1) / np.sqrt(len(gain)))
print(f"learned model over independent sites: {gain.mean():+.4f} ± {se_gain:.4f} nats per sequence")
# Checked at both sizes: the gain is resolved (above 4 standard errors), and "most" of the planted gain is recovered.
assert gain.mean() > 4 * se_gain, f"gain over independent sites {gain.mean():+.4f} is not above 4 s.e. = {4 * se_gain:.4f}"
assert recovered > 0.5, f"fraction of the planted gain recovered {recovered:.2f} is not above 0.5; {ll}"

# %% [markdown]
# ## The weights, gauge fixed
#
# A Potts layer has a gauge freedom: adding a constant to `theta_i` or to
# `W_i:mu` over the `q` states of site `i` changes no probability (the
# shift in the hidden input is absorbed by the hidden layer's fields).
# `zero_sum_gauge` puts both models in the gauge where those sums are zero,
# and dReLU units have one more symmetry (`h -> -h` with `W -> -W` and the
# two halves swapped), so hidden units are matched up to order and sign.

# %%
learned = zero_sum_gauge(params)
w_true = np.asarray(planted.W).reshape(-1, N_HIDDEN)
w_fit = np.asarray(learned.W).reshape(-1, N_HIDDEN)
best = None
for perm in itertools.permutations(range(N_HIDDEN)):
    signs = [np.sign(np.dot(w_true[:, j], w_fit[:, perm[j]])) or 1.0 for j in range(N_HIDDEN)]
    matched = np.stack([signs[j] * w_fit[:, perm[j]] for j in range(N_HIDDEN)], axis=1)
    corr = [np.corrcoef(w_true[:, j], matched[:, j])[0, 1] for j in range(N_HIDDEN)]
    if best is None or sum(corr) > sum(best[1]):
        best = (matched, corr)
matched, corr = best
print("correlation of gauge-fixed weights, per hidden unit:", [round(float(c), 3) for c in corr])

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].plot(history["epoch"], history["log_likelihood"], label="training data")
axes[0].plot(history["epoch"], history["val_log_likelihood"], label="held-out data")
axes[0].axhline(ll["planted"], color="k", ls="--", label="planted model, held-out")
axes[0].set(xlabel="epoch", ylabel="exact log-likelihood (nats per sequence)", title="Potts-dReLU RBM, PCD-5")
axes[0].legend()
lim = np.abs(w_true).max() * 1.1
axes[1].plot([-lim, lim], [-lim, lim], color="0.7")
for j in range(N_HIDDEN):
    axes[1].scatter(w_true[:, j], matched[:, j], s=12, label=f"hidden unit {j} (r = {corr[j]:.2f})")
axes[1].set(xlabel="planted W (zero-sum gauge)", ylabel="learned W (zero-sum gauge, matched)", title="Weights after fixing the gauge")
axes[1].legend()
fig.tight_layout()
if SAVE_FIGURES:
    fig.savefig(figures_dir() / "06_layers.png", dpi=100)

# %% [markdown]
# ## A layer written here, certified by the kit
#
# A unit type is a `NamedTuple` of per-unit fields with the methods of
# `jrbm.layers.Layer`: its energy `U`, its coupling statistic, its cumulant
# generating function given an input, its conditional mean and sampler, its
# states if discrete, validation, a fit to data and the annealing path. Here,
# Binomial units of 3 trials: `p(x | I) = C(3, x) s^x (1 - s)^(3 - x)` with
# `s = sigmoid(theta + I)`, so `U(x) = -theta x - log C(3, x)` and
# `cgf(I) = 3 softplus(theta + I)`.
#
# `jrbm.testing.check_layer` then checks it against enumeration: the `cgf`,
# the mean against `jax.grad` of the `cgf`, the sampler's moments within a
# bound set by the sample size, free energies and conditionals against the
# normalised joint, `jrbm.exact.grad` against `jax.grad`, invariance of `p(v)`
# under one Gibbs sweep (chi-square), the annealing path, and AIS against the
# exact `log Z`.

# %%
class Binomial(NamedTuple):
    theta: jax.Array
    TRIALS = 3

    @property
    def shape(self):
        return tuple(self.theta.shape)

    def energy(self, x):
        log_choose = math.lgamma(4) - jax.scipy.special.gammaln(x + 1) - jax.scipy.special.gammaln(4 - x)
        return -jnp.sum(self.theta * x + log_choose, axis=-1)

    def statistic(self, x):
        return x

    def cgf(self, inputs):
        return jnp.sum(3 * jax.nn.softplus(self.theta + inputs), axis=-1)

    def mean(self, inputs):
        return 3 * jax.nn.sigmoid(self.theta + inputs)

    def noise(self, key, batch_shape, dtype):
        return jax.random.uniform(key, tuple(batch_shape) + self.shape + (3,), dtype)

    def sample_given_noise(self, inputs, noise):
        p = jax.nn.sigmoid(self.theta + inputs)
        return jnp.sum(noise < p[..., None], axis=-1).astype(p.dtype)

    def unit_states(self):
        return jnp.arange(4.0)

    def shifted(self, inputs):
        return Binomial(self.theta + inputs)

    def check(self, name):
        jrbm.layers.base.check_leaves(self, name)

    def check_data(self, name, x):
        jrbm.layers.base.check_values(name, x, lambda a: (a == np.round(a)) & (a >= 0) & (a <= 3), "counts 0..3", "Binomial")

    def from_data(self, data):
        if data is None:
            return Binomial(jnp.zeros_like(self.theta))
        p = jnp.clip(jnp.mean(data, axis=0) / 3, 1e-3, 1 - 1e-3)
        return Binomial(jnp.log(p) - jnp.log1p(-p))

    def interpolate(self, base, beta):
        return Binomial((1 - beta) * base.theta + beta * self.theta), jnp.ones((), self.theta.dtype)


report = jrbm.testing.check_layer(jax.random.key(1), Binomial(jnp.array([0.3, -0.8, 1.1])))
for check, value in report.items():
    print(f"{check:>17}: {value}")
