"""Entry point: ``python -m benchmarks.run --suite speed|quality|all --size small|full --out benchmarks/results/``.

Prints markdown tables, writes ``<out>/<suite>-<size>.json`` (on an
accelerator ``<suite>-<size>-<backend>.json``: the numbers, the targets with
pass/fail and margin, and the device description), then regenerates
``benchmarks/RESULTS.md`` (``<out>/RESULTS.md`` when ``--out`` is another
folder) from every result file in ``<out>``. The JSON file is rewritten after
each part of a suite and marked ``"complete": false`` until the last, so that a
run stopped by a time limit keeps what it measured. ``--render`` only
regenerates the markdown from the JSON files already in ``<out>``. Peers that are
not installed (PyTorch, scikit-learn) are left out, as with ``--no-peers``.

* ``speed``: training throughput against the matrix-product floor, PyTorch
  and scikit-learn; Gibbs sampling; AIS; the bars-and-stripes wall time
  (:mod:`benchmarks.speed`, :func:`benchmarks.bas.wall_time`).
* ``quality``: the bars-and-stripes table and the digits comparisons
  (:func:`benchmarks.bas.quality`, :mod:`benchmarks.quality`).

``--size small`` finishes in about 2.5 minutes (``speed``) and a minute
(``quality``) on 2 idle CPU cores; ``--size full`` is the protocol as specified. The
code is backend-agnostic: the same command runs on CPU, GPU or TPU (PyTorch
uses CUDA when it is present).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import sys
import time
from collections.abc import Callable

import jax

from benchmarks import common

HERE = os.path.dirname(os.path.abspath(__file__))


def sections(suite: str, size: str, peers: bool) -> list[tuple[str, Callable[[], dict]]]:
    """The suite's parts, in the order they run: ``(result key, thunk)``. The training part, with the
    throughput targets, comes first, so that a run cut short still has it (see :func:`main`)."""
    from benchmarks import bas, first_result, gaussian_toy, quality, speed

    if suite == "speed":
        return [
            ("training", lambda: speed.training(size, peers=peers)),
            ("gibbs", lambda: speed.gibbs(size, peers=peers)),
            ("ais", lambda: speed.ais(size)),
            ("pt", lambda: speed.pt(size)),
            ("first_result", lambda: first_result.run(size)),
            ("bas_wall_time", lambda: bas.wall_time(size, peers=peers)),
        ]
    out = [
        ("bas", lambda: bas.quality(size, methods=None if size == "full" else ["CD-10", "PCD-1", "PT-5"])),
        ("gaussian_toy", lambda: gaussian_toy.run(size)),
    ]
    if peers:
        out += [("likelihood", lambda: quality.likelihood(size)), ("features", lambda: quality.features(size))]
    return out


def render(suite: str, res: dict) -> str:
    """The markdown of a (possibly incomplete) result: each part that ran."""
    from benchmarks import bas, first_result, gaussian_toy, quality, speed

    if suite == "speed":
        parts = [speed.markdown(res)]
        if res.get("first_result"):
            parts.append(first_result.markdown(res["first_result"]))
        if res.get("bas_wall_time"):
            parts.append(bas.markdown({"quality": None, "wall_time": res["bas_wall_time"]}))
        return "\n".join(parts)
    parts = []
    if "bas" in res:
        parts.append(bas.markdown({"quality": res["bas"], "wall_time": None}))
    if "gaussian_toy" in res:
        parts.append("\n" + gaussian_toy.markdown(res["gaussian_toy"]))
    if "likelihood" in res or "features" in res:
        parts.append("\n" + quality.markdown(res))
    return "\n".join(parts)


def targets(suite: str, res: dict) -> list[dict]:
    if suite != "speed":
        return []
    out = []
    for part in ("training", "gibbs", "ais", "pt"):
        out += list((res.get(part) or {}).get("targets", []))
    for part in ("first_result", "bas_wall_time"):
        t = (res.get(part) or {}).get("target")
        if t:
            out.append(t)
    return out


def result_name(suite: str, size: str, backend: str) -> str:
    """``<suite>-<size>.json`` on CPU, ``<suite>-<size>-<backend>.json`` on an accelerator, so that neither overwrites the other."""
    return f"{suite}-{size}.json" if backend == "cpu" else f"{suite}-{size}-{backend}.json"


def result_files(out_dir: str) -> list[str]:
    """The result files in ``out_dir``, in RESULTS.md's order: speed before quality, CPU first, full before small."""
    order = {"speed": 0, "quality": 1, "full": 0, "small": 1}

    def rank(f):
        suite, size, *backend = os.path.basename(f)[:-5].split("-")
        return (order.get(suite, 2), len(backend), order.get(size, 2), f)

    return sorted((f for suite in ("speed", "quality") for f in glob.glob(os.path.join(out_dir, f"{suite}-*.json"))), key=rank)


def _header(doc: dict, title: str) -> list[str]:
    info = doc["info"]
    return [
        "",
        f"## {title}",
        "",
        *([] if doc.get("complete", True) else [
            f"**Incomplete:** the run stopped after {', '.join(doc['results']) or 'no part'}; the parts below are the ones that finished.",
            "",
        ]),
        f"- command: `{info['command']}`",
        f"- date: {info['date']}; wall time {doc['wall_s']:.0f} s",
        f"- device: {common.describe(info)}",
        f"- JAX devices: {', '.join(info['jax_devices'])}; default float dtype {info['dtype']}; default PRNG {info['default_prng']}"
        + (f"; float32 products at {info['matmul_precision']} precision" if info.get("matmul_precision") else ""),
        f"- load average at start: {info.get('load_average_at_start')} (other jobs were sharing the machine when above the core count)",
        "",
    ]


