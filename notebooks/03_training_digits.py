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
# # 03 · Training RBMs on handwritten digits
#
# A Bernoulli-Bernoulli RBM on scikit-learn's 8x8 digits (binarised at half
# intensity; 1438 training and 359 test images, `jrbm.datasets.digits()`),
# trained with `jrbm.fit`: CD-1 and `optax` SGD with momentum and a small
# weight decay. We watch
# the reconstruction error and the log-likelihood estimated by annealed
# importance sampling (AIS) during training, look at the learned filters and
# at samples from long Gibbs chains, and use the hidden probabilities
# `p(h = 1 | v)` as features for a logistic regression. A Gaussian-Bernoulli
# RBM on the standardised digits (`digits("standard")`) follows.

# %%
import os

SIZE = os.environ.get("JRBM_NOTEBOOK_SIZE", "full")
if SIZE not in ("small", "full"):
    raise ValueError(f"JRBM_NOTEBOOK_SIZE: expected 'small' or 'full', got {SIZE!r}")
SAVE_FIGURES = os.environ.get("JRBM_NOTEBOOK_SAVE_FIGURES") == "1"


def scaled(full, small):
    """A loop/sample count: `full` for the full run, `small` for CI."""
    return full if SIZE == "full" else small


EPOCHS_BB = scaled(60, 4)  # passes over the training set, BB-RBM
EPOCHS_GB = scaled(50, 3)  # GB-RBM
EVAL_EVERY = scaled(5, 2)  # epochs between AIS estimates during training
AIS_BETAS, AIS_RUNS = scaled(1000, 100), scaled(100, 16)  # the monitor's reduced schedule
FINAL_BETAS, FINAL_RUNS = scaled(10000, AIS_BETAS), scaled(200, AIS_RUNS)  # the final test-set estimate
CHAIN_STEPS = scaled(1000, 20)  # Gibbs sweeps of the sample chains
N_CLASSIFIER = scaled(None, 400)  # training images for the logistic regressions (None: all)
print(f"size={SIZE}: {EPOCHS_BB} + {EPOCHS_GB} epochs, AIS {AIS_BETAS} betas x {AIS_RUNS} runs during training")

# %%
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

# %matplotlib inline
import numpy as np
import optax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import jrbm


def figures_dir():
    """notebooks/figures/, whether this runs as a script, in Jupyter, or from the repository root."""
    try:
        here = Path(__file__).resolve().parent
    except NameError:  # in a notebook: the kernel's working directory
        here = Path.cwd()
    if (here / "notebooks").is_dir():
        here = here / "notebooks"
    return here / "figures"


