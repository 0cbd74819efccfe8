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
# # 01 · The Bernoulli-Bernoulli RBM, derived and checked
#
# Section 2 of Cheng's *A Beginner's Tutorial of Restricted Boltzmann Machines*
# derives the BB-RBM's
# marginal, conditionals and log-likelihood gradient. Each result is computed
# here two ways, side by side, for a model small enough to enumerate every
# state: once by brute force from the definition (eqs. 2.1-2.3), once by
# `jrbm`. Every cell prints the largest absolute difference.
#
# Two conventions of `jrbm` to keep in mind:
#
# * the tutorial's `E` is the *negative* energy; `jrbm.energy` is the physical
#   energy, so `jrbm.energy(v, h) = -E_tutorial(v, h)`;
# * `jrbm` gradients are gradients of the *loss* `-mean log p(v)`, so they are
#   the negative of the tutorial's `dL/dθ`.
#
# The last part compares CD-k with the exact gradient as k grows.

# %%
import os

SIZE = os.environ.get("JRBM_NOTEBOOK_SIZE", "full")
if SIZE not in ("small", "full"):
    raise ValueError(f"JRBM_NOTEBOOK_SIZE: expected 'small' or 'full', got {SIZE!r}")


def scaled(full, small):
    """A loop/sample count: `full` for the full run, `small` for CI."""
    return full if SIZE == "full" else small


N_KEYS = scaled(4000, 400)  # independent CD-k estimates per k
print(f"size={SIZE}: {N_KEYS} keys per CD-k estimate")

# %%
import itertools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

# %matplotlib inline
import numpy as np

jax.config.update("jax_enable_x64", True)

import jrbm  # noqa: E402


def report(label, reference, value, tol=1e-10):
    """Prints and checks the largest absolute difference of two pytrees (or arrays)."""
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), reference, value))
    diff = max(diffs)
    print(f"{label:<62s} max |diff| = {diff:.1e}")
    if tol is not None:
        assert diff < tol, f"{label}: {diff} >= {tol}"
    return diff


# %% [markdown]
# ## A small model and all of its states
#
# `I = 5` visible and `J = 4` hidden units with weights large enough that the
# distribution is far from uniform, in float64. `V` and `H` hold all `2^I` and
# `2^J` binary states, listed by `itertools` (independently of `jrbm.exact`).

# %%
I, J = 5, 4
kW, kb, kc = jax.random.split(jax.random.key(0), 3)
params = jrbm.BernoulliRBM(
    W=1.0 * jax.random.normal(kW, (I, J), jnp.float64),
    b=0.5 * jax.random.normal(kb, (I,), jnp.float64),
    c=0.5 * jax.random.normal(kc, (J,), jnp.float64),
)
W, b, c = (np.asarray(x) for x in params)
V = np.array(list(itertools.product([0.0, 1.0], repeat=I)))  # (32, 5)
H = np.array(list(itertools.product([0.0, 1.0], repeat=J)))  # (16, 4)


def E_tutorial(theta, v, h):
    """The tutorial's eq. 2.3: E(v, h) = sum_ij v_i w_ij h_j + sum_i b_i v_i + sum_j c_j h_j (the NEGATIVE energy)."""
    return v @ theta.W @ h + theta.b @ v + theta.c @ h


# E_tutorial for every (v, h) pair, and the joint p(v, h) = exp(E) / Z of eqs. 2.1-2.2
E_table = np.asarray(jax.vmap(jax.vmap(E_tutorial, (None, None, 0)), (None, 0, None))(params, V, H))
Z = np.exp(E_table).sum()
P_joint = np.exp(E_table) / Z
print(f"{len(V)} x {len(H)} joint states, log Z = {np.log(Z):.6f} (brute force)")

report("eq. 2.3: jrbm.energy(v, h) = -E_tutorial(v, h)", -E_table, jrbm.energy(params, V[:, None, :], H[None, :, :]))
report("eq. 2.2: log Z, brute force vs jrbm.exact.log_partition", np.log(Z), jrbm.exact.log_partition(params));

# %% [markdown]
# ## Eq. 2.4: the marginal `p(v)`
#
# Summing the joint over `h` (eq. 2.4) against `jrbm`'s closed form
# `p(v) = exp(-free_energy(v)) / Z`, where eq. 2.9 gives
# `free_energy(v) = -b·v - sum_j log(1 + exp(c_j + sum_i v_i w_ij))`.

