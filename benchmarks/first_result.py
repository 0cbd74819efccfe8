"""Time to the first result: ``python -m jrbm train`` with its defaults, end to end, in fresh processes.

Each run is a new interpreter (``sys.executable -m jrbm train --quiet``) in
a temporary output folder, timed from the launch to its exit, as a user
meets it the first time: imports, compilation, training, AIS, the files and
figures. The command prints its own phases (``setup_seconds``: data and
initialisation; ``train_seconds``; ``after_training_seconds``: AIS with the
sample chains and the figures drawn while it runs, and the files); the rest of
the wall time is the interpreter's start, the imports and the argument
parsing. The AIS standard error is printed beside it, since a shorter run
must not buy its speed with a noisier number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common

TARGET_SECONDS = 8.0


def _one_run() -> dict:
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "jrbm", "train", "--quiet", "--out", out],
                              capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
        wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"python -m jrbm train failed: {proc.stderr[-2000:]}")
    res = json.loads(proc.stdout)
    phases = {name: res[f"{name}_seconds"] for name in ("setup", "train", "after_training")}
    return {"wall": wall, "start_and_imports": wall - sum(phases.values()), **phases,
            "log_likelihood": res["log_likelihood"], "log_z_std": res["log_z_std"]}  # fmt: skip


def run(size: str) -> dict:
    """``size``: ``small`` times one run, ``full`` three (the median is reported)."""
    return _summary([_one_run() for _ in range(1 if size == "small" else 3)])


def _summary(runs: list[dict]) -> dict:
    median = {name: common.median([r[name] for r in runs]) for name in runs[0]}
    best = min(r["wall"] for r in runs)
    target = common.target(
        f"time to first result (python -m jrbm train, defaults): {TARGET_SECONDS:g} s / wall time",
        TARGET_SECONDS / median["wall"], 1.0, best=TARGET_SECONDS / best,
    )
    return {"runs": runs, "median": median, "target": target, "load_average": common.load_average()}


def markdown(res: dict) -> str:
    m = res["median"]
    rows = [[name.replace("_", " "), common.fmt(m[name])] for name in ("start_and_imports", "setup", "train", "after_training", "wall")]
    lines = [
        f"\n### Time to the first result (`python -m jrbm train`, defaults, {len(res['runs'])} fresh process(es), median)\n",
        common.markdown_table(["phase", "seconds"], rows),
        "",
        f"Test log-likelihood {m['log_likelihood']:.3f}, AIS standard error of log Z {m['log_z_std']:.3f}. "
        "\"start and imports\": the interpreter's start, the imports and argument parsing (the wall time minus the phases "
        "the command reports); \"setup\": data and initialisation; \"after training\": AIS, with the sample chains and "
        "the figures drawn while it runs, and the files.",
    ]
    t = res["target"]
    lines.append(f"\nTarget under {TARGET_SECONDS:g} s: {'met' if t['passed'] else 'missed'} "
                 f"(median {m['wall']:.2f} s; fastest run {TARGET_SECONDS / t['value_best']:.2f} s).")  # fmt: skip
    if not t["passed"]:
        lines.append(
            f"Why: training (200 epochs of 71 PCD-1 updates, with the compilation of its epoch and, on the other core, of AIS, "
            f"the sample chains and the test set's free energy) takes {m['train']:.1f} s; start-up and imports (JAX alone about 1 s) {m['start_and_imports']:.1f} s; "
            f"AIS's 14,500 temperatures for its standard error, with the figures and files, {m['after_training']:.1f} s. "
            "Each part is already overlapped where the two cores allow, and the wall time moves with the machine's load "
            "(the speed suite's runs and those of `python -m benchmarks.first_result`, on their own, each have a section here)."
        )
    return "\n".join(lines)


def render_doc(doc: dict) -> str:
    """The RESULTS.md section of a ``first-result.json`` (``python -m benchmarks.first_result``)."""
    return markdown(doc["results"]).lstrip("\n").split("\n", 1)[1].lstrip("\n")


def main(argv=None) -> int:
    """``python -m benchmarks.first_result [--runs 3] [--out PATH]``: these runs alone, outside the speed suite."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.first_result", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh processes; the median is reported")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "first-result.json"))
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs: expected a positive number of runs, got {args.runs}")
    info = common.device_info("benchmarks.first_result")
    info["command"] = f"python -m benchmarks.first_result {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip()
    info["load_average_at_start"] = common.load_average()
    print(f"# {common.describe(info)}\n", flush=True)
    t0 = time.perf_counter()
    runs = [_one_run() for _ in range(args.runs)]
    res = _summary(runs)
    doc = {"suite": "first_result", "size": f"{args.runs} fresh processes, on their own", "wall_s": time.perf_counter() - t0,
           "info": info, "results": res}
    return common.finish(args.out, doc, markdown(res))


if __name__ == "__main__":
    sys.exit(main())
