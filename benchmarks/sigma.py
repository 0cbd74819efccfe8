"""Learned variances of a GB-RBM on the 2-D two-Laplace set: sampling estimators against the exact gradient.

``python -m benchmarks.sigma [--keys 5] [--epochs 200] [--out PATH]``

Data: ``jrbm.datasets.two_laplace(10000, seed=0)`` for training and
``seed=1`` for testing, the command line's split. Every score is the exact
mean test log-likelihood: with 4 or 8 hidden units ``log Z`` sums 16 or 256
Gaussian integrals (Cheng eq. 3.18); the command line's 64-unit models are
scored by forward AIS (its own report) and by 2-D quadrature of ``exp(-F(v))``
on a 601 x 601 grid over ``[-15, 15]^2`` (an independent check here, not a
library function).

Rows, each over ``--keys`` keys (initialisation and training):

* **exact gradient**: the reference of notebook 05, ``jrbm.exact.grad`` on
  the whole training set, 3,000 full-batch Adam(0.01) updates from
  ``sigma = 0.7``, ``sigma`` learned from the first update;
* **CD-1, PCD-1 (defaults)**: the command line's settings for a GB-RBM,
  as ``jrbm.fit`` arguments: Adam(0.003) with weight decay 1e-4 on ``W``,
  minibatches of 20, ``--epochs`` epochs, ``sigma = 0.7`` at the start,
  ``learn_sigma=True`` with its default ``sigma_warmup`` (half of the
  epochs); PCD with 100 chains;
* **ablations**: the same without the warm-up (``sigma_warmup=0``, what
  ``learn_sigma=True`` did before) and the same starting from ``sigma = 1``;
* **warm-up length**: PCD-1 with ``sigma`` held for a fifth of the epochs
  instead of half, at ``--epochs`` and at a quarter of them (a run whose
  warm-up is too short in updates ends at the Gaussian);
* **diagnosis**: the exact gradient of each minibatch (``jrbm.exact.grad`` of
  the batch, no sampling) in place of CD, with and without the warm-up: if it
  collapses as CD does, the cause is the optimisation, not CD's bias;
* **command line**: ``python -m jrbm train --dataset two-laplace
  --learn-sigma --seed S`` with all its defaults (64 hidden units, PCD-1),
  in a fresh process per key.

Target (issue 14): with ``learn_sigma=True`` and the documented defaults,
the median over 5 keys lands within 0.02 nats of the exact-gradient optimum,
-2.751 for 4 hidden units (notebook 05's best start), and the command line
does the same. The optimum is the best that exact gradients reach, not their
median: in this run's own exact-gradient rows, some starts stop in worse
optima (4 hidden units: median -2.787 over the keys, the best key -2.751).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jrbm
from jrbm.train.step import weights_only

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIMUM = -2.751
"""Notebook 05's exact-gradient optimum for 4 hidden units (the best of its starts at sigma = 0.7)."""
TOLERANCE = 0.02
GAUSSIAN_LL = -(1 + float(np.log(2 * np.pi)))
BATCH = 20
EXACT_UPDATES = 3000


def data():
    return jrbm.datasets.two_laplace(10000, seed=0), jrbm.datasets.two_laplace(10000, seed=1)


def defaults_optimizer() -> optax.GradientTransformation:
    """The command line's GB-RBM optimiser: weight decay 1e-4 on W, then Adam(0.003)."""
    return optax.chain(optax.add_decayed_weights(1e-4, mask=weights_only), optax.adam(0.003))


def inits(n_hidden: int, n_keys: int, sigma: float, train):
    keys = jax.random.split(jax.random.key(0), n_keys)
    return jax.vmap(lambda k: jrbm.init_gaussian(k, 2, n_hidden, data=train, sigma=sigma))(keys)


def exact_scores(params, test) -> list[float]:
    n = params.W.shape[0]
    return [float(jnp.mean(jrbm.exact.log_likelihood(jax.tree.map(lambda x: x[i], params), test))) for i in range(n)]


