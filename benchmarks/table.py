"""The quality table: every training method, plain and centred, on every built-in data set, exact log-likelihoods.

``python -m benchmarks.table [--size small|full] [--keys 3] [--datasets ...] [--methods ...] [--out PATH]``

One command trains each (data set, method, centring) cell over ``--keys``
keys (one :func:`jrbm.fit_ensemble` program per cell) and scores every model
exactly: all models here have at most 16 hidden units, so ``log Z`` sums over
the hidden states (``jrbm.exact``) and no cell needs AIS. The table gives the
median over keys and the range (min to max), beside published figures where a
paper used the same data and model size, with its protocol's differences.

Methods, at one Gibbs sweep per update except CD-10, 100 persistent chains
(32 on bars-and-stripes, one per pattern):

* ``CD-10`` (:class:`jrbm.CD`), ``PCD-1`` (:class:`jrbm.PCD`), ``FPCD-1``
  (:class:`jrbm.FPCD`, fast learning rate equal to the data set's learning
  rate, decay 19/20), ``JarzynskiPCD-1`` (:class:`jrbm.JarzynskiPCD`, resampling
  below half the chains), ``PT-10`` (:class:`jrbm.PT`, 10 temperatures),
  ``PTT-10`` (:class:`jrbm.PTT`, a ladder of 10 saved models, one saved every
  50 updates until it is full);
* each also wrapped in :class:`jrbm.Centered` (offsets' rate 0.01, the
  paper's ``mix=0.5``); centring is defined for Bernoulli, Spin and Potts
  layers, so the Gaussian data set's centred cells say "refused" with the
  library's error.

Data sets and protocols (full size; ``small`` divides the updates by 20):

* ``bars-and-stripes``: 4 x 4 (32 patterns), 16 hidden units, full batch,
  SGD 0.05, 20,000 updates; scored on the 32 patterns (the literature has no
  test set). Published: Brügge, Fischer & Igel (2013) Table 1, median over 25
  runs of the *best* log-likelihood during training (here the final one).
* ``shifter``: the labeled shifter ensemble (768 rows of 19 bits), 16 hidden
  units, batch 32, SGD 0.05, 20,000 updates (19,992: whole epochs of 24
  batches); scored on the 768 rows.
* ``digits``: scikit-learn's 8 x 8 digits, binarised, the fixed 1,438 / 359
  split, 16 hidden units, batch 20, SGD 0.05 with momentum 0.5, 100 epochs
  (7,100 updates); test log-likelihood.
* ``mnist``: MNIST-5k binarised (4,000 / 1,000), 16 hidden units, batch
  100, SGD 0.01, 5,000 updates; test log-likelihood. Published: PyDeep's
  centring tutorial (60,000 training images, 30,000 updates): -142.56 centred,
  -149.05 plain (``benchmarks/centering.py`` runs that protocol).
* ``two-laplace``: 10,000 / 10,000 points, a GB-RBM with 8 hidden units
  learning its variances with ``fit``'s defaults (``sigma = 0.7`` at the start,
  held for half of the epochs), Adam 0.003 with weight decay 1e-4 on
  ``W``, batch 20, 200 epochs (100,000 updates, the command line's); test log-likelihood. Reference:
  the best Gaussian, -2.8379, and the exact-gradient optimum for 4 hidden
  units, -2.751 (``benchmarks/sigma.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jrbm
from jrbm.train.step import weights_only

HERE = os.path.dirname(os.path.abspath(__file__))
N_HIDDEN = 16
CHAINS = 100


@dataclass(frozen=True)
class Protocol:
    name: str
    load: Callable[[], tuple[np.ndarray, np.ndarray, str]]  # train, scored set, what the score is on
    init: Callable[[Any, np.ndarray], Any]
    optimizer: optax.GradientTransformation
    lr: float
    batch_size: int
    updates: int
    chains: int = CHAINS
    learn_sigma: bool = False
    published: dict = None  # method -> (value, source)


def _bas():
    data = jrbm.datasets.bars_and_stripes(4)
    return data, data, "the 32 training patterns"


def _shifter():
    data = jrbm.datasets.labeled_shifter(8)
    return data, data, "the 768 training rows"


def _digits():
    s = jrbm.datasets.digits("binary")
    return s.train, s.test, f"the {len(s.test)} test images"


def _mnist():
    s = jrbm.datasets.mnist("binary")
    return s.train, s.test, "the 1,000 test images"


def _two_laplace():
    return jrbm.datasets.two_laplace(10000, seed=0), jrbm.datasets.two_laplace(10000, seed=1), "the 10,000 test points"


def _bernoulli(key, train):
    return jrbm.init_bernoulli(key, train.shape[1], N_HIDDEN, data=train)


def _gaussian(key, train):
    return jrbm.init_gaussian(key, 2, 8, data=train, sigma=0.7)


PROTOCOLS = {
    "bars-and-stripes": Protocol("bars-and-stripes", _bas, _bernoulli, optax.sgd(0.05), 0.05, 32, 20000, chains=32,
                                 published={"CD-10": (-3.636, "Brügge et al. 2013, lr 0.1, best during training"),
                                            "PCD-1": (-4.917, "Brügge et al. 2013, lr 0.05, best during training")}),
    "shifter": Protocol("shifter", _shifter, _bernoulli, optax.sgd(0.05), 0.05, 32, 20000),
    "digits": Protocol("digits", _digits, _bernoulli, optax.sgd(0.05, momentum=0.5), 0.05, 20, 7100),
    "mnist": Protocol("mnist", _mnist, _bernoulli, optax.sgd(0.01), 0.01, 100, 5000,
                      published={"PCD-1": (-149.05, "PyDeep, 60k images, 30k updates"),
                                 "PCD-1 centred": (-142.56, "PyDeep, 60k images, 30k updates")}),
    "two-laplace": Protocol("two-laplace", _two_laplace, _gaussian,
                            optax.chain(optax.add_decayed_weights(1e-4, mask=weights_only), optax.adam(0.003)), 0.003, 20,
                            100000, learn_sigma=True),
}


def methods(p: Protocol) -> dict[str, Any]:
    c = p.chains
    return {
        "CD-10": jrbm.CD(10),
        "PCD-1": jrbm.PCD(1, c),
        "FPCD-1": jrbm.FPCD(1, c, fast_lr=p.lr),
        "JarzynskiPCD-1": jrbm.JarzynskiPCD(1, c, ess_threshold=0.5),
        "PT-10": jrbm.PT(10, 1, n_chains=c),
        "PTT-10": jrbm.PTT(n_models=10, save_every=50, k=1, n_chains=c),
    }


def cell(p: Protocol, train, scored, estimator, n_keys: int, updates: int) -> dict[str, Any]:
    """Trains ``n_keys`` models in one program and scores each exactly on ``scored``."""
    per_epoch = len(train) // p.batch_size
    epochs = max(1, round(updates / per_epoch))
    inits = jax.vmap(lambda k: p.init(k, train))(jax.random.split(jax.random.key(0), n_keys))
    t0 = time.perf_counter()
    params, _ = jrbm.fit_ensemble(jax.random.split(jax.random.key(1), n_keys), inits, train, optimizer=p.optimizer,
                                  estimator=estimator, epochs=epochs, batch_size=p.batch_size, learn_sigma=p.learn_sigma,
                                  progress=False)
    jax.block_until_ready(params)
    wall = time.perf_counter() - t0
    scores = [float(jnp.mean(jrbm.exact.log_likelihood(jax.tree.map(lambda x: x[i], params), scored)))
              for i in range(n_keys)]
    return {"scores": scores, "median": float(np.median(scores)), "min": min(scores), "max": max(scores),
            "updates": epochs * per_epoch, "train_s": wall}


def run(size: str, n_keys: int, datasets, method_names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in datasets:
        p = PROTOCOLS[name]
        train, scored, on = p.load()
        updates = p.updates if size == "full" else max(p.updates // 20, 50)
        rows: dict[str, Any] = {}
        for mname, est in methods(p).items():
            if method_names and mname not in method_names:
                continue
            for centred in (False, True):
                label = mname + (" centred" if centred else "")
                try:
                    e = jrbm.Centered(est) if centred else est
                    r = cell(p, train, scored, e, n_keys, updates)
                except (ValueError, TypeError) as err:
                    r = {"refused": str(err).split("\n")[0]}
                    print(f"{name:17s} {label:26s} refused: {r['refused'][:120]}", flush=True)
                else:
                    print(f"{name:17s} {label:26s} median {r['median']:9.4f}  [{r['min']:.4f}, {r['max']:.4f}]  "
                          f"{r['updates']} updates, {r['train_s']:.0f} s", flush=True)
                rows[label] = r
        out[name] = {"scored_on": on, "rows": rows, "published": p.published or {}}
    return out


def markdown(res: dict[str, Any]) -> str:
    from benchmarks import common

    method_names = list(next(iter(res.values()))["rows"])
    plain = [m for m in method_names if not m.endswith(" centred")]
    lines = []
    headers = ["data set (scored on)"] + [f"{m} / centred" for m in plain]
    rows = []
    for name, d in res.items():
        row = [f"{name} ({d['scored_on']})"]
        for m in plain:
            parts = []
            for label in (m, m + " centred"):
                r = d["rows"].get(label)
                if r is None:
                    parts.append("—")
                elif "refused" in r:
                    parts.append("refused")
                else:
                    parts.append(f"{r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}]")
            row.append(" / ".join(parts))
        rows.append(row)
    lines.append(common.markdown_table(headers, rows))
    lines.append("")
    lines.append("Each cell: plain / centred, median over keys [min, max] of the exact mean log-likelihood (nats per example).")
    published = [(name, m, v, src) for name, d in res.items() for m, (v, src) in d["published"].items()]
    if published:
        lines += ["", "Published figures (their protocols differ as the module docstring says):", ""]
        lines += [f"- {name}, {m}: {v} ({src})" for name, m, v, src in published]
    refused = {r["refused"] for d in res.values() for r in d["rows"].values() if "refused" in r}
    if refused:
        lines += ["", "Refused by the library: " + "; ".join(sorted(refused))]
    return "\n".join(lines)


def render_doc(doc: dict) -> str:
    """The RESULTS.md section of a ``table.json`` (see ``benchmarks/run.py``)."""
    rerun = doc["info"].get("rerun")
    return (f"Every method, plain and centred, on every built-in data set ({doc['size']}); the protocols are in "
            "`benchmarks/table.py`'s docstring. Scores are those at the end of training: on bars-and-stripes the "
            "persistent estimators with 32 chains (PCD-1, FPCD-1) and JarzynskiPCD-1 peak and then fall at this "
            "learning rate (notebook 07 shows the curves), so their final values are far below the published best-during-"
            "training medians." + (f" Rerun: {rerun}." if rerun else "") + "\n\n" + markdown(doc["results"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.table", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=("small", "full"), default="full")
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--datasets", nargs="*", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "table.json"))
    args = ap.parse_args(argv)

    from benchmarks import common

    info = common.device_info()
    info["command"] = "python -m benchmarks.table " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {common.describe(info)}\n", flush=True)
    t0 = time.perf_counter()
    res = run(args.size, args.keys, args.datasets, args.methods)
    wall = time.perf_counter() - t0
    info["load_average_at_end"] = common.load_average()
    doc = {"suite": "table", "size": f"{args.size}, {args.keys} keys", "wall_s": wall, "info": info, "results": res}
    return common.finish(args.out, doc, markdown(res))


if __name__ == "__main__":
    sys.exit(main())
