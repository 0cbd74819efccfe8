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
# # 02 · The Gaussian-Bernoulli RBM, derived and checked
#
# Section 3 of the tutorial (Cheng) does for the GB-RBM what section 2 did
# for the BB-RBM. The visible units are now real, so the sums over `v` become
# integrals, and the brute-force side of each comparison uses numerical
# quadrature (`numpy.trapezoid` on a 2-D grid) instead of enumeration.
#
# `jrbm` generalises the tutorial's single `a` (eq. 3.3) to one
# `a_i = exp(-log_sigma_i)` per visible unit; the model below has
# two different `a_i`, and every formula of the tutorial is used with `a -> a_i`.
# As in notebook 01, `jrbm.energy = -E_tutorial` and `jrbm` gradients are loss
# gradients (minus the tutorial's `dL/dθ`).
#
# Two places where the printed tutorial is wrong are shown with numbers, the
# exponent of eq. 3.18 and the product index of eq. 3.10, and one that is not
# a typo but is easy to miss: the `b_i` terms of eq. 3.12 cancelling in eq.
# 3.15. A third typo is corrected in words: the `W` result of section 3.4
# (3.11 by sequence) is unnumbered in the tutorial and its last printed lines
# are garbled (a sum `Σ_{k≠j}^{1}` where the product over `k ≠ j` of sums over
# `h_k`, each 1, belongs); the result they should end in is `a_i v_i σ(x_j)`.

# %%
import os

SIZE = os.environ.get("JRBM_NOTEBOOK_SIZE", "full")
if SIZE not in ("small", "full"):
    raise ValueError(f"JRBM_NOTEBOOK_SIZE: expected 'small' or 'full', got {SIZE!r}")


def scaled(full, small):
    """A loop/sample count: `full` for the full run, `small` for CI."""
    return full if SIZE == "full" else small


N_GRID = scaled(1001, 401)  # quadrature points per axis
N_DRAWS = scaled(200_000, 20_000)  # draws of v | h for the histogram
print(f"size={SIZE}: {N_GRID} x {N_GRID} quadrature grid, {N_DRAWS} draws")

# %%
import itertools
import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

# %matplotlib inline
import numpy as np

jax.config.update("jax_enable_x64", True)

import jrbm  # noqa: E402


def report(label, reference, value, tol=1e-9):
    """Prints and checks the largest absolute difference of two pytrees (or arrays)."""
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), reference, value))
    diff = max(diffs)
    print(f"{label:<64s} max |diff| = {diff:.1e}")
    if tol is not None:
        assert diff < tol, f"{label}: {diff} >= {tol}"
    return diff


# %% [markdown]
# ## A small model, its hidden states and a quadrature grid
#
# `I = 2` visible units (so that the integral over `v` is a 2-D quadrature),
# `J = 4` hidden units, `sigma = (0.7, 1.3)`.

# %%
I, J = 2, 4
kW, kb, kc = jax.random.split(jax.random.key(0), 3)
params = jrbm.GaussianRBM(
    W=0.8 * jax.random.normal(kW, (I, J), jnp.float64),
    b=0.5 * jax.random.normal(kb, (I,), jnp.float64),
    c=0.5 * jax.random.normal(kc, (J,), jnp.float64),
    log_sigma=jnp.log(jnp.array([0.7, 1.3])),
)
W, b, c = (np.asarray(x) for x in params[:3])
a = np.exp(-np.asarray(params.log_sigma))
H = np.array(list(itertools.product([0.0, 1.0], repeat=J)))  # (16, 4)
M = H @ W.T  # m = W h for every h, (16, 2)


def E_tutorial(theta, v, h):
    """The tutorial's eq. 3.3 with one a_i per unit: sum_ij a_i v_i w_ij h_j - sum_i a_i^2/2 (v_i - b_i)^2 + c.h."""
    a = jnp.exp(-theta.log_sigma)
    return jnp.sum(a * v * (theta.W @ h)) - jnp.sum(a**2 / 2 * (v - theta.b) ** 2) + theta.c @ h