# %%
p_v_brute = P_joint.sum(axis=1)
p_v_jrbm = np.exp(-np.asarray(jrbm.free_energy(params, V)) - float(jrbm.exact.log_partition(params)))
report("eq. 2.4: sum_h p(v, h) vs exp(-free_energy(v)) / Z", p_v_brute, p_v_jrbm)
report("eq. 2.9: -log sum_h exp(E_tutorial) vs jrbm.free_energy", -np.log(np.exp(E_table).sum(axis=1)), jrbm.free_energy(params, V))
report("eq. 2.18: -log sum_v exp(E_tutorial) vs jrbm.hidden_free_energy", -np.log(np.exp(E_table).sum(axis=0)), jrbm.hidden_free_energy(params, H))
print(f"sum_v p(v) = {p_v_brute.sum():.15f}")

# %% [markdown]
# ## Eq. 2.10: `p(h | v)` factorises
#
# Brute force: `p(h | v) = p(v, h) / p(v)` for every `(v, h)` pair. Eq. 2.10:
# the product over hidden units of independent Bernoullis with
# `P(h_j = 1 | v) = σ(c_j + sum_i v_i w_ij)` (`jrbm.p_h_given_v`).
#
# The tutorial prints the inner sum of eq. 2.10 as `sum_{i=1}^{J}`; it runs over the
# `I` visible units. With `I ≠ J` the printed range gives a different (wrong)
# conditional, as the second line shows.

# %%
p_h_given_v_brute = P_joint / P_joint.sum(axis=1, keepdims=True)  # (2^I, 2^J)


def factorised(p, states):
    """prod_j p_j^h_j (1 - p_j)^(1 - h_j) for every state h; p has shape (n, J)."""
    return np.prod(np.where(states[None, :, :] == 1, p[:, None, :], 1 - p[:, None, :]), axis=-1)


p1 = np.asarray(jrbm.p_h_given_v(params, V))
report("eq. 2.10: p(v, h) / p(v) vs prod_j Bernoulli(p_h_given_v)", p_h_given_v_brute, factorised(p1, H))
p1_printed = 1 / (1 + np.exp(-(c + V[:, :J] @ W[:J])))  # the printed range: sum over i = 1..J only
printed_err = report("eq. 2.10 as printed (inner sum over i = 1..J, J < I)", p_h_given_v_brute, factorised(p1_printed, H), tol=None)
assert printed_err > 1e-3, f"eq. 2.10 as printed differs from brute force by only {printed_err:.1e}"

# %% [markdown]
# ## Eqs. 2.11-2.13: conditional expectations of `∂E/∂θ`
#
# The data term of the gradient is `sum_h p(h | v) ∂E(v, h)/∂θ`. Brute force:
# `jax.grad` of the tutorial's `E` (eq. 2.3) at every `h`, weighted by the
# brute-force `p(h | v)`. The tutorial's closed forms: `v_i σ(x_j)` (2.11), `v_i`
# (2.12) and `σ(x_j)` (2.13) with `x_j = c_j + sum_i v_i w_ij`. And `jrbm`:
# the conditional expectation of `∂E_tutorial/∂θ` is `-∂ free_energy / ∂θ`, which
# `jax.grad` of `jrbm.free_energy` gives.

# %%
dE = jax.vmap(jax.vmap(jax.grad(E_tutorial), (None, None, 0)), (None, 0, None))(params, jnp.asarray(V), jnp.asarray(H))
# dE.W has shape (2^I, 2^J, I, J): the derivative for every (v, h) pair
cond_brute = jax.tree.map(lambda d: np.einsum("vh,vh...->v...", p_h_given_v_brute, np.asarray(d)), dE)
sig = np.asarray(jrbm.p_h_given_v(params, V))
cond_tutorial = jrbm.BernoulliRBM(W=V[:, :, None] * sig[:, None, :], b=V, c=sig)  # eqs. 2.11, 2.12, 2.13
cond_jrbm = jax.vmap(jax.grad(lambda p, v: -jrbm.free_energy(p, v)), (None, 0))(params, jnp.asarray(V))
for name in ("W", "b", "c"):
    eq = {"W": "2.11", "b": "2.12", "c": "2.13"}[name]
    report(f"eq. {eq} ({name}): enumeration vs the tutorial's closed form", getattr(cond_brute, name), getattr(cond_tutorial, name))
    report(f"eq. {eq} ({name}): enumeration vs -grad of jrbm.free_energy", getattr(cond_brute, name), getattr(cond_jrbm, name))

