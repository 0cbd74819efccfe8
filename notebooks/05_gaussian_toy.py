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
# # 05 · A Gaussian-Bernoulli RBM with learned variances on a 2-D toy problem
#
# `jrbm.datasets.two_laplace()`: two independent Laplace sources, linearly
# mixed and whitened (mean 0, covariance exactly the identity). A GB-RBM with
# `J = 4` hidden units models `p(v)` as a mixture of `2^4 = 16` Gaussians with
# a shared diagonal covariance `diag(sigma_i^2)` (notebook 02), and here it
# learns `sigma` too (`learn_sigma=True`). The model is small enough for
# everything to be exact: `jrbm.exact.grad` for training, `jrbm.exact` for the
# log-likelihood, and the exact `log Z` to check AIS against.
#
# **Where to start `sigma`.** The data are whitened, so the best single
# Gaussian is the standard Normal, with mean log-likelihood
# `-(1 + log 2π) = -2.838` nats. With `sigma = 1` and small weights the
# GB-RBM *is* that Gaussian: all 16 components sit on top of each other, and
# a mixture of unit-variance components has unit total variance only if all
# its means coincide, so the gradient has nowhere to go. Starting from
# `sigma = 0.7` leaves the components room to spread along the heavy-tailed
# source directions. Both starts are trained below with the exact gradient;
# the `sigma = 0.7` start is then trained with PCD-1, which also needs `sigma`
# held fixed for a while.

# %%
import os

SIZE = os.environ.get("JRBM_NOTEBOOK_SIZE", "full")
if SIZE not in ("small", "full"):
    raise ValueError(f"JRBM_NOTEBOOK_SIZE: expected 'small' or 'full', got {SIZE!r}")
SAVE_FIGURES = os.environ.get("JRBM_NOTEBOOK_SAVE_FIGURES") == "1"


def scaled(full, small):
    """A loop/sample count: `full` for the full run, `small` for CI."""
    return full if SIZE == "full" else small


N_POINTS = scaled(10000, 2000)  # training and test points each
EPOCHS = scaled(3000, 100)  # full-batch exact-gradient updates
N_SEEDS = scaled(8, 2)  # initialisations per starting sigma
AIS_SCHEDULES = scaled((10, 100, 1000, 10000), (10, 100))  # AIS schedule lengths
AIS_RUNS = scaled(100, 20)
print(f"size={SIZE}: {N_POINTS} points, {EPOCHS} updates, {N_SEEDS} seeds")

# %%
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

# %matplotlib inline
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)

import jrbm  # noqa: E402


def figures_dir():
    """notebooks/figures/, whether this runs as a script, in Jupyter, or from the repository root."""
    try:
        here = Path(__file__).resolve().parent
    except NameError:  # in a notebook: the kernel's working directory
        here = Path.cwd()
    if (here / "notebooks").is_dir():
        here = here / "notebooks"
    return here / "figures"


# %% [markdown]
# ## Data and the Gaussian baseline
#
# Training and test sets are independent samples (seeds 0 and 1), each whitened
# on itself.

# %%
X = jrbm.datasets.two_laplace(N_POINTS, seed=0, dtype=np.float64)
X_test = jrbm.datasets.two_laplace(N_POINTS, seed=1, dtype=np.float64)


def gaussian_ll(x):
    """Mean log-density of the standard Normal, the maximum-likelihood Gaussian of whitened data."""
    return float(np.mean(-0.5 * np.sum(x**2, axis=1)) - np.log(2 * np.pi))


kurt = np.mean(X**4, axis=0) / np.mean(X**2, axis=0) ** 2
print(f"covariance of X:\n{np.round(X.T @ X / len(X), 6)}\nkurtosis per coordinate: {np.round(kurt, 2)} (Normal: 3)")
print(f"standard Normal: mean log-likelihood {gaussian_ll(X):.4f} (train), {gaussian_ll(X_test):.4f} (test)")