def quadrature_log_likelihood(params, test) -> float:
    """Mean log-density of ``test`` with ``log Z`` by a 601 x 601 rectangle rule over ``[-15, 15]^2``."""
    g = jnp.linspace(-15.0, 15.0, 601)
    grid = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
    log_z = jax.scipy.special.logsumexp(-jrbm.free_energy(params, grid)) + 2 * jnp.log(g[1] - g[0])
    return float(jnp.mean(-jrbm.free_energy(params, jnp.asarray(test))) - log_z)


def exact_reference(n_hidden: int, n_keys: int, train, test) -> list[float]:
    x = jnp.asarray(train, jnp.float32)
    opt = optax.adam(0.01)

    @jax.jit
    @jax.vmap
    def run(params):
        def step(carry, _):
            p, s = carry
            u, s = opt.update(jrbm.exact.grad(p, x), s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, opt.init(params)), None, length=EXACT_UPDATES)[0][0]

    return exact_scores(run(inits(n_hidden, n_keys, 0.7, train)), test)


def sampled(n_hidden: int, n_keys: int, estimator, epochs: int, train, test, *, sigma=0.7, sigma_warmup=None) -> list[float]:
    params, _ = jrbm.fit_ensemble(
        jax.random.split(jax.random.key(1), n_keys), inits(n_hidden, n_keys, sigma, train), train,
        optimizer=defaults_optimizer(), estimator=estimator, epochs=epochs, batch_size=BATCH,
        learn_sigma=True, sigma_warmup=sigma_warmup, progress=False,
    )
    return exact_scores(params, test)


def command_line(n_keys: int, test) -> list[dict]:
    out = []
    for seed in range(n_keys):
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, "-m", "jrbm", "train", "--dataset", "two-laplace", "--learn-sigma",
                   "--seed", str(seed), "--out", d, "--quiet"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            report = json.loads(proc.stdout[proc.stdout.index("{") : proc.stdout.rindex("}") + 1])
            params = jrbm.load(os.path.join(d, "params.npz"))
        out.append({"seed": seed, "ais": report["log_likelihood"], "ais_se": report["log_z_std"],
                    "quadrature": quadrature_log_likelihood(params, test), "wall_s": wall})
    return out