LEARNING = {"centering": "benchmarks.centering", "jarzynski": "benchmarks.bas", "ptt": "benchmarks.ptt", "sigma": "benchmarks.sigma", "table": "benchmarks.table",
            "first-result": "benchmarks.first_result", "softplus": "benchmarks.softplus", "ensemble": "benchmarks.ensemble"}
"""Benchmarks run on their own (``python -m benchmarks.centering``, ``python -m benchmarks.ptt``,
``python -m benchmarks.bas --quality ...``, ``python -m benchmarks.sigma``, ``python -m benchmarks.table``,
``python -m benchmarks.first_result``, ``python -m benchmarks.softplus``, ``python -m benchmarks.ensemble``); each result ``benchmarks/results/<name>*.json`` has a ``suite`` key and
is rendered by its module's ``render_doc(doc)``."""


def write_results_md(out_dir: str, path: str) -> None:
    files = result_files(out_dir)
    lines = [
        "# jrbm benchmark results",
        "",
        "Generated by `python -m benchmarks.run` from the JSON files in "
        f"`{os.path.relpath(out_dir, os.path.dirname(path))}/`; do not edit by hand. "
        "Times are medians over interleaved rounds, ratios medians of per-round ratios "
        "(the softplus study's: ratios of medians; see `benchmarks/common.py`); the machine may have been shared, so read the ratios, "
        "not the absolute times.",
    ]
    for f in files:
        with open(f) as fh:
            doc = json.load(fh)
        backend = doc["info"]["jax_backend"]
        lines += _header(doc, f"{doc['suite']} suite, size {doc['size']}" + ("" if backend == "cpu" else f", {backend}"))
        lines.append(render(doc["suite"], doc["results"]))
    for name, module_name in LEARNING.items():
        for f in sorted(glob.glob(os.path.join(out_dir, f"{name}*.json"))):
            with open(f) as fh:
                doc = json.load(fh)
            module = importlib.import_module(module_name)
            if "suite" not in doc or not hasattr(module, "render_doc"):
                continue  # not (yet) a result of the convention above
            lines += _header(doc, f"{doc['suite']}: {doc['size']}")
            lines.append(module.render_doc(doc))
    for f in sorted(glob.glob(os.path.join(out_dir, "compare-*.json"))):
        from benchmarks import compare

        with open(f) as fh:
            lines += ["", compare.render(json.load(fh))]
    common.write_text(path, "\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", choices=["speed", "quality", "all"], default="speed")
    p.add_argument("--size", choices=["small", "full"], default="small")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for the JSON files")
    p.add_argument("--results-md", help="markdown summary to regenerate from every result file in --out "
                   "(default: benchmarks/RESULTS.md with the default --out, else <out>/RESULTS.md)")
    p.add_argument("--no-peers", action="store_true", help="time jrbm and the floor only (no PyTorch, scikit-learn)")
    p.add_argument("--matmul-precision", choices=sorted(common.MATMUL_PRECISIONS), default="float32",
                   help="internal precision of float32 matrix products, for JAX and PyTorch alike (tensorfloat32: "
                   "TF32 on NVIDIA GPUs, JAX's own default there)")
    p.add_argument("--render", action="store_true", help="only regenerate the markdown summary from the JSON files in --out")
    args = p.parse_args(argv)
    if args.results_md is None:
        default_out = os.path.realpath(args.out) == os.path.realpath(os.path.join(HERE, "results"))
        args.results_md = os.path.join(HERE, "RESULTS.md") if default_out else os.path.join(args.out, "RESULTS.md")
    if args.render:
        if not result_files(args.out):
            p.error(f"--out: expected a folder with speed-*.json or quality-*.json files, got {args.out!r} without any")
        write_results_md(args.out, args.results_md)
        print(f"wrote {args.results_md}")
        return 0

    if not common.has_philox():
        p.error(f"the benchmarks time jrbm's philox4x32 noise beside threefry: they need jax 0.10.2 or later, got {jax.__version__}")
    suites = ["speed", "quality"] if args.suite == "all" else [args.suite]
    peers = not args.no_peers
    missing = common.peers_missing()
    if peers and missing:
        print(f"# not installed: {', '.join(missing)}; timing jrbm and the floor only (as with --no-peers)\n", flush=True)
        peers = False
    common.set_matmul_precision(args.matmul_precision, peers)
    info = common.device_info()
    print(f"# {common.describe(info)}\n# JAX devices: {info['jax_devices']}\n", flush=True)
    for suite in suites:
        path = os.path.join(args.out, result_name(suite, args.size, info["jax_backend"]))
        t0 = time.perf_counter()
        res: dict = {}
        todo = sections(suite, args.size, peers)
        for i, (name, part) in enumerate(todo):
            res[name] = part()
            # The file is rewritten after each part, marked incomplete until the last: a run stopped
            # by a time limit keeps what it measured.
            doc = {"suite": suite, "size": args.size, "wall_s": time.perf_counter() - t0, "info": info,
                   "complete": i == len(todo) - 1, "results": res, "targets": targets(suite, res)}
            doc["info"]["load_average_at_end"] = common.load_average()
            common.write_json(path, doc)
            write_results_md(args.out, args.results_md)
        print(f"## {suite} ({args.size}), {doc['wall_s']:.0f} s\n\n{render(suite, res)}\n\nwrote {path}\n", flush=True)
    print(f"wrote {args.results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