E_all = jax.jit(jax.vmap(jax.vmap(E_tutorial, (None, None, 0)), (None, 0, None)))  # E[v, h] for points v, states h

# The grid covers every conditional mean b_i + m_i / a_i by 12 standard deviations 1 / a_i.
means = b + M / a
lo, hi = means.min(0) - 12 / a, means.max(0) + 12 / a
axes = [np.linspace(lo[i], hi[i], N_GRID) for i in range(I)]
U = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, I)  # grid points u
E_grid = np.asarray(E_all(params, U, H)).reshape(N_GRID, N_GRID, len(H))  # E_tutorial(u, h)


def log_trapezoid_2d(log_f):
    """log of the 2-D trapezoid integral of exp(log_f) over the grid, for each trailing index."""
    top = log_f.max(axis=(0, 1))
    inner = np.trapezoid(np.exp(log_f - top), axes[1], axis=1)
    return top + np.log(np.trapezoid(inner, axes[0], axis=0))


v_test = np.asarray(jax.random.normal(jax.random.key(1), (7, I), jnp.float64)) * 1.5  # a few points v
report("eq. 3.3: jrbm.energy(v, h) = -E_tutorial(v, h)", -np.asarray(E_all(params, v_test, H)), jrbm.energy(params, v_test[:, None], H[None]));

# %% [markdown]
# ## Eq. 3.18: the Gaussian integral over `v`
#
# For a fixed `h`, with `m_i = sum_j w_ij h_j`, the tutorial completes the square:
#
# `∫ exp(E(u, h)) du = exp(c·h) prod_i exp((2 a_i b_i + m_i) m_i / 2) sqrt(2π) / a_i`.
#
# The last line of eq. 3.18 is printed with the factor `m_i` **twice**,
# `exp((2 a b_i + m_i) m_i m_i / 2)`; the line before it is right. Against the
# 2-D quadrature of `exp(E_tutorial(u, h))`, for all 16 hidden states (in log space):

# %%
log_int_quad = log_trapezoid_2d(E_grid)  # (16,)
const = np.sum(np.log(np.sqrt(2 * np.pi) / a))
log_int_fixed = H @ c + np.sum((2 * a * b + M) * M / 2, axis=1) + const
log_int_printed = H @ c + np.sum((2 * a * b + M) * M * M / 2, axis=1) + const
report("eq. 3.18 corrected, (2ab+m) m / 2, vs quadrature", log_int_quad, log_int_fixed)
report("eq. 3.18 as jrbm has it: -hidden_free_energy(h) vs quadrature", log_int_quad, -np.asarray(jrbm.hidden_free_energy(params, H)))
printed_err = report("eq. 3.18 AS PRINTED, (2ab+m) m m / 2, vs quadrature", log_int_quad, log_int_printed, tol=None)
assert printed_err > 0.1, f"eq. 3.18 as printed differs from quadrature by only {printed_err:.3f} nats"
worst = int(np.argmax(np.abs(log_int_printed - log_int_quad)))
print(
    f"  worst h = {H[worst].astype(int)}: quadrature {log_int_quad[worst]:.6f}, corrected {log_int_fixed[worst]:.6f}, "
    f"printed {log_int_printed[worst]:.6f} (off by {log_int_printed[worst] - log_int_quad[worst]:+.3f} nats)"
)

log_Z_quad = np.logaddexp.reduce(log_int_quad)
report("eq. 3.2: log Z by quadrature vs jrbm.exact.log_partition", log_Z_quad, jrbm.exact.log_partition(params));

# %% [markdown]
# ## Eqs. 3.4 and 3.9: the free energy
#
# Summing `exp(E_tutorial)` over the 16 hidden states against `jrbm.free_energy`
# (eq. 3.9 in closed form), on the whole grid; and the marginal density
# `p(v) = exp(-free_energy(v)) / Z` integrates to one.