def run(n_keys: int, epochs: int) -> dict:
    from benchmarks import common

    train, test = data()
    rows = {}

    def add(name, scores, **extra):
        rows[name] = {"scores": scores, "median": float(np.median(scores)), **extra}
        print(f"{name:42s} median {rows[name]['median']:.4f}  per key {np.round(scores, 4).tolist()}", flush=True)

    for n_hidden in (4, 8):
        add(f"J={n_hidden} exact gradient", exact_reference(n_hidden, n_keys, train, test), hidden=n_hidden)
        for name, est in (("CD-1", jrbm.CD(1)), ("PCD-1", jrbm.PCD(1, 100))):
            add(f"J={n_hidden} {name} defaults", sampled(n_hidden, n_keys, est, epochs, train, test), hidden=n_hidden)
        add(f"J={n_hidden} PCD-1 sigma_warmup=0", sampled(n_hidden, n_keys, jrbm.PCD(1, 100), epochs, train, test, sigma_warmup=0),
            hidden=n_hidden)
        if n_hidden == 8:
            for warmup in (None, 0):
                add(f"J=8 exact minibatch gradient, sigma_warmup={'default' if warmup is None else warmup}",
                    sampled(8, n_keys, common.ExactGradient(), epochs, train, test, sigma_warmup=warmup), hidden=8)
        if n_hidden == 8:  # how long the warm-up must be: a fifth against the default half, at 200 and 50 epochs
            add(f"J=8 PCD-1 sigma_warmup={epochs // 5} (a fifth)",
                sampled(8, n_keys, jrbm.PCD(1, 100), epochs, train, test, sigma_warmup=epochs // 5), hidden=8)
            short = max(epochs // 4, 5)
            for warmup, name in ((short // 5, "a fifth"), (None, "default, half")):
                add(f"J=8 PCD-1 {short} epochs, sigma_warmup={name}",
                    sampled(8, n_keys, jrbm.PCD(1, 100), short, train, test, sigma_warmup=warmup), hidden=8)
        add(f"J={n_hidden} PCD-1 from sigma=1", sampled(n_hidden, n_keys, jrbm.PCD(1, 100), epochs, train, test, sigma=1.0),
            hidden=n_hidden)
    cli = command_line(n_keys, test)
    rows["J=64 command line (AIS)"] = {"scores": [c["ais"] for c in cli], "median": float(np.median([c["ais"] for c in cli])),
                                       "hidden": 64, "runs": cli}
    rows["J=64 command line (quadrature)"] = {"scores": [c["quadrature"] for c in cli],
                                             "median": float(np.median([c["quadrature"] for c in cli])), "hidden": 64}
    print(f"command line: AIS {[round(c['ais'], 4) for c in cli]}, quadrature {[round(c['quadrature'], 4) for c in cli]}")
    return rows


def targets(rows: dict) -> list[dict]:
    out = []
    for name in ("J=4 PCD-1 defaults", "J=4 CD-1 defaults", "J=8 PCD-1 defaults", "J=8 CD-1 defaults",
                 "J=64 command line (AIS)", "J=64 command line (quadrature)"):
        value = rows[name]["median"]
        out.append({"target": f"{name}: median >= {OPTIMUM} - {TOLERANCE}", "value": value,
                    "threshold": OPTIMUM - TOLERANCE, "passed": bool(value >= OPTIMUM - TOLERANCE)})
    return out


def markdown(rows: dict, tg: list[dict]) -> str:
    from benchmarks import common

    table = common.markdown_table(
        ["model and training", "median test LL", "per key", "median - (-2.751)"],
        [[name, f"{r['median']:.4f}", " / ".join(f"{s:.4f}" for s in r["scores"]), f"{r['median'] - OPTIMUM:+.4f}"]
         for name, r in rows.items()],
    )
    lines = [table, "", f"The best Gaussian scores {GAUSSIAN_LL:.4f}.", ""]
    for t in tg:
        lines.append(f"- {t['target']}: {t['value']:.4f} -> {'met' if t['passed'] else 'NOT met'}")
    return "\n".join(lines)


def render_doc(doc: dict) -> str:
    """The RESULTS.md section of a ``sigma.json`` (see ``benchmarks/run.py``)."""
    return ("GB-RBMs learning their variances on two-Laplace (10,000 training and 10,000 test points), exact test "
            "log-likelihood, medians over keys. The defaults: the command line's (Adam 0.003, batch 20, start at "
            "sigma = 0.7, sigma fixed for the first half of the epochs); the ablations drop one of the two. The "
            f"exact-gradient rows are 3,000 full-batch Adam(0.01) updates (the other rows: {doc['size']}).\n\n"
            + markdown(doc["results"], doc["targets"]) + WHY)


WHY = """

Why learned variances used to collapse: near `W = 0` with `sigma` at the data's standard deviation the GB-RBM is
the best Gaussian, a stationary point. Its mean and covariance already match the data's, so the weights' gain is
of fourth order in `W`, while `log_sigma`'s gradient is of second order: learned from the first update, `sigma`
reaches 1 before the weights grow, and minibatch noise keeps them there. The exact gradient of each minibatch
collapses the same way (the diagnosis rows), so the cause is the optimisation, not the bias of CD or PCD, and
Gibbs-Langevin or other samplers would not change it; full-batch Adam (the exact-gradient rows) escapes only
because it scales a tiny gradient up to a full step. Holding `sigma` below the data's standard deviation for the
first half of the epochs makes the weights carry the missing variance along the heavy-tailed directions first."""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sigma", description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=200, help="epochs of the sampling estimators (the command line's default)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "sigma.json"))
    args = ap.parse_args(argv)

    from benchmarks import common

    info = common.device_info()
    info["command"] = "python -m benchmarks.sigma " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {common.describe(info)}\n", flush=True)
    t0 = time.perf_counter()
    rows = run(args.keys, args.epochs)
    wall = time.perf_counter() - t0
    tg = targets(rows)
    info["load_average_at_end"] = common.load_average()
    doc = {"suite": "sigma", "size": f"{args.keys} keys, {args.epochs} epochs", "wall_s": wall, "info": info,
           "optimum": OPTIMUM, "results": rows, "targets": tg}
    return common.finish(args.out, doc, markdown(rows, tg))


if __name__ == "__main__":
    sys.exit(main())
