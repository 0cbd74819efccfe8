"""How jrbm sums softplus terms, timed against the alternatives, where the sums are used.

``python -m benchmarks.softplus [--rounds 15] [--out PATH]``

A Bernoulli layer's cumulant generating function is ``sum softplus(theta + I)``
(:func:`jrbm.layers.bernoulli.softplus_sum`). Three forms are timed, each in one
compiled program, interleaved over rounds (:mod:`benchmarks.common`):

* ``jax.nn.softplus`` term by term (a ``logaddexp``);
* :func:`jrbm.layers.base.softplus` term by term (``max(x, 0) + log1p(exp(-|x|))``);
* groups of up to 32 factors ``1 + exp(-|x|)`` multiplied before one ``log``
  (jrbm's form for sums of at most 32 terms; its earlier form for every sum).

on two workloads: the sum over 500 hidden units of 1,000 rows (the free energy
of a 784 x 500 model's minibatch, the swap ratios of parallel tempering), and
the sum over 16 units of the 2^16 states that ``jrbm.exact.log_partition``
enumerates for a 16 x 16 model. Then what users call: ``jrbm.free_energy`` of
1,000 x 784 against a 784 x 500 model, and the exact mean log-likelihood of the
25 bars-and-stripes models of ``benchmarks.bas`` vmapped, as jrbm computes them
(each compared with the same computation where ``softplus_sum`` is swapped for
the grouped form, or for ``base.softplus`` term by term).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))
GROUP = 32


def grouped(x, axis=-1):
    """Groups of up to 32 factors multiplied before one ``log`` (the form jrbm used for every sum)."""
    x = jnp.moveaxis(jnp.asarray(x), axis, 0)
    n = x.shape[0]
    group = max(1, min(n, GROUP))
    n_groups = -(-n // group)
    factors = jnp.pad(1 + jnp.exp(-jnp.abs(x)), [(0, n_groups * group - n)] + [(0, 0)] * (x.ndim - 1), constant_values=1)
    logs = jnp.log(jnp.prod(factors.reshape((n_groups, group) + x.shape[1:]), axis=1))
    return jnp.sum(jnp.maximum(x, 0), axis=0) + jnp.sum(logs, axis=0)


def _sums(x, f, steps=10):
    """``steps`` sums of slightly different inputs in one program, so a call is not dominated by its dispatch."""
    return jax.jit(lambda x: jax.lax.scan(lambda c, t: (c + jnp.sum(f(x * (1 + 1e-3 * t))), None), 0.0, jnp.arange(steps))[0])


def run(rounds: int) -> dict[str, Any]:
    import jrbm
    from benchmarks import common
    from jrbm.layers import base
    from jrbm.layers.bernoulli import softplus_sum

    forms = {
        "jax.nn.softplus": lambda x: jnp.sum(jax.nn.softplus(x), axis=-1),
        "base.softplus": lambda x: jnp.sum(base.softplus(x), axis=-1),
        "grouped": grouped,
        "jrbm": softplus_sum,
    }
    shapes = {"1,000 x 500": (1000, 500), "65,536 x 16": (1 << 16, 16)}
    contestants = {}
    for sname, shape in shapes.items():
        x = 3 * jax.random.normal(jax.random.key(0), shape)
        for fname, f in forms.items():
            g = _sums(x, f)
            contestants[f"{sname} | {fname}"] = (lambda g=g, x=x: common.block(g(x)))

    params = jrbm.init_bernoulli(jax.random.key(0), 784, 500, weight_std=0.1)
    v = (jax.random.uniform(jax.random.key(5), (1000, 784)) < 0.3).astype(jnp.float32)
    data = jnp.asarray(jrbm.datasets.bars_and_stripes(4))
    models = jax.vmap(lambda k: jrbm.init_bernoulli(k, 16, 16, weight_std=1.0))(jax.random.split(jax.random.key(0), 25))
    # Each variant traced and compiled while softplus_sum is swapped for it, with the trace caches cleared
    # (jrbm's inner jitted functions would otherwise reuse the first variant's trace).
    import jrbm.layers.bernoulli as bernoulli

    variants = {"jrbm": softplus_sum, "grouped": grouped, "base.softplus": lambda x, axis=-1: jnp.sum(base.softplus(x), axis=axis)}
    for vname, form in variants.items():
        bernoulli.softplus_sum = form
        jax.clear_caches()
        try:
            fe = jax.jit(lambda v: jrbm.model.free_energy_unchecked(params, v)).lower(v).compile()
            ev = jax.jit(jax.vmap(lambda p: jnp.mean(jrbm.exact.log_likelihood(p, data, check=False)))).lower(models).compile()
        finally:
            bernoulli.softplus_sum = softplus_sum
        contestants[f"free energy | {vname}"] = (lambda fe=fe: common.block(fe(v)))
        contestants[f"bars-and-stripes exact evaluation | {vname}"] = (lambda ev=ev: common.block(ev(models)))

    times = common.interleaved(contestants, rounds=rounds, warmup=1)
    rows = {}
    for name, ts in times.items():
        workload, form = name.split(" | ")
        rows.setdefault(workload, {})[form] = common.median(ts)
    ratios = {w: {f: t / forms_t["jrbm"] for f, t in forms_t.items()} for w, forms_t in rows.items()}
    return {"seconds": rows, "vs_jrbm": ratios, "rounds": rounds}


def markdown(res: dict[str, Any]) -> str:
    from benchmarks import common

    lines = ["### Softplus sums (`python -m benchmarks.softplus`)", "",
             "Median time of each form in one run, and its ratio to jrbm's (above 1: slower than jrbm).", ""]
    table = []
    for workload, forms in res["seconds"].items():
        for form, t in forms.items():
            table.append([workload, form, f"{1e3 * t:.3f}", f"{res['vs_jrbm'][workload][form]:.2f}x"])
    lines.append(common.markdown_table(["workload", "form", "ms", "vs jrbm"], table))
    return "\n".join(lines)


def render_doc(doc: dict) -> str:
    """The RESULTS.md section of a ``softplus.json``."""
    return markdown(doc["results"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.softplus", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", default=os.path.join(HERE, "results", "softplus.json"))
    args = p.parse_args(argv)
    from benchmarks import common

    info = common.device_info("benchmarks.softplus")
    info["command"] = f"python -m benchmarks.softplus {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip()
    info["load_average_at_start"] = common.load_average()
    print(f"# {common.describe(info)}\n", flush=True)
    t0 = time.perf_counter()
    res = run(args.rounds)
    doc = {"suite": "softplus", "size": f"{args.rounds} rounds", "wall_s": time.perf_counter() - t0, "info": info, "results": res}
    return common.finish(args.out, doc, markdown(res))


if __name__ == "__main__":
    sys.exit(main())
