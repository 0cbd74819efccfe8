"""jrbm against an earlier jrbm, in one run: CD-1 throughput and ``fit``'s first-call time.

    python -m benchmarks.compare --ref <git ref> [--size small|full] [--rounds N]

The package at ``--ref`` is extracted with ``git archive`` into a temporary
folder as ``jrbm_ref`` (its imports renamed), so both versions run in the
same process on the same data and keys, their calls interleaved
(:func:`benchmarks.common.interleaved`); a ratio is the median over rounds
of the paired per-round ratio. Timed, for the tutorial's two models at
784 x 500 (``full``; 64 x 50 at ``small``):

* one compiled epoch of CD-1 with SGD (``jrbm.train.train_epoch``, 16,000
  examples at ``full``) at batch 100 and 1,000: examples per second;
* ``jrbm.fit`` with one epoch as a user calls it (``progress=False``), on its
  first call in a fresh process (the compile time users wait for) and on a
  later call, each version in its own subprocess.

Prints a table and writes ``benchmarks/results/compare-<size>.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common

SIZES = {"small": dict(I=64, J=50, n=2000), "full": dict(I=784, J=500, n=16000)}


def extract(ref: str, root: str) -> str:
    """``git archive`` of ``ref``'s ``jrbm/`` into ``root/jrbm_ref`` with ``jrbm`` imports renamed; returns ``root``."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = subprocess.run(["git", "-C", repo, "archive", ref, "jrbm"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", root], input=archive, check=True)
    os.rename(os.path.join(root, "jrbm"), os.path.join(root, "jrbm_ref"))
    pattern = re.compile(r"\b(from|import) jrbm\b")
    for folder, _, files in os.walk(os.path.join(root, "jrbm_ref")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(pattern.sub(lambda m: f"{m.group(1)} jrbm_ref", text))
    return root


def _model(lib, family: str, I: int, J: int):
    init = lib.init_bernoulli if family == "BB" else lib.init_gaussian
    return init(jax.random.key(0), I, J)


def _data(family: str, n: int, I: int):
    rng = np.random.default_rng(0)
    if family == "BB":
        return jnp.asarray((rng.random((n, I)) < 0.3).astype(np.float32))
    return jnp.asarray(rng.normal(size=(n, I)).astype(np.float32))


def epoch_contestant(lib, family, batch, data, I, J):
    opt, est = optax.sgd(0.01), lib.CD(1)
    state = lib.train.init_state(jax.random.key(1), _model(lib, family, I, J), data, optimizer=opt, estimator=est)
    step = jax.jit(lambda key, s: lib.train.train_epoch(key, s, data, batch, optimizer=opt, estimator=est))
    return lambda: jax.block_until_ready(step(jax.random.key(2), state))


FIT_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import jax, numpy as np, optax
import {module} as lib
family, I, J, n, batch = {family!r}, {I}, {J}, {n}, {batch}
rng = np.random.default_rng(0)
data = (rng.random((n, I)) < 0.3).astype(np.float32) if family == "BB" else rng.normal(size=(n, I)).astype(np.float32)
init = lib.init_bernoulli if family == "BB" else lib.init_gaussian
params = init(jax.random.key(0), I, J)
opt, est = optax.sgd(0.01), lib.CD(1)
times = []
for r in range(3):
    t0 = time.perf_counter()
    out, _ = lib.fit(jax.random.key(r), params, data, optimizer=opt, estimator=est, epochs=1, batch_size=batch, progress=False)
    jax.block_until_ready(out)
    times.append(time.perf_counter() - t0)
print(times[0], min(times[1:]))
"""


def fit_times(root: str, module: str, family: str, size: dict, batch: int) -> tuple[float, float]:
    """``(first call, later call)`` seconds of one-epoch ``fit`` in a fresh process."""
    script = FIT_SCRIPT.format(root=root, module=module, family=family, batch=batch, **size)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


HEADERS = ["model", "batch", "CD-1 ex/s (ref)", "CD-1 ex/s (new)", "new / ref", "fit first call s (ref / new)", "fit later call s (ref / new)"]


def rows_of(results: list[dict]) -> list[list]:
    return [
        [r["family"], r["batch"], f"{r['ref_examples_per_s']:,.0f}", f"{r['new_examples_per_s']:,.0f}", f"{r['throughput_new_over_ref']:.3f}",
         f"{r['fit_first_call_s']['ref']:.2f} / {r['fit_first_call_s']['new']:.2f}",
         f"{r['fit_later_call_s']['ref']:.2f} / {r['fit_later_call_s']['new']:.2f}"]
        for r in results
    ]


def render(doc: dict) -> str:
    """The section of RESULTS.md for one comparison file."""
    p = doc["problem"]
    return "\n".join([
        f"## Before and after: the working tree against `{doc['ref']}`, size {doc['size']}",
        "",
        f"- command: `python -m benchmarks.compare --ref {doc['ref']} --size {doc['size']}`; {doc['rounds']} interleaved rounds; {doc['time']}",
        f"- device: {common.describe(doc['device'])}",
        f"- problem: {p['I']} x {p['J']}, {p['n']:,} examples, CD-1 with SGD (`train_epoch`, compiled); `fit` with one epoch, "
        "its first call in a fresh process (compilation included) and a later call",
        "",
        common.markdown_table(HEADERS, rows_of(doc["results"])),
    ])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, help="the git ref of the earlier jrbm (a commit, tag or branch)")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    I, J, n = size["I"], size["J"], size["n"]
    root = extract(args.ref, tempfile.mkdtemp(prefix="jrbm_ref_"))
    sys.path.insert(0, root)
    import jrbm_ref

    import jrbm

    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(jrbm.__file__)))
    results = []
    for family in ("BB", "GB"):
        data = _data(family, n, I)
        for batch in (100, 1000):
            times = common.interleaved(
                {"ref": epoch_contestant(jrbm_ref, family, batch, data, I, J), "new": epoch_contestant(jrbm, family, batch, data, I, J)},
                rounds=args.rounds,
            )
            ratio = common.paired_ratio(times, "ref", "new")  # > 1: the working tree is faster
            first_ref, later_ref = fit_times(root, "jrbm_ref", family, size, batch)
            first_new, later_new = fit_times(repo_root, "jrbm", family, size, batch)
            result = {
                "family": family, "batch": batch,
                "ref_examples_per_s": n / common.median(times["ref"]), "new_examples_per_s": n / common.median(times["new"]),
                "throughput_new_over_ref": ratio,
                "fit_first_call_s": {"ref": first_ref, "new": first_new}, "fit_later_call_s": {"ref": later_ref, "new": later_new},
            }
            results.append(result)
            print(rows_of([result])[0], flush=True)
    print(common.markdown_table(HEADERS, rows_of(results)))
    report = {"ref": args.ref, "size": args.size, "problem": size, "rounds": args.rounds, "device": common.device_info("benchmarks.compare"),
              "results": results, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.makedirs(args.out, exist_ok=True)
    common.write_json(os.path.join(args.out, f"compare-{args.size}.json"), report)
    return report



if __name__ == "__main__":
    main()