def mosaic(images, rows, cols, shape=(8, 8), pad=1):
    """Tiles rows of flattened images into one array (row-major), `pad` pixels apart."""
    h, w = shape
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), np.nan)
    for n, img in enumerate(np.asarray(images)[: rows * cols]):
        r, c = divmod(n, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = img.reshape(shape)
    return out


# %% [markdown]
# ## Data

# %%
split = jrbm.datasets.digits("binary")
X, X_test = split.train, split.test
print(f"train {X.shape}, test {X_test.shape}, {X.mean():.3f} of the pixels on")
jrbm.plots.image_grid(X[:36], (8, 8), title="training images (binarised)")

# %% [markdown]
# ## A BB-RBM with 200 hidden units, CD-1
#
# `init_bernoulli(..., data=X)` starts with small weights (std 0.01) and the
# visible biases of the data's marginals. The optimizer is SGD with learning
# rate 0.05 and momentum 0.9, after a weight decay of `1e-4` on `W` only
# (`optax.add_decayed_weights` with a mask; Hinton's practical guide,
# sections 9 and 10). `jrbm.fit` runs one compiled
# `lax.scan` per epoch and, every `EVAL_EVERY` epochs, estimates the mean
# log-likelihood of the training and test sets with AIS (forward AIS from the
# data's base-rate model, `AIS_BETAS` inverse temperatures, `AIS_RUNS` runs).
# The same `log Z` estimate serves both sets, and `log_z_std` is its
# standard error from the spread of the runs (it does not measure the bias of
# a short schedule).

# %%
N_HIDDEN = 200
only_W = lambda p: type(p)(*[name == "W" for name in p._fields])
optimizer = optax.chain(optax.add_decayed_weights(1e-4, mask=only_W), optax.sgd(0.05, momentum=0.9))
params0 = jrbm.init_bernoulli(jax.random.key(0), X.shape[1], N_HIDDEN, data=X)
params, history = jrbm.fit(
    jax.random.key(1),
    params0,
    X,
    optimizer=optimizer,
    estimator=jrbm.CD(1),
    epochs=EPOCHS_BB,
    batch_size=32,
    validation=X_test,
    log_likelihood="ais",
    eval_every=EVAL_EVERY,
    ais_kwargs=dict(betas=AIS_BETAS, n_runs=AIS_RUNS),
    progress=False,
)
hist = {k: np.asarray(v, float) for k, v in history.items()}
evals = np.isfinite(hist["log_likelihood"])
for e, ll, vll, s in zip(hist["epoch"][evals], hist["log_likelihood"][evals], hist["val_log_likelihood"][evals], hist["log_z_std"][evals]):
    print(f"epoch {int(e):3d}: log-likelihood train {ll:8.3f}, test {vll:8.3f} (log Z s.e. {s:.3f})")

# %%
fig, axs = plt.subplots(1, 3, figsize=(13, 3.6))
axs[0].plot(hist["epoch"], hist["recon_error"])
axs[0].set_title("reconstruction error (per pixel)")
for key, label in (("log_likelihood", "train"), ("val_log_likelihood", "test")):
    axs[1].errorbar(hist["epoch"][evals], hist[key][evals], yerr=3 * hist["log_z_std"][evals], marker="o", ms=3, capsize=2, label=label)
axs[1].set_title("AIS log-likelihood per image (±3 s.e. of log Z)")
axs[1].legend()
axs[2].plot(hist["epoch"], hist["free_energy_gap"])
axs[2].axhline(0, color="k", lw=0.5)
axs[2].set_title("free-energy gap (test - train)")
for ax in axs:
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The final test log-likelihood, bracketed
#
# Forward AIS underestimates `log Z` on average (it is a stochastic lower
# bound), so the log-likelihood it gives errs high. Reverse AIS started from
# (approximate) samples of the model errs the other way (Burda, Grosse &
# Salakhutdinov 2015). With a longer schedule than the monitor's, against the
# reference the RBM starts from: the base-rate model, each pixel an independent
# Bernoulli with its training frequency (clipped to `[1e-3, 1 - 1e-3]` as in
# `init_bernoulli` and AIS's base model), whose log-likelihood is exact.

# %%
key_fwd, key_chain, key_rev = jax.random.split(jax.random.key(2), 3)
ll_fwd, res_fwd = jrbm.ais.log_likelihood(key_fwd, params, X_test, data=X, betas=FINAL_BETAS, n_runs=FINAL_RUNS)
# approximate model samples for reverse AIS: long Gibbs chains started at training images
starts = X[jax.random.choice(key_chain, len(X), (FINAL_RUNS,), replace=False)]
model_samples = jrbm.gibbs_chain(key_chain, params, starts, CHAIN_STEPS)
res_rev = jrbm.ais.reverse_log_partition(key_rev, params, model_samples, data=X, betas=FINAL_BETAS)
mean_neg_f = float(jnp.mean(-jrbm.free_energy(params, X_test)))
print(f"log Z: forward AIS {float(res_fwd.log_z):.3f} ± {float(res_fwd.log_z_std):.3f}, reverse AIS {float(res_rev.log_z):.3f} ± {float(res_rev.log_z_std):.3f}")
print(f"test log-likelihood per image: {mean_neg_f - float(res_rev.log_z):.3f} by reverse AIS (low in expectation), "
      f"{float(ll_fwd):.3f} by forward AIS (high in expectation)")
bb_test_ll = float(ll_fwd)
p_pixel = np.clip(np.asarray(X, np.float64).mean(0), 1e-3, 1 - 1e-3)
T = np.asarray(X_test, np.float64)
base_rate_ll = float(np.mean(T @ np.log(p_pixel) + (1 - T) @ np.log1p(-p_pixel)))
print(f"base-rate model (independent pixels): test log-likelihood per image {base_rate_ll:.3f} (exact)")
# The headline: the trained RBM beats the base-rate model. Checked with the pessimistic end of
# the bracket (reverse AIS) less 4 of its standard errors.
ll_low = mean_neg_f - float(res_rev.log_z) - 4 * float(res_rev.log_z_std)
assert ll_low > base_rate_ll, f"BB-RBM test log-likelihood {ll_low:.3f} (reverse AIS - 4 s.e.) is not above the base rate {base_rate_ll:.3f}"

# %% [markdown]
# ## Filters and samples
#
# Each hidden unit's weights to the 64 pixels, as an image (`jrbm.plots.filters`);
# then 10 Gibbs chains started at test images, shown every `CHAIN_STEPS / 10`
# sweeps (`jrbm.gibbs_chain` with `trajectory=True`), one chain per row.

# %%
jrbm.plots.filters(params, (8, 8), max_filters=100)

# %%
n_chains, n_snap = 10, 10
traj = jrbm.gibbs_chain(jax.random.key(3), params, X_test[:: len(X_test) // n_chains][:n_chains], CHAIN_STEPS, trajectory=True)
every = CHAIN_STEPS // n_snap
snapshots = np.asarray(traj[every - 1 :: every][:n_snap])  # (n_snap, n_chains, 64)
samples = np.swapaxes(snapshots, 0, 1).reshape(-1, 64)  # row = chain, column = time
jrbm.plots.image_grid(samples, (8, 8), title=f"10 chains, every {every} sweeps (left to right)")

# %% [markdown]
# ## Hidden units as features
#
# A logistic regression (standardised inputs, `C = 1`) on the raw binary
# pixels, and the same on the 200 hidden probabilities `p(h = 1 | v)` of the
# trained RBM, which never saw a label. Test accuracy and macro-averaged F1
# (the full run trains the classifiers on all 1438 training images).
#
# Checked below: the hidden features classify far above chance (both sizes)
# and, at full size, no worse than the raw pixels within the sampling error of
# a 359-image test set. At `small` (4 epochs, 400 training images for the
# classifier) only the first holds.

# %%
def classify(train_x, test_x):
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(train_x[:N_CLASSIFIER], split.train_labels[:N_CLASSIFIER])
    pred = clf.predict(test_x)
    return accuracy_score(split.test_labels, pred), f1_score(split.test_labels, pred, average="macro")


scores = {
    "raw pixels (64)": classify(X, X_test),
    f"BB-RBM p(h|v) ({N_HIDDEN})": classify(np.asarray(jrbm.p_h_given_v(params, X)), np.asarray(jrbm.p_h_given_v(params, X_test))),
}
for name, (acc, f1) in scores.items():
    print(f"{name:<28s} accuracy {acc:.4f}   macro F1 {f1:.4f}")


def accuracy_se(acc):
    """Binomial standard error of an accuracy on the test set."""
    return np.sqrt(acc * (1 - acc) / len(X_test))


# Chance is 1/10 (10 balanced classes); "far above" is 4 of its standard errors above it.
chance = 1 / 10
acc_raw, acc_rbm = scores["raw pixels (64)"][0], scores[f"BB-RBM p(h|v) ({N_HIDDEN})"][0]
assert acc_rbm > chance + 4 * accuracy_se(chance), f"BB-RBM features: accuracy {acc_rbm:.4f}, not above chance + 4 s.e. = {chance + 4 * accuracy_se(chance):.4f}"
if SIZE == "full":
    # the two accuracies as independent (an upper bound on the standard error of their difference)
    se_diff = np.hypot(accuracy_se(acc_raw), accuracy_se(acc_rbm))
    assert acc_rbm > acc_raw - 2 * se_diff, f"BB-RBM features: accuracy {acc_rbm:.4f}, below raw pixels {acc_raw:.4f} - 2 s.e. {2 * se_diff:.4f}"

# %% [markdown]
# ## A Gaussian-Bernoulli RBM on the standardised digits
#
# Each pixel standardised with the training set's mean and standard deviation,
# `sigma = 1` fixed (the tutorial's "`a` as a hyper-parameter"; `fit` freezes
# `log_sigma` unless `learn_sigma=True`), CD-1 with a smaller learning rate,
# as Gaussian visible units need (Hinton's practical guide, section 13.2).
# The reference is the model it starts from (up to its tiny weights): each
# pixel an independent standard Normal, `log p(v) = -sum_i v_i^2 / 2 - 32 log 2π`.
# The log-likelihood is bracketed by forward and reverse AIS as above.
#
# Checked below: the reconstruction error falls below that of the starting
# model (both sizes), and, at full size, the pessimistic end of the bracket
# less 4 standard errors is above the independent Normals. At `small` the
# 3 epochs and 100-temperature AIS do not resolve the log-likelihood.

# %%
split_std = jrbm.datasets.digits("standard")
Xs, Xs_test = split_std.train, split_std.test
assert (split_std.train_labels == split.train_labels).all()  # the same stratified split as the binary digits
gparams0 = jrbm.init_gaussian(jax.random.key(4), Xs.shape[1], N_HIDDEN, data=Xs, sigma=1.0)
gparams, ghistory = jrbm.fit(
    jax.random.key(5),
    gparams0,
    Xs,
    optimizer=optax.sgd(0.005, momentum=0.9),
    estimator=jrbm.CD(1),
    epochs=EPOCHS_GB,
    batch_size=32,
    validation=Xs_test,
    log_likelihood="ais",
    eval_every=EVAL_EVERY,
    ais_kwargs=dict(betas=AIS_BETAS, n_runs=AIS_RUNS),
    progress=False,
)
ghist = {k: np.asarray(v, float) for k, v in ghistory.items()}
key_gfwd, key_gchain, key_grev = jax.random.split(jax.random.key(6), 3)
gll, gres = jrbm.ais.log_likelihood(key_gfwd, gparams, Xs_test, data=Xs, betas=FINAL_BETAS, n_runs=FINAL_RUNS)
gstarts = Xs[jax.random.choice(key_gchain, len(Xs), (FINAL_RUNS,), replace=False)]
gres_rev = jrbm.ais.reverse_log_partition(key_grev, gparams, jrbm.gibbs_chain(key_gchain, gparams, gstarts, CHAIN_STEPS), data=Xs, betas=FINAL_BETAS)
gll_rev = float(jnp.mean(-jrbm.free_energy(gparams, Xs_test))) - float(gres_rev.log_z)
unit_normal = float(np.mean(-0.5 * np.sum(Xs_test.astype(np.float64) ** 2, axis=1)) - 32 * np.log(2 * np.pi))
print(
    f"GB-RBM test log-likelihood: {gll_rev:.2f} ± {float(gres_rev.log_z_std):.2f} by reverse AIS (low in expectation), "
    f"{float(gll):.2f} ± {float(gres.log_z_std):.2f} by forward AIS (high in expectation); independent unit Normals: {unit_normal:.2f}"
)
recon_start = float(jrbm.metrics.reconstruction_error(gparams0, Xs))
print(
    f"reconstruction error per pixel: {recon_start:.3f} for the starting model, "
    f"{ghist['recon_error'][0]:.3f} during epoch 1, {ghist['recon_error'][-1]:.3f} during epoch {EPOCHS_GB}"
)
assert ghist["recon_error"][-1] < recon_start, f"GB-RBM reconstruction error {ghist['recon_error'][-1]:.3f} is not below the starting model's {recon_start:.3f}"
if SIZE == "full":
    gll_low = gll_rev - 4 * float(gres_rev.log_z_std)
    assert gll_low > unit_normal, f"GB-RBM test log-likelihood {gll_low:.2f} (reverse AIS - 4 s.e.) is not above the unit Normals' {unit_normal:.2f}"
scores["pixels, standardised (64)"] = classify(Xs, Xs_test)
scores[f"GB-RBM p(h|v) ({N_HIDDEN})"] = classify(np.asarray(jrbm.p_h_given_v(gparams, Xs)), np.asarray(jrbm.p_h_given_v(gparams, Xs_test)))
for name, (acc, f1) in scores.items():
    print(f"{name:<28s} accuracy {acc:.4f}   macro F1 {f1:.4f}")

# %%
jrbm.plots.filters(gparams, (8, 8), max_filters=100)

# %% [markdown]
# ## Summary figure
#
# (Saved to `notebooks/figures/03_digits.png` when `JRBM_NOTEBOOK_SAVE_FIGURES=1`.)

# %%
fig, axs = plt.subplots(2, 2, figsize=(11, 9.5))
ax = axs[0, 0]
for key, label in (("log_likelihood", "train"), ("val_log_likelihood", "test")):
    ax.errorbar(hist["epoch"][evals], hist[key][evals], yerr=3 * hist["log_z_std"][evals], marker="o", ms=3, capsize=2, label=label)
ax.set_xlabel("epoch")
ax.set_ylabel("log-likelihood per image (AIS, ±3 s.e.)")
ax.set_title(f"BB-RBM, {N_HIDDEN} hidden units, CD-1")
ax.legend()
ax.grid(alpha=0.3)
ax = axs[0, 1]
names = list(scores)
ax.barh(names, [scores[n][0] for n in names], color=["C7", "C0", "C7", "C1"])
for i, n in enumerate(names):
    ax.text(scores[n][0] - 0.005, i, f"{scores[n][0]:.3f}", va="center", ha="right", color="w")
ax.set_xlim(0.8, 1.0)
ax.invert_yaxis()
ax.set_title("test accuracy of a logistic regression on ...")
W = np.asarray(params.W).T[:64]
W = (W - W.min(1, keepdims=True)) / np.ptp(W, 1, keepdims=True)
axs[1, 0].imshow(mosaic(W, 8, 8), cmap="gray")
axs[1, 0].set_title("BB-RBM filters (first 64 hidden units)")
axs[1, 1].imshow(mosaic(samples, n_chains, n_snap), cmap="gray")
axs[1, 1].set_title(f"BB-RBM Gibbs chains (rows), every {every} sweeps")
for ax in axs[1]:
    ax.set_axis_off()
fig.tight_layout()
if SAVE_FIGURES:
    out = figures_dir() / "03_digits.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
plt.show()
