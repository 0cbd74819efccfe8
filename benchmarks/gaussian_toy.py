"""Quality on the 2-D toy problem of PyDeep's GB-RBM example, beside its published figures.

The protocol of PyDeep's ``examples/GRBM_2D_example.py``:

* data: ``jrbm.datasets.two_laplace(100000)`` (two Laplace sources, mixed and
  whitened; PyDeep draws a random mixing matrix, which whitening reduces to a
  rotation), the first half for training and the second for testing;
* model: a GB-RBM with 2 visible and 4 hidden units, ``sigma = 1`` at the start,
  weights uniform in ``[-1, 1]`` (PyDeep's ``'AUTO'`` for Gaussian visible
  units: ``sqrt(6 / (I + J))``, a quarter of its sigmoid range), visible bias 0
  and hidden biases ``-|w_j| / 2 + log 0.1`` with the Euclidean norm of column
  ``j``, as the example's code computes them (``get_norms`` is a norm, not its
  square; its comment's "scaling factor 0.1", the odds of a hidden unit at
  ``v = b``, would need the squared norm);
* training: CD-1, batch 1000, 50 epochs of plain SGD on the batch-mean
  gradient with PyDeep's step sizes ``epsilon = [1, 0, 1, 0.1]``: 1 for ``W``
  and ``c``, none for ``b``, and 0.1 for the scale (PyDeep: for ``sigma``;
  here for ``log_sigma``, the same step at ``sigma = 1``);
* scores: the exact ``log Z`` (enumerating the 16 hidden states, eq. 3.18) and
  the test log-likelihood with it and with AIS's ``log Z``.

Differences that remain: PyDeep's variance GB-RBM couples ``v / sigma^2`` to
the hidden units (jrbm: ``v / sigma``, eq. 3.10), which changes the path of
gradient descent but not the family of densities; and PyDeep's batch loop
takes ``train_data[b:b + 1000]`` for batch index ``b``, so its 50 updates per
epoch see overlapping windows of the reshuffled set, where jrbm's epochs
split the set into 50 disjoint batches. For reference the table gives the
log-likelihood of the best Gaussian (``-(1 + log 2 pi)`` for whitened data)
and of the true density (two independent unit-variance Laplace sources:
``-2 (1 + log sqrt 2)``, were the whitened sources exactly orthogonal).
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jrbm
from benchmarks import common

N_HIDDEN = 4
BATCH = 1000
PUBLISHED = {"log_z": 1.4042, "test_ll_exact": -2.7362, "test_ll_ais": -2.7409}
GAUSSIAN_LL = -(1 + math.log(2 * math.pi))
LAPLACE_LL = -2 * (1 + math.log(math.sqrt(2)))

SIZES = {
    "small": dict(n=20_000, epochs=10, seeds=2, ais_betas=2000),
    "full": dict(n=100_000, epochs=50, seeds=5, ais_betas=None),
}

SCALING_FACTOR = 0.1
"""PyDeep's "scaling factor" of the hidden units at the start: their biases are ``-|w_j| / 2 + log 0.1``."""

OPTIMIZER = optax.multi_transform(
    {"W": optax.sgd(1.0), "b": optax.set_to_zero(), "c": optax.sgd(1.0), "log_sigma": optax.sgd(0.1)},
    jrbm.GaussianRBM(W="W", b="b", c="c", log_sigma="log_sigma"),
)


def init(key, dtype=jnp.float32) -> jrbm.GaussianRBM:
    """PyDeep's start: uniform weights in Glorot's range, hidden biases from :data:`SCALING_FACTOR`."""
    limit = math.sqrt(6 / (2 + N_HIDDEN))
    W = jax.random.uniform(key, (2, N_HIDDEN), dtype, -limit, limit)
    c = -0.5 * jnp.linalg.norm(W, axis=0) + jnp.log(jnp.asarray(SCALING_FACTOR, dtype))
    return jrbm.GaussianRBM(W=W, b=jnp.zeros(2, dtype), c=c, log_sigma=jnp.zeros(2, dtype))


def run(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    data = jrbm.datasets.two_laplace(cfg["n"])
    n_train = cfg["n"] // 2
    train, test = data[:n_train], data[n_train:]
    runs = []
    for seed in range(cfg["seeds"]):
        key_init, key_fit, key_ais = jax.random.split(jax.random.key(seed), 3)
        t0 = time.perf_counter()
        with jax.numpy_dtype_promotion("standard"):  # optax's internals
            params, _ = jrbm.fit(key_fit, init(key_init), train, optimizer=OPTIMIZER, estimator=jrbm.CD(1),
                                 epochs=cfg["epochs"], batch_size=BATCH, learn_sigma=True, sigma_warmup=0,
                                 progress=False)
        train_s = time.perf_counter() - t0
        log_z = float(jrbm.exact.log_partition(params))
        ais = jrbm.ais.log_partition(key_ais, params, data=train, betas=cfg["ais_betas"], n_runs=100)
        neg_f = float(jnp.mean(-jrbm.free_energy(params, test)))
        runs.append(
            {
                "seed": seed,
                "log_z": log_z,
                "test_ll_exact": neg_f - log_z,
                "log_z_ais": float(ais.log_z),
                "test_ll_ais": neg_f - float(ais.log_z),
                "sigma": np.exp(np.asarray(params.log_sigma, np.float64)).tolist(),
                "train_s": train_s,
            }
        )
    med = {k: float(np.median([r[k] for r in runs])) for k in ("log_z", "test_ll_exact", "log_z_ais", "test_ll_ais")}
    return {
        "epochs": cfg["epochs"],
        "n_train": n_train,
        "n_test": cfg["n"] - n_train,
        "ais": ("default schedule (14,500 betas)" if cfg["ais_betas"] is None else f"{cfg['ais_betas']} equally spaced betas")
        + ", 100 runs",
        "median": med,
        "runs": runs,
        "published": PUBLISHED,
        "gaussian_ll": GAUSSIAN_LL,
        "laplace_ll": LAPLACE_LL,
    }


def markdown(res: dict[str, Any]) -> str:
    m, p = res["median"], res["published"]

    def row(name, *values):
        return [name, *("-" if v is None else f"{v:.4f}" for v in values)]

    rows = [
        row("jrbm, median over seeds", m["log_z"], m["test_ll_exact"], m["log_z_ais"], m["test_ll_ais"]),
        *[row(f"jrbm, key {r['seed']}", r["log_z"], r["test_ll_exact"], r["log_z_ais"], r["test_ll_ais"]) for r in res["runs"]],
        row("PyDeep (published)", p["log_z"], p["test_ll_exact"], None, p["test_ll_ais"]),
        row("best Gaussian (reference)", None, res["gaussian_ll"], None, None),
        row("true density, orthogonal sources (reference)", None, res["laplace_ll"], None, None),
    ]
    return "\n".join(
        [
            f"### GB-RBM on the 2-D Laplace mixture (PyDeep's example): 4 hidden units, CD-1, batch {BATCH}, "
            f"{res['epochs']} epochs\n",
            f"{res['n_train']:,} training and {res['n_test']:,} test points; AIS: {res['ais']}. "
            "Log-likelihoods are means per test point. See `benchmarks/gaussian_toy.py` for the protocol and "
            "the differences from PyDeep's (coupling of v / sigma^2 there, and its overlapping batches).\n",
            common.markdown_table(["model", "exact log Z", "test log-likelihood (exact)", "AIS log Z", "test log-likelihood (AIS)"], rows),
        ]
    )