# %% [markdown]
# ## Training with the exact gradient
#
# `jrbm.fit` takes any estimator with `init(key, params, data)` and
# `grad(key, params, batch, state)`; the exact gradient is one line of it.
# With the batch the whole training set, each epoch is one deterministic
# full-batch Adam step.


# %%
class ExactGradient(NamedTuple):
    """The loss gradient by enumeration (jrbm.exact.grad) in the estimator interface of jrbm.fit."""

    def init(self, key, params, data):
        return ()

    def grad(self, key, params, batch, state):
        return jrbm.exact.grad(params, batch), state


OPTIMIZER = optax.adam(0.01)

# %% [markdown]
# First, how much the end point depends on the start: `N_SEEDS`
# initialisations (weights of standard deviation 0.01) for each starting
# `sigma`, trained at once by `jax.vmap` over a `lax.scan` of exact-gradient
# Adam steps. `log_sigma` is a leaf like any other, so the optimizer learns
# it (`jrbm.fit` masks it out unless `learn_sigma=True`).

# %%
X_j, X_test_j = jnp.asarray(X), jnp.asarray(X_test)


@jax.jit
@jax.vmap
def train_exact(params):
    def step(carry, _):
        p, opt_state = carry
        updates, opt_state = OPTIMIZER.update(jrbm.exact.grad(p, X_j), opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, OPTIMIZER.init(params)), None, length=EPOCHS)
    ll = lambda x: jnp.mean(jrbm.exact.log_likelihood(params, x, check=False))
    return params, ll(X_j), ll(X_test_j)


init_keys = jax.random.split(jax.random.key(0), N_SEEDS)
study = {}
for sigma0 in (1.0, 0.7):
    inits = jax.vmap(lambda k: jrbm.init_gaussian(k, 2, 4, data=X, sigma=sigma0, dtype=jnp.float64))(init_keys)
    trained, ll_train, ll_test = train_exact(inits)
    study[sigma0] = dict(inits=inits, trained=trained, train=np.asarray(ll_train), test=np.asarray(ll_test))
    print(f"start sigma = {sigma0}: gain over the standard Normal after {EPOCHS} updates, per seed")
    for s in range(N_SEEDS):
        sig = np.exp(np.asarray(trained.log_sigma[s]))
        gain_train, gain_test = round(ll_train[s] - gaussian_ll(X), 4) + 0.0, round(ll_test[s] - gaussian_ll(X_test), 4) + 0.0
        print(f"  seed {s}: train {gain_train:+.4f}  test {gain_test:+.4f} nats   sigma = {np.round(sig, 3)}")

# %% [markdown]
# Different seeds end in different local optima (the printed gains), and the
# start at `sigma = 1` stays at the Gaussian. The model below is the start at
# `sigma = 0.7` whose end point has the highest *training* log-likelihood,
# trained again with `jrbm.fit(..., learn_sigma=True)`, which also records
# the exact log-likelihood of both sets as it goes.

