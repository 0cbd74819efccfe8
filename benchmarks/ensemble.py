"""Ensembles and device meshes: ``fit_ensemble`` against sequential ``fit`` calls, and throughput per device count.

``python -m benchmarks.ensemble [--models 16] [--epochs 200] [--rounds 5] [--devices 1,2,4] [--out PATH]``

1. **Ensemble vs sequential.** ``N`` small models (bars-and-stripes 4x4: 32
   examples, 16 visible, 16 hidden units; CD-1; full batch, so one update per
   epoch; SGD) trained by one :func:`jrbm.train.fit_ensemble` call (one
   compiled program, ``jax.vmap`` over the models) against ``N`` calls of
   :func:`jrbm.fit` one after the other, each with its own key and initial
   model. Both go through the public API with its per-epoch history; the
   sequential calls reuse one compiled epoch (same optimizer and estimator
   objects). Target: the ensemble at least 5x faster. When it is missed, the
   report says why, from one model's epoch time both ways and from the time
   of the vmapped products against one model's (:func:`product_times`).
2. **Device count.** In a fresh interpreter per count ``d`` (CPU devices
   forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=d``):
   the same ensemble with its models split over a ``("model": d)`` mesh, and
   a data-parallel ``fit`` (8x8 digits, 64 x 64, CD-1, batch 256) with each
   minibatch split over a ``("data": d)`` mesh. Forced CPU devices share the
   machine's cores, so this shows the overhead and the scaling of the
   mechanism, not the speed-up of separate accelerators.

Timing follows :mod:`benchmarks.common`: every contestant is warmed up
(compiled) first, then timed once per round (right after an untimed call) in
rotated order; times are
medians over rounds, the speed-up the median of per-round ratios.
Throughput is training examples processed per second
(``models x epochs x examples``). The table is printed as markdown and the
numbers are written as JSON (device, versions, sizes, medians) to ``--out``
(default ``benchmarks/results/ensemble.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _setup(n_models: int, epochs: int):
    import jax
    import jax.numpy as jnp
    import optax

    import jrbm

    data = jnp.asarray(jrbm.datasets.bars_and_stripes(4), jnp.float32)  # (32, 16)
    keys_init = jax.random.split(jax.random.key(0), n_models)
    inits = [jrbm.init_bernoulli(k, 16, 16, data=data) for k in keys_init]
    stack = jax.tree.map(lambda *x: jnp.stack(x), *inits)
    keys = jax.random.split(jax.random.key(1), n_models)
    settings = dict(optimizer=optax.sgd(0.1), estimator=jrbm.CD(1), epochs=epochs, batch_size=data.shape[0], progress=False)
    return data, inits, stack, keys, settings


def product_times(n_models: int, repeats: int = 2000) -> dict:
    """Microseconds of one ``(32, 16) @ (16, 16)`` product (a hidden layer's input on bars-and-stripes) of one
    model, and of the ``n_models`` models' products vmapped, each in a compiled ``lax.scan`` of ``repeats``."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from benchmarks import common

    v = jax.random.uniform(jax.random.key(0), (n_models, 32, 16))
    w = jax.random.normal(jax.random.key(1), (n_models, 16, 16)) * 0.1

    def chain(v, w):
        return lax.scan(lambda x, _: (jnp.tanh(x @ w), None), v, None, length=repeats)[0]

    one, batched = jax.jit(chain), jax.jit(jax.vmap(chain))
    times = common.interleaved({"one": lambda: common.block(one(v[0], w[0])), "batched": lambda: common.block(batched(v, w))}, rounds=5)
    return {name: common.median(t) / repeats * 1e6 for name, t in (("one_us", times["one"]), ("batched_us", times["batched"]))}


def ensemble_vs_sequential(n_models: int, epochs: int, rounds: int) -> dict:
    import jax

    import jrbm
    from benchmarks import common

    data, inits, stack, keys, settings = _setup(n_models, epochs)

    def ensemble():
        return common.block(jrbm.train.fit_ensemble(keys, stack, data, **settings)[0])

    def sequential():
        return [common.block(jrbm.fit(keys[n], inits[n], data, **settings)[0]) for n in range(n_models)]

    first = {}
    for name, f in (("ensemble", ensemble), ("sequential", sequential)):
        t0 = time.perf_counter()
        f()
        first[name] = time.perf_counter() - t0
    times = common.interleaved({"ensemble": ensemble, "sequential": sequential}, rounds=rounds, warmup=0)
    examples = n_models * epochs * data.shape[0]
    ratio = common.paired_ratio(times, "sequential", "ensemble")
    products = product_times(n_models)
    note = (
        f"one model's epoch takes {common.median(times['sequential']) / (n_models * epochs) * 1e6:.1f} us in sequential fit calls "
        f"and {common.median(times['ensemble']) / (n_models * epochs) * 1e6:.1f} us in the ensemble: the vmapped products of "
        f"the {n_models} models take {products['batched_us']:.2f} us, {products['batched_us'] / n_models:.2f} us a model "
        f"against {products['one_us']:.2f} us for one model alone: on a CPU, batching products this small gains "
        f"{n_models * products['one_us'] / products['batched_us']:.1f}x, so the ensemble can save little beyond fit's per-call work"
    )
    return {
        "problem": {"data": "bars_and_stripes(4)", "n_examples": int(data.shape[0]), "n_visible": 16, "n_hidden": 16,
                    "estimator": "CD-1", "batch_size": int(data.shape[0]), "optimizer": "sgd(0.1)",
                    "models": n_models, "epochs": epochs, "dtype": "float32"},
        "first_call_s": first,
        "times_s": times,
        "median_s": {k: common.median(v) for k, v in times.items()},
        "spread": {k: common.spread(v) for k, v in times.items()},
        "examples_per_s": {k: examples / common.median(v) for k, v in times.items()},
        "speedup": ratio,
        "speedup_fastest_rounds": min(times["sequential"]) / min(times["ensemble"]),
        "products": products,
        "target": common.target("fit_ensemble speed-up over sequential fit calls", ratio, 5.0, note=note),
        "device": str(jax.devices()[0]),
    }


def worker(n_models: int, epochs: int, rounds: int) -> dict:
    """Runs in a fresh interpreter whose device count was forced: the two mesh contestants."""
    import jax
    import jax.numpy as jnp
    import optax

    import jrbm
    import jrbm.parallel
    from benchmarks import common

    d = jax.device_count()
    data, _, stack, keys, settings = _setup(n_models, epochs)
    model_mesh = jrbm.parallel.make_mesh(data=1, model=d)

    digits = jnp.asarray(jrbm.datasets.digits().train, jnp.float32)
    params = jrbm.init_bernoulli(jax.random.key(2), 64, 64, data=digits)
    fit_settings = dict(optimizer=optax.sgd(0.05), estimator=jrbm.CD(1), epochs=5, batch_size=256, progress=False)
    data_mesh = jrbm.parallel.make_mesh(data=d)

    contestants = {
        "ensemble, models split": lambda: common.block(
            jrbm.train.fit_ensemble(keys, stack, data, mesh=model_mesh, **settings)[0]),
        "fit, batch split": lambda: common.block(
            jrbm.fit(jax.random.key(3), params, digits, mesh=data_mesh, **fit_settings)[0]),
    }
    times = common.interleaved(contestants, rounds=rounds, warmup=1)
    n_fit = fit_settings["epochs"] * (digits.shape[0] // fit_settings["batch_size"]) * fit_settings["batch_size"]
    examples = {"ensemble, models split": n_models * epochs * data.shape[0], "fit, batch split": n_fit}
    return {
        "devices": d,
        "median_s": {k: common.median(v) for k, v in times.items()},
        "spread": {k: common.spread(v) for k, v in times.items()},
        "examples_per_s": {k: examples[k] / common.median(v) for k, v in times.items()},
        "fit_problem": {"data": "digits().train", "n_examples": int(digits.shape[0]), "n_visible": 64, "n_hidden": 64,
                        "estimator": "CD-1", "batch_size": 256, "epochs": 5},
    }


def device_scaling(counts: list[int], n_models: int, epochs: int, rounds: int) -> list[dict]:
    from benchmarks import common

    args = ["--worker", "--models", str(n_models), "--epochs", str(epochs), "--rounds", str(rounds)]
    return [common.run_on_cpu_devices(d, "benchmarks.ensemble", *args) for d in counts]


def markdown(res: dict) -> str:
    from benchmarks.common import fmt, markdown_table

    e = res["ensemble_vs_sequential"]
    p = e["problem"]
    lines = [
        f"### {p['models']} models, bars-and-stripes 4x4 ({p['n_visible']} x {p['n_hidden']}), CD-1, full batch, "
        f"{p['epochs']} epochs",
        "",
        markdown_table(
            ["contestant", "median s", "examples/s", "first call s (compile + run)"],
            [[f"fit_ensemble ({p['models']} models, one program)", e["median_s"]["ensemble"], e["examples_per_s"]["ensemble"],
              e["first_call_s"]["ensemble"]],
             [f"{p['models']} sequential fit calls", e["median_s"]["sequential"], e["examples_per_s"]["sequential"],
              e["first_call_s"]["sequential"]]],
        ),
        "",
        f"Speed-up of the ensemble: **{fmt(e['speedup'])}x** (median of per-round ratios; fastest rounds "
        f"{fmt(e['speedup_fastest_rounds'])}x); target >= 5x: {'pass' if e['target']['passed'] else 'FAIL'}"
        + (f": {e['target']['note']}." if "note" in e["target"] else "."),
    ]
    if res.get("device_scaling"):
        rows = []
        for r in res["device_scaling"]:
            rows.append([r["devices"], r["examples_per_s"]["ensemble, models split"], r["examples_per_s"]["fit, batch split"]])
        base = res["device_scaling"][0]["examples_per_s"]
        lines += [
            "",
            "### Throughput against forced CPU device count (examples/s)",
            "",
            markdown_table(
                ["devices", f"fit_ensemble, {p['models']} models split over 'model'", "fit (digits 64 x 64, batch 256) split over 'data'"],
                rows,
            ),
            "",
            f"Relative to {res['device_scaling'][0]['devices']} device(s): "
            + "; ".join(
                f"{r['devices']} devices: ensemble {fmt(r['examples_per_s']['ensemble, models split'] / base['ensemble, models split'])}x, "
                f"fit {fmt(r['examples_per_s']['fit, batch split'] / base['fit, batch split'])}x"
                for r in res["device_scaling"][1:]
            )
            + ". Forced CPU devices share the same cores.",
        ]
    return "\n".join(lines)


def render_doc(doc: dict) -> str:
    """The RESULTS.md section of an ``ensemble.json`` (see ``benchmarks/run.py``)."""
    return markdown(doc["results"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ensemble", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--devices", default="1,2,4", help="forced CPU device counts for the scaling table ('' to skip)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ensemble.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.models, args.epochs, args.rounds)))
        return 0

    from benchmarks import common

    info = common.device_info()
    info["command"] = "python -m benchmarks.ensemble " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {common.describe(info)}\n# JAX devices: {info['jax_devices']}; load average {info['load_average_at_start']}\n",
          flush=True)
    t0 = time.perf_counter()
    res = {"ensemble_vs_sequential": ensemble_vs_sequential(args.models, args.epochs, args.rounds)}
    counts = [int(c) for c in args.devices.split(",") if c.strip()]
    res["device_scaling"] = device_scaling(counts, args.models, args.epochs, args.rounds) if counts else []
    wall = time.perf_counter() - t0
    info["load_average_at_end"] = common.load_average()
    doc = {"suite": "ensemble", "size": f"{args.models} models x {args.epochs} epochs", "wall_s": wall, "info": info,
           "results": res, "targets": [res["ensemble_vs_sequential"]["target"]]}
    return common.finish(args.out, doc, markdown(res))


if __name__ == "__main__":
    sys.exit(main())