# %% [markdown]
# ## Eqs. 2.14-2.16: the exact gradient
#
# For a data set `v_1..v_N` the tutorial's gradient of the mean log-likelihood is
# the mean data term minus the model term `sum_u p(u) (...)` (eqs. 2.14-2.16).
# Here it is computed from the brute-force tables above, and compared with
#
# * `jrbm.exact.grad`: the same formula, model term summed by enumeration (no autodiff);
# * `jax.grad` of `-mean jrbm.exact.log_likelihood`: autodiff of the exact loss.
#
# Both `jrbm` numbers are *loss* gradients, so they equal **minus** the tutorial's `dL/dθ`.

# %%
data = V[jax.random.choice(jax.random.key(1), len(V), (6,), replace=False)]
rows = [int(np.flatnonzero((V == v).all(1))[0]) for v in data]
tutorial_grad = jax.tree.map(lambda d: d[rows].mean(0) - np.einsum("v,v...->...", p_v_brute, d), cond_brute)  # dL/dθ
loss = lambda p: -jnp.mean(jrbm.exact.log_likelihood(p, data))
report("eqs. 2.14-2.16: -(tutorial's dL/dθ) vs jrbm.exact.grad", jax.tree.map(jnp.negative, tutorial_grad), jrbm.exact.grad(params, data))
report("eqs. 2.14-2.16: -(tutorial's dL/dθ) vs jax.grad(-mean log p)", jax.tree.map(jnp.negative, tutorial_grad), jax.grad(loss)(params))
report("jrbm.exact.grad vs jax.grad(-mean log p)", jrbm.exact.grad(params, data), jax.grad(loss)(params));

# %% [markdown]
# The general formula, eq. 2.7, is printed with the factor `∂E/∂θ` twice in the
# model term. For a BB-RBM the typo is invisible: every `∂E/∂θ` (`u_i g_j`,
# `u_i`, `g_j`) is 0 or 1, so its square equals itself, which the next line
# shows (an illustration: with 0/1 factors it cannot differ). Applied to the Gaussian RBM, whose `∂E/∂b_i = a^2 (u_i - b_i)` is
# real, the doubled factor would be wrong (the tutorial's own general form
# for it, in section 3.2, has the factor once).

# %%
sq_model = jax.tree.map(lambda d: np.einsum("vh,vh...->...", P_joint, np.asarray(d) ** 2), dE)
lin_model = jax.tree.map(lambda d: np.einsum("vh,vh...->...", P_joint, np.asarray(d)), dE)
report("eq. 2.7 as printed (∂E/∂θ squared) vs corrected, BB-RBM", sq_model, lin_model);

# %% [markdown]
# ## Eq. 2.19: `p(v | h)` factorises
#
# `p(v | h) = p(v, h) / p(h)` by brute force against the product of
# Bernoullis with `P(v_i = 1 | h) = σ(b_i + sum_j w_ij h_j)` (`jrbm.p_v_given_h`).

# %%
p_v_given_h_brute = (P_joint / P_joint.sum(axis=0, keepdims=True)).T  # (2^J, 2^I)
q = np.asarray(jrbm.p_v_given_h(params, H))
report("eq. 2.19: p(v, h) / p(h) vs prod_i Bernoulli(p_v_given_h)", p_v_given_h_brute, factorised(q, V));

# %% [markdown]
# ## CD-k against the exact gradient
#
# Contrastive divergence replaces the model term of eqs. 2.14-2.16 by the
# statistics at the end of a `k`-step Gibbs chain started at each data point
# (`jrbm.cd_grad`). It is biased towards the data for finite `k`. Here the
# model has `I = 9`, `J = 6` and weights of standard deviation 2 (so that the
# chain mixes slowly), the data are the 16 rows of 3x3 bars-and-stripes (14 distinct
# patterns, all-off and all-on twice),
# and each `k` gets `N_KEYS` independent estimates (`jax.vmap` over keys, all
# `k` in one compiled function). For every `k`:
#
# * **bias**: root mean square over the 69 parameters of `mean(CD-k) - exact`;
# * **std**: root mean square of the per-parameter standard deviation of one estimate;
# * the **noise floor** `std / sqrt(N_KEYS)`: the bias that `N_KEYS` samples cannot resolve.