# %%
F_brute = -np.logaddexp.reduce(E_grid, axis=-1)  # (N_GRID, N_GRID)
F_jrbm = np.asarray(jrbm.free_energy(params, U)).reshape(N_GRID, N_GRID)
report("eq. 3.9: -log sum_h exp(E_tutorial) vs jrbm.free_energy", F_brute, F_jrbm)
total = np.exp(log_trapezoid_2d((-F_jrbm - float(jrbm.exact.log_partition(params)))[..., None]))[0]
print(f"∫ p(v) dv by quadrature = {total:.12f}")
assert abs(total - 1) < 1e-9, f"∫ p(v) dv = {total!r}, not 1 within 1e-9"

# %% [markdown]
# ## Eq. 3.10: `p(h | v)` factorises
#
# Brute force normalisation over the 16 hidden states against the product of
# Bernoullis with `P(h_j = 1 | v) = σ(c_j + sum_i a_i v_i w_ij)`
# (`jrbm.p_h_given_v`).
#
# The tutorial prints the product of eq. 3.10 as `prod_{i=1}^{J}` of a factor in
# `h_j`, `c_j`, `w_ij`. Read as printed, the factor does not depend on the
# product's index, so the product is one hidden unit's factor to the `J`-th
# power, `P(h_j | v)^J`, which is not a distribution: the second line sums it
# over `h_j = 0, 1` (it should give 1). The product runs over `j = 1..J`.

# %%
E_v = np.asarray(E_all(params, v_test, H))  # (7, 16)
p_h_brute = np.exp(E_v - np.logaddexp.reduce(E_v, axis=1, keepdims=True))
p1 = np.asarray(jrbm.p_h_given_v(params, v_test))  # (7, 4)
factor = np.where(H[None] == 1, p1[:, None, :], 1 - p1[:, None, :])  # (7, 16, 4): P(h_j | v)
report("eq. 3.10 (product over j = 1..J) vs brute force", p_h_brute, factor.prod(-1))
literal = p1[:, 0] ** J + (1 - p1[:, 0]) ** J  # sum over h_1 = 0, 1 of P(h_1 | v)^J
print(f"eq. 3.10 as printed (j = 1): sum over h_1 of P(h_1 | v)^J = {literal.min():.4f} .. {literal.max():.4f} at the 7 points (should be 1)")
# p^J + (1 - p)^J < 1 for 0 < p < 1 and J > 1; the printed form misses 1 by far more than the 1e-9 of the checks above.
assert np.max(np.abs(literal - 1)) > 1e-3, f"eq. 3.10 as printed sums to {literal} over h_1: within 1e-3 of 1"

# %% [markdown]
# ## Section 3.4 (3.11, unnumbered) and eqs. 3.12-3.13: conditional expectations of `∂E/∂θ`
#
# `jax.grad` of the tutorial's `E` (eq. 3.3) at every `h`, weighted by the
# brute-force `p(h | v)`, against the closed forms `a_i v_i σ(x_j)` (section 3.4's
# unnumbered result, 3.11 by sequence),
# `a_i^2 (v_i - b_i)` (3.12), `σ(x_j)` (3.13), and against `-∂ free_energy/∂θ`
# from `jrbm` (which also covers `log_sigma`, the tutorial's `a`, learned when
# `fit(..., learn_sigma=True)`).

# %%
dE = jax.vmap(jax.vmap(jax.grad(E_tutorial), (None, None, 0)), (None, 0, None))(params, jnp.asarray(v_test), jnp.asarray(H))
cond_brute = jax.tree.map(lambda d: np.einsum("vh,vh...->v...", p_h_brute, np.asarray(d)), dE)


def cond_tutorial(v):
    """The tutorial's closed forms (section 3.4's unnumbered 3.11, 3.12, 3.13) with a_i per unit, at points v of shape (n, I)."""
    s = np.asarray(jrbm.p_h_given_v(params, v))
    return dict(W=(a * v)[:, :, None] * s[:, None, :], b=a**2 * (v - b), c=s)