# %%
best = int(np.argmax(study[0.7]["train"]))
params0 = jax.tree.map(lambda x: x[best], study[0.7]["inits"])
params, history = jrbm.fit(
    jax.random.key(1),
    params0,
    X,
    optimizer=OPTIMIZER,
    estimator=ExactGradient(),
    epochs=EPOCHS,
    batch_size=len(X),
    validation=X_test,
    learn_sigma=True,
    sigma_warmup=0,  # as in the vmapped run: sigma learned from the first update
    log_likelihood="exact",
    eval_every=max(EPOCHS // 30, 1),
    progress=False,
)
ll_train = float(jnp.mean(jrbm.exact.log_likelihood(params, X)))
ll_test = float(jnp.mean(jrbm.exact.log_likelihood(params, X_test)))
gain_test = ll_test - gaussian_ll(X_test)
print(f"seed {best}: exact mean log-likelihood {ll_train:.4f} (train), {ll_test:.4f} (test)")
print(f"test gain over the standard Normal: {gain_test:+.4f} nats; sigma = {np.round(np.exp(np.asarray(params.log_sigma)), 4)}")
print(f"same as the vmapped run to {abs(ll_test - study[0.7]['test'][best]):.1e} nats")
gain_sigma1 = float(np.max(study[1.0]["test"])) - gaussian_ll(X_test)
print(f"best start at sigma = 1 (any seed): {round(gain_sigma1, 4) + 0.0:+.4f} nats on the test set")

# Standard errors over the test points, of the gain and of the difference from the best start at sigma = 1.
log_p_test = np.asarray(jrbm.exact.log_likelihood(params, X_test))
log_normal_test = -0.5 * np.sum(X_test**2, axis=1) - np.log(2 * np.pi)
sigma1_best = jax.tree.map(lambda x: x[int(np.argmax(study[1.0]["test"]))], study[1.0]["trained"])
log_p_sigma1 = np.asarray(jrbm.exact.log_likelihood(sigma1_best, X_test))
se_gain = float(np.std(log_p_test - log_normal_test, ddof=1) / np.sqrt(len(X_test)))
se_vs_sigma1 = float(np.std(log_p_test - log_p_sigma1, ddof=1) / np.sqrt(len(X_test)))
ll_start = float(jnp.mean(jrbm.exact.log_likelihood(params0, X_test)))
print(f"test gain {gain_test:+.4f} ± {se_gain:.4f} nats (s.e. over test points); over the sigma = 1 start "
      f"{gain_test - gain_sigma1:+.4f} ± {se_vs_sigma1:.4f}; test log-likelihood at the start {ll_start:.4f}")

# %% [markdown]
# The headline, checked. At full size the learned model beats the standard
# Normal, and the start at `sigma = 1`, by more than 4 standard errors of the
# difference over the test points. At `small` the 100 updates only bring the
# model from its start at `sigma = 0.7` (below the Gaussian) up to about the
# Gaussian, so there the check is the weaker one that training raised the
# exact test log-likelihood above that of the starting model.

# %%
assert ll_test > ll_start, f"test log-likelihood {ll_test:.4f} after training is not above {ll_start:.4f} at the start"
if SIZE == "full":
    assert gain_test > 4 * se_gain, f"test gain over the standard Normal {gain_test:+.4f} is not above 4 s.e. = {4 * se_gain:.4f}"
    assert gain_test - gain_sigma1 > 4 * se_vs_sigma1, (
        f"test gain over the sigma = 1 start {gain_test - gain_sigma1:+.4f} is not above 4 s.e. = {4 * se_vs_sigma1:.4f}"
    )

# %%
h = {k: np.asarray(v, float) for k, v in history.items()}
ok = np.isfinite(h["log_likelihood"])
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(h["epoch"][ok], h["log_likelihood"][ok], label="train")
ax.plot(h["epoch"][ok], h["val_log_likelihood"][ok], label="test")
ax.axhline(gaussian_ll(X_test), color="k", ls=":", label="standard Normal")
ax.set_xlabel("update (full batch)")
ax.set_ylabel("mean log-likelihood (exact)")
ax.set_title("GB-RBM, J = 4, learned sigma, exact gradient")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## The density
#
# Contours of the model's log-density over the training data
# (`jrbm.plots.density_2d`), with the 16 component means `b + W h / a` marked,
# their areas proportional to `p(h)`.

# %%
H = jnp.asarray(np.array([[(s >> j) & 1 for j in range(4)] for s in range(16)], float))
means = np.asarray(jrbm.p_v_given_h(params, H))
log_p_h = -np.asarray(jrbm.hidden_free_energy(params, H)) - float(jrbm.exact.log_partition(params))
print(f"sum_h p(h) = {np.exp(log_p_h).sum():.12f}")
fig = jrbm.plots.density_2d(params, X[:3000])
ax = fig.axes[0]
ax.scatter(means[:, 0], means[:, 1], s=600 * np.exp(log_p_h), c="C3", alpha=0.7, label="component means, area ∝ p(h)")
ax.set_aspect("equal")
ax.legend(loc="lower right", fontsize=8)
fig

# %% [markdown]
# ## Learning `sigma` with a sampling estimator
#
# With minibatches, starting below the data's standard deviation is not
# enough. Learned from the first update, `sigma` rises to 1 within a few
# hundred updates, before the weights have grown: near `W = 0` their gain
# over the Gaussian is of fourth order in `W` (the model's mean and
# covariance already match), while `sigma`'s is of second order. The model
# becomes the standard Normal, a stationary point that noisy minibatch
# gradients do not leave (full-batch Adam above leaves it, slowly, because it
# scales even a tiny gradient up to a full step). The exact gradient of each
# minibatch does the same, so this is not a bias of CD or PCD
# (`benchmarks/sigma.py`). `jrbm.fit` therefore holds `log_sigma` fixed for
# the first `sigma_warmup` epochs, half of them by default: at
# `sigma = 0.7` the weights must carry the rest of the variance and grow
# along the heavy-tailed directions; then `sigma` and the weights settle
# together.
#
# PCD-1 with 100 chains and the command line's settings for Gaussian units
# (Adam 0.003, weight decay 1e-4 on `W`, minibatches of 20), from the start
# above, with the default warm-up and without one:

# %%
PCD_EPOCHS = scaled(200, 40)
pcd_optimizer = optax.chain(optax.add_decayed_weights(1e-4, mask=jrbm.train.weights_only), optax.adam(0.003))
pcd_log_p = {}
for warmup in (None, 0):
    trained_pcd, _ = jrbm.fit(jax.random.key(3), params0, X, optimizer=pcd_optimizer, estimator=jrbm.PCD(1, 100),
                              epochs=PCD_EPOCHS, batch_size=20, learn_sigma=True, sigma_warmup=warmup, progress=False)
    pcd_log_p[warmup] = np.asarray(jrbm.exact.log_likelihood(trained_pcd, X_test))
    sig = np.round(np.exp(np.asarray(trained_pcd.log_sigma)), 3)
    print(f"sigma_warmup={warmup}: test log-likelihood {pcd_log_p[warmup].mean():.4f}, sigma = {sig}, "
          f"|W| = {float(jnp.linalg.norm(trained_pcd.W)):.2f}")
diff = pcd_log_p[None] - pcd_log_p[0]
se_diff = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
print(f"warm-up minus none: {diff.mean():+.4f} ± {se_diff:.4f} nats per test point; "
      f"the exact-gradient model above: {ll_test:.4f}")

# %% [markdown]
# At full size (`benchmarks/sigma.py` repeats it over 5 keys) the warm-up
# lifts PCD-1 above the run without it by more than 4 standard errors of the
# paired difference, and the run without it ends within 0.01 nats of the
# standard Normal.

# %%
if SIZE == "full":
    assert diff.mean() > 4 * se_diff, f"warm-up minus none {diff.mean():+.4f} is not above 4 s.e. = {4 * se_diff:.4f}"
    assert abs(pcd_log_p[0].mean() - gaussian_ll(X_test)) < 0.01, pcd_log_p[0].mean()

# %% [markdown]
# ## AIS against the exact `log Z`
#
# Forward AIS (`jrbm.ais.log_partition`) is a stochastic *lower* bound on
# `log Z`; reverse AIS started from exact samples of the model is a stochastic
# *upper* bound (`jrbm.ais.reverse_log_partition`). Exact samples are easy
# here: `h` from the 16-state `p(h)`, then `v ~ p(v | h)`. Both converge to
# the exact `log Z` as the schedule gets longer.
#
# Checked for every schedule and both directions: `|estimate - exact| < 4 s.e.
# + 1e-3`. The bias of an estimate is of the order of its squared standard
# error (`s.e.^2 / 2` for a log-normal spread of the weights), so within a
# few standard errors; the floor of `1e-3` nats covers a standard error
# understated by the spread of only `AIS_RUNS` runs.

# %%
log_z = float(jrbm.exact.log_partition(params))
key_h, key_v = jax.random.split(jax.random.key(2))
h_idx = jax.random.categorical(key_h, jnp.asarray(log_p_h), shape=(AIS_RUNS,))
exact_samples = jrbm.sample_v_given_h(key_v, params, H[h_idx])
print(f"exact log Z = {log_z:.5f}")
fwd, rev = [], []
for i, n_betas in enumerate(AIS_SCHEDULES):
    f = jrbm.ais.log_partition(jax.random.key(10 + i), params, data=X, betas=n_betas, n_runs=AIS_RUNS)
    r = jrbm.ais.reverse_log_partition(jax.random.key(20 + i), params, exact_samples, data=X, betas=n_betas)
    fwd.append((float(f.log_z), float(f.log_z_std)))
    rev.append((float(r.log_z), float(r.log_z_std)))
    print(
        f"{n_betas:>6} betas: forward {fwd[-1][0] - log_z:+.5f} ± {fwd[-1][1]:.5f}, "
        f"reverse {rev[-1][0] - log_z:+.5f} ± {rev[-1][1]:.5f}  (estimate - exact)"
    )
    for name, (est, se) in (("forward", fwd[-1]), ("reverse", rev[-1])):
        bound = 4 * se + 1e-3
        assert abs(est - log_z) < bound, f"{name} AIS, {n_betas} betas: |{est:.5f} - exact {log_z:.5f}| = {abs(est - log_z):.5f} >= {bound:.5f}"

# %%
fig, ax = plt.subplots(figsize=(6, 3.8))
fwd_a, rev_a = np.array(fwd), np.array(rev)
ax.errorbar(AIS_SCHEDULES, fwd_a[:, 0] - log_z, yerr=fwd_a[:, 1], marker="o", capsize=3, label="forward AIS (lower bound)")
ax.errorbar(AIS_SCHEDULES, rev_a[:, 0] - log_z, yerr=rev_a[:, 1], marker="s", capsize=3, label="reverse AIS (upper bound)")
ax.axhline(0, color="k", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("number of inverse temperatures")
ax.set_ylabel("estimate - exact log Z")
ax.set_title(f"AIS on the trained GB-RBM ({AIS_RUNS} runs, ±1 s.e.)")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## Summary figure
#
# (Saved to `notebooks/figures/05_gaussian_toy.png` when
# `JRBM_NOTEBOOK_SAVE_FIGURES=1`.)

# %%
fig, axs = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw=dict(width_ratios=[1, 1.1]))
lo, hi = np.percentile(X, 0.5, axis=0) - 0.5, np.percentile(X, 99.5, axis=0) + 0.5
gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
grid = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1))
log_p = np.asarray(-jrbm.free_energy(params, grid)).reshape(gx.shape) - log_z
axs[0].scatter(X[:3000, 0], X[:3000, 1], s=2, color="gray", alpha=0.3)
cs = axs[0].contour(gx, gy, log_p, levels=np.arange(-9, -0.9, 1.0), cmap="viridis")
axs[0].clabel(cs, fontsize=7)
axs[0].scatter(means[:, 0], means[:, 1], s=600 * np.exp(log_p_h), c="C3", alpha=0.7)
axs[0].set_xlim(lo[0], hi[0])
axs[0].set_ylim(lo[1], hi[1])
axs[0].set_aspect("equal")
axs[0].set_title(f"log p(v) of the GB-RBM (J = 4, learned sigma)\n{gain_test:+.3f} nats per test point over the standard Normal")
axs[1].plot(h["epoch"][ok], h["val_log_likelihood"][ok], label="GB-RBM, sigma from 0.7")
axs[1].axhline(float(np.max(study[1.0]["test"])), color="C1", lw=3, alpha=0.5, label="GB-RBM, sigma from 1 (best seed)")
axs[1].axhline(gaussian_ll(X_test), color="k", ls=":", label="standard Normal")
axs[1].set_title("test log-likelihood during training")
axs[1].set_xlabel("update (full batch, exact gradient)")
axs[1].set_ylabel("mean log-likelihood (exact)")
axs[1].legend(loc="lower right")
axs[1].grid(alpha=0.3)
fig.tight_layout()
if SAVE_FIGURES:
    out = figures_dir() / "05_gaussian_toy.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
plt.show()