# %%
data_bas = jnp.asarray(jrbm.datasets.bars_and_stripes(3), jnp.float64)
I2, J2 = data_bas.shape[1], 6
k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
params_cd = jrbm.BernoulliRBM(
    W=2.0 * jax.random.normal(k1, (I2, J2), jnp.float64),
    b=0.5 * jax.random.normal(k2, (I2,), jnp.float64),
    c=0.5 * jax.random.normal(k3, (J2,), jnp.float64),
)
KS = (1, 2, 5, 10, 50)
flat = lambda g: jnp.concatenate([x.ravel() for x in g])
exact_g = flat(jrbm.exact.grad(params_cd, data_bas))


@jax.jit
def cd_estimates(keys):
    return [jax.vmap(lambda key: flat(jrbm.cd_grad(key, params_cd, data_bas, k=k)))(keys) for k in KS]


estimates = cd_estimates(jax.random.split(jax.random.key(3), N_KEYS))
rms = lambda x: float(jnp.sqrt(jnp.mean(x**2)))
bias = np.array([rms(g.mean(0) - exact_g) for g in estimates])
std = np.array([rms(g.std(0, ddof=1)) for g in estimates])
cos = np.array([float(g.mean(0) @ exact_g / jnp.linalg.norm(g.mean(0)) / jnp.linalg.norm(exact_g)) for g in estimates])
floor = std / np.sqrt(N_KEYS)
print(f"exact gradient: rms {rms(exact_g):.4f} over {exact_g.size} parameters")
print(f"{'k':>3} {'bias':>9} {'std':>9} {'floor':>9} {'bias/floor':>10} {'cos(mean, exact)':>17}")
for k, bi, s, f, co in zip(KS, bias, std, floor, cos):
    print(f"{k:>3} {bi:9.5f} {s:9.5f} {f:9.5f} {bi / f:10.1f} {co:17.5f}")
print(f"from k=1 to k=50 the bias falls by a factor {bias[0] / bias[-1]:.0f}; the std changes by a factor {std[-1] / std[0]:.2f}")

# The headline, checked. A measured bias is the rms over the parameters of (mean - exact),
# where each mean carries sampling noise whose rms is the floor; so a measured bias is
# resolved only well above the floor, and compares with another only to within a few floors.
assert bias[0] > 3 * floor[0], f"CD-1 bias {bias[0]:.5f} is not resolved: not above 3 x floor = {3 * floor[0]:.5f}"
for i in range(len(KS) - 1):
    assert bias[i + 1] < bias[i] + 3 * floor[i + 1], (
        f"CD-{KS[i + 1]} bias {bias[i + 1]:.5f} is not below CD-{KS[i]} bias {bias[i]:.5f} + 3 x floor {floor[i + 1]:.5f}"
    )
assert bias[-1] < 3 * floor[-1], f"CD-{KS[-1]} bias {bias[-1]:.5f} has not reached the noise floor: not below 3 x {floor[-1]:.5f}"
# The noise of the mean moves the cosine by about (floor / rms of the exact gradient)^2 < 1e-4:
# the cosine is the model's, and "close to the exact direction" is checked as within 26 degrees.
assert cos[0] > 0.9, f"cos(mean CD-1, exact) = {cos[0]:.5f}, not above 0.9"

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(KS, bias, "o-", label="bias: rms(mean CD-k - exact)")
ax.loglog(KS, std, "s-", label="std of one estimate (rms)")
ax.loglog(KS, floor, "k:", label=f"noise floor std/sqrt({N_KEYS})")
ax.set_xlabel("k (Gibbs sweeps)")
ax.set_ylabel("per-parameter rms")
ax.set_title("CD-k vs the exact gradient (3x3 bars and stripes, J=6)")
ax.legend()
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# The bias of CD-k shrinks with `k` until it reaches the noise floor of the
# experiment, while the standard deviation of a single estimate does not
# shrink: longer chains remove bias, not noise (the table above has this run's
# numbers). The direction of the mean CD-k estimate is close to the exact one
# even at `k = 1` (the cosine column), which is why CD-1 learns at all.