cond_jrbm = jax.vmap(jax.grad(lambda p, v: -jrbm.free_energy(p, v)), (None, 0))(params, jnp.asarray(v_test))
closed = cond_tutorial(v_test)
for name, eq in (("W", "3.11"), ("b", "3.12"), ("c", "3.13")):
    report(f"eq. {eq} ({name}): enumeration vs the tutorial's closed form", getattr(cond_brute, name), closed[name])
report("3.11 (unnumbered), eqs. 3.12-3.13 + log_sigma: enumeration vs -grad free_energy", cond_brute, cond_jrbm);

# %% [markdown]
# ## Eqs. 3.14-3.16: the exact gradient, and the `b_i` terms of 3.15
#
# The model term is an expectation under the density `p(u)`: an integral,
# although eqs. 3.14-3.16 print it as a sum over `u`. Here it is the 2-D
# quadrature of `p(u)` times the closed forms above (3.11 by sequence, 3.12, 3.13). The data are
# a few points `v_n`.
#
# Eq. 3.15 is printed as `a^2 v_i - E_model[a^2 u_i]`, while the difference of
# the two conditional expectations of eq. 3.12 is
# `a^2 (v_i - b_i) - E_model[a^2 (u_i - b_i)]`: the `a^2 b_i` terms cancel
# because the model expectation of a constant is the constant. The cell shows
# both forms agree although the `a^2 b_i` terms themselves are far from zero.

# %%
data = v_test
p_grid = np.exp(-F_jrbm - log_Z_quad)  # p(u) on the grid, normalised by quadrature


def model_mean(f):
    """∫ p(u) f(u) du by 2-D trapezoid; f has shape (N_GRID * N_GRID, ...)."""
    g = p_grid.reshape(N_GRID, N_GRID, *([1] * (f.ndim - 1))) * f.reshape(N_GRID, N_GRID, *f.shape[1:])
    return np.trapezoid(np.trapezoid(g, axes[1], axis=1), axes[0], axis=0)


cond_u = cond_tutorial(U)
tutorial_grad = {k: cond_tutorial(data)[k].mean(0) - model_mean(cond_u[k]) for k in ("W", "b", "c")}  # dL/dθ
exact = jrbm.exact.grad(params, data)
loss = lambda p: -jnp.mean(jrbm.exact.log_likelihood(p, data))
auto = jax.grad(loss)(params)
for name, eq in (("W", "3.14"), ("b", "3.15"), ("c", "3.16")):
    report(f"eq. {eq} ({name}): -(tutorial's dL/dθ by quadrature) vs jrbm.exact.grad", -tutorial_grad[name], getattr(exact, name))
report("jrbm.exact.grad vs jax.grad(-mean log p), all four leaves", exact, auto)

with_b = (a**2 * (data - b)).mean(0) - model_mean(a**2 * (U - b))  # difference of the two expectations of 3.12
printed_315 = (a**2 * data).mean(0) - model_mean(a**2 * U)  # eq. 3.15 as printed
report("eq. 3.15: with the a^2 b_i terms vs without (they cancel)", with_b, printed_315)
print(f"  the a^2 b_i terms themselves: {a**2 * b}")
# the cancellation is not trivial: the terms that cancel are far larger than the 1e-9 tolerance
assert np.max(np.abs(a**2 * b)) > 1e-3, f"the a^2 b_i terms {a**2 * b} are too small for their cancellation to show anything"

# %% [markdown]
# ## Eq. 3.19: `p(v | h)` is a product of Normals
#
# `p(v | h) = exp(E(v, h)) / ∫ exp(E(u, h)) du` with the integral by quadrature
# against eq. 3.19, `prod_i a_i / sqrt(2π) exp(-(a_i (v_i - b_i) - m_i)^2 / 2)`:
# a Normal with mean `b_i + m_i / a_i` (`jrbm.p_v_given_h`) and standard
# deviation `1 / a_i`.

# %%
k = 11  # one hidden state
h_fix, m = H[k], M[k]
dens_brute = np.exp(E_grid[..., k] - log_int_quad[k])  # (N_GRID, N_GRID)
z = a * (U - b) - m
dens_319 = np.prod(a / np.sqrt(2 * np.pi) * np.exp(-(z**2) / 2), axis=1).reshape(N_GRID, N_GRID)
report("eq. 3.19: exp(E) / quadrature integral vs product of Normals", dens_brute, dens_319)
report("eq. 3.19: mean b_i + m_i / a_i vs jrbm.p_v_given_h", b + m / a, jrbm.p_v_given_h(params, h_fix));

# %% [markdown]
# And by sampling: `N_DRAWS` draws of `jrbm.sample_v_given_h` for this `h`,
# against the Normal density. For each unit: the sample mean and standard
# deviation with their standard errors, and the Kolmogorov-Smirnov distance
# `D` between the sample and the Normal with its asymptotic p-value
# (Kolmogorov's distribution of `sqrt(n) D`). A wrong mean or variance would
# give `p` of essentially zero at this sample size; the cell fails below
# `p = 1e-6` for either of the two visible units, a level chance alone
# reaches about twice in a million runs.

# %%
draws = np.asarray(jrbm.sample_v_given_h(jax.random.key(2), params, jnp.broadcast_to(h_fix, (N_DRAWS, J))))
mu, sd = b + m / a, 1 / a
erf = np.vectorize(math.erf)
fig, axs = plt.subplots(1, I, figsize=(10, 3.5))
for i, ax in enumerate(axs):
    x = np.sort(draws[:, i])
    cdf = 0.5 * (1 + erf((x - mu[i]) / (sd[i] * np.sqrt(2))))
    ks = max(np.max(np.arange(1, len(x) + 1) / len(x) - cdf), np.max(cdf - np.arange(len(x)) / len(x)))
    t = np.sqrt(len(x)) * ks
    p_value = min(1.0, 2 * sum((-1) ** (j - 1) * np.exp(-2 * j**2 * t**2) for j in range(1, 101)))
    print(
        f"v_{i + 1}: mean {x.mean():+.4f} (expected {mu[i]:+.4f}, s.e. {sd[i] / np.sqrt(len(x)):.4f}), "
        f"std {x.std(ddof=1):.4f} (expected {sd[i]:.4f}, s.e. {sd[i] / np.sqrt(2 * len(x)):.4f}), "
        f"KS D = {ks:.4f}, p = {p_value:.3f}"
    )
    assert p_value > 1e-6, f"v_{i + 1}: KS p-value {p_value:.1e} is below 1e-6"
    ax.hist(x, bins=80, density=True, alpha=0.5, label=f"{len(x)} draws")
    grid = np.linspace(mu[i] - 4 * sd[i], mu[i] + 4 * sd[i], 300)
    ax.plot(grid, np.exp(-((grid - mu[i]) ** 2) / (2 * sd[i] ** 2)) / (sd[i] * np.sqrt(2 * np.pi)), "k", label="eq. 3.19")
    ax.set_title(f"v_{i + 1} | h = {h_fix.astype(int)}")
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The joint picture
#
# The marginal density `p(v)` of this GB-RBM is a mixture of `2^J = 16`
# axis-aligned Gaussians with a shared covariance `diag(1 / a_i^2)`, one at
# each mean `b + m / a` (marked), weighted by `p(h)`.

# %%
p_h = np.exp(log_int_quad - log_Z_quad)
fig, ax = plt.subplots(figsize=(5, 5))
ax.contour(axes[0], axes[1], np.exp(-F_jrbm - log_Z_quad).T, levels=12)
ax.scatter(means[:, 0], means[:, 1], s=400 * p_h, c="C3", label="component means (area ∝ p(h))")
ax.set_xlabel("v_1")
ax.set_ylabel("v_2")
ax.set_xlim(means[:, 0].min() - 3 / a[0], means[:, 0].max() + 3 / a[0])
ax.set_ylim(means[:, 1].min() - 3 / a[1], means[:, 1].max() + 3 / a[1])
ax.legend(loc="upper right")
ax.set_title("p(v) of the GB-RBM")
plt.show()
print(f"sum_h p(h) = {p_h.sum():.12f}")
