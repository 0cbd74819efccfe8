"""Timing, device description, the matrix-product floor, tables and JSON.

Timing protocol (every suite uses it):

* each contestant is a zero-argument callable that runs one unit of work and
  returns only when the work is done (``jax.block_until_ready``; PyTorch
  CUDA work is synchronised by the caller);
* every contestant is first called ``warmup`` times (compilation, caches);
* then ``rounds`` rounds, each calling every contestant once, the order
  rotated from round to round, so that a slow spell of a shared machine hits
  all contestants alike;
* each timed call is immediately preceded by an untimed call of the same
  contestant. It absorbs what the previous contestant left behind: BLAS and
  OpenMP worker threads (OpenBLAS under scikit-learn, OpenMP under PyTorch,
  XLA's pool) that keep spinning for up to ~0.1 s after a call returns and
  on a 2-core machine slow down whichever contestant runs next, thread pools
  and cores that went idle, caches filled with another contestant's data.
  (An idle pause instead would make short calls pay the wake-up: measured
  +55% per CD-1 step at batch 100 after a 0.15 s pause.);
* a contestant's time is the median over rounds; a ratio of two contestants
  is the median over rounds of the per-round ratio (paired, so drifts in
  machine load cancel).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# ----------------------------------------------------------------------------- device


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


MATMUL_PRECISIONS = {"float32": "highest", "tensorfloat32": "high"}
"""``--matmul-precision``: JAX's ``jax_default_matmul_precision`` -> PyTorch's ``set_float32_matmul_precision``."""


def set_matmul_precision(name: str, peers: bool = True) -> None:
    """The internal precision of float32 matrix products, the same for JAX and (with ``peers``) PyTorch.

    Without it the contestants differ on a recent NVIDIA GPU: JAX's default
    computes float32 products in TensorFloat32, PyTorch's in float32. On CPU
    both are float32 either way.
    """
    jax.config.update("jax_default_matmul_precision", name)
    if not peers:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_float32_matmul_precision(MATMUL_PRECISIONS[name])


def has_philox() -> bool:
    """Whether this jax has ``philox2x32`` and ``philox4x32`` keys (0.10.2 and later): jrbm's default noise, which the
    speed suite times beside threefry, and the keys of the bars-and-stripes quality runs."""
    try:
        jax.random.key(0, impl="philox2x32")
        jax.random.key(0, impl="philox4x32")
    except ValueError:
        return False
    return True


class ExactGradient(NamedTuple):
    """An estimator whose loss gradient is exact: ``jrbm.exact.grad`` of each batch (the batch's data term and
    the model term by enumeration), no sampling. For training paths free of sampling bias in the benchmarks."""

    def init(self, key, params, data):
        return ()

    def grad(self, key, params, batch, state):
        import jrbm.exact

        return jrbm.exact.grad(params, batch, check=False), state


def device_info(prog: str = "benchmarks.run") -> dict[str, Any]:
    """What ran the benchmark: JAX backend and devices, CPU, versions, dtype, time, command (``python -m <prog> ...``)."""
    import jaxlib
    import optax

    devices = jax.devices()
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"python -m {prog} {' '.join(sys.argv[1:])}".rstrip(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "cpu_model": cpu_model(),
        "cpu_cores_available": n_cpus(),
        "load_average_at_start": load_average(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "scikit-learn": _version("sklearn"),
        "dtype": "float64" if jax.config.jax_enable_x64 else "float32",  # the default float dtype of the run
        "default_prng": str(jax.config.jax_default_prng_impl),
        "matmul_precision": jax.config.jax_default_matmul_precision,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_device"] = torch_device_name()
        info["torch_matmul_precision"] = torch.get_float32_matmul_precision()
    except ImportError:
        info["torch"] = None
    return info


def _version(module: str) -> str | None:
    """The version of an optional peer, ``None`` when it is not installed."""
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def peers_missing() -> list[str]:
    """The peers' packages (``torch``, ``sklearn``) that cannot be imported here."""
    return [m for m in ("torch", "sklearn") if _version(m) is None]


def torch_device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda:" + torch.cuda.get_device_name(0)
    return "cpu"


def describe(info: dict[str, Any]) -> str:
    """One line naming the hardware a table was measured on."""
    if info["jax_backend"] == "cpu":
        hw = f"{info['cpu_model']}, {info['cpu_cores_available']} cores available"
    else:
        hw = f"{info['device_kind']} ({info['jax_backend']}), host CPU {info['cpu_model']}"
    return f"{hw}; jax {info['jax']}, torch {info.get('torch')} ({info.get('torch_device')}), scikit-learn {info['scikit-learn']}"


def run_on_cpu_devices(n_devices: int, module: str, *args: str) -> Any:
    """Runs ``python -m <module> <args>`` in a fresh interpreter whose CPU shows ``n_devices`` JAX devices.

    The device count is fixed when JAX starts, hence the child process
    (``XLA_FLAGS=--xla_force_host_platform_device_count=n``, ``JAX_PLATFORMS=cpu``,
    the repository on ``PYTHONPATH``). The child prints its result as JSON on
    its last line of output; it is returned parsed. Raises ``RuntimeError``
    with the end of the child's error output if it fails.
    """
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n_devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=root, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    try:
        if proc.returncode != 0 or not lines:
            raise ValueError(f"exit status {proc.returncode}")
        return json.loads(lines[-1])
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise RuntimeError(
            f"python -m {module} with {n_devices} CPU devices failed ({e}):\n{proc.stdout[-1000:]}\n{proc.stderr[-3000:]}"
        ) from None


# ----------------------------------------------------------------------------- timing


def block(x):
    """Waits for JAX work; returns ``x``."""
    return jax.block_until_ready(x)


def interleaved(contestants: dict[str, Callable[[], Any]], *, rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each contestant in each round (see the module docstring)."""
    names = list(contestants)
    for name in names:
        for _ in range(warmup):
            contestants[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        s = r % len(names)
        for name in names[s:] + names[:s]:
            contestants[name]()  # untimed: see the module docstring
            t0 = time.perf_counter()
            contestants[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def median(ts) -> float:
    return float(np.median(np.asarray(ts)))


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of ``t_a / t_b``: how many times slower ``a`` is than ``b``."""
    return float(np.median(np.asarray(times[a]) / np.asarray(times[b])))


def spread(ts) -> float:
    """Relative interquartile range of a contestant's times (how noisy the machine was)."""
    q1, q3 = np.percentile(np.asarray(ts), [25, 75])
    return float((q3 - q1) / np.median(ts))


# ----------------------------------------------------------------------------- matmul floor


def matmul_program(m: int, k: int, n: int, reps: int, *, seed: int = 0, dtype=jnp.float32):
    """A compiled program of ``reps`` products ``(m, k) @ (k, n)``, each on a distinct left operand.

    The left operands are stacked and consumed by ``lax.scan`` and every
    product is an output, so nothing can be hoisted out of the loop or dropped.
    Returns a zero-argument callable that runs the program and blocks; its time
    divided by ``reps`` is one product's time.
    """
    rng = np.random.default_rng(seed)
    a = jnp.asarray(rng.random((reps, m, k), dtype=np.float32), dtype)
    b = jnp.asarray(rng.random((k, n), dtype=np.float32), dtype)

    @jax.jit
    def run(a, b):
        return lax.scan(lambda c, x: (c, x @ b), 0, a)[1]

    block(run(a, b))
    return lambda: block(run(a, b))


def floor_contestants(shapes: dict[str, tuple[int, int, int]], reps: int) -> dict[str, Callable[[], Any]]:
    """``{"mm " + name: program}`` for each named ``(m, k, n)`` product shape."""
    return {f"mm {name}": matmul_program(*mnk, reps, seed=i) for i, (name, mnk) in enumerate(shapes.items())}


def gflops(n_flops: float, seconds: float) -> float:
    return n_flops / seconds / 1e9


# ----------------------------------------------------------------------------- output


def fmt(x, digits: int = 3) -> str:
    """Compact number formatting for tables."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    if math.isnan(x):
        return "-"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits}g}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
    return "\n".join(lines)


def jsonable(x):
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    return x


def write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` atomically (a temporary file, then a rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str, obj: dict) -> None:
    """Writes ``obj`` as indented JSON (NaN and inf as null), atomically."""
    write_text(path, json.dumps(jsonable(obj), indent=2) + "\n")


def finish(path: str, doc: dict, table: str) -> int:
    """The end of a benchmark script: ``doc`` written to ``path``, its table printed; returns the exit status 0."""
    write_json(path, doc)
    print(table)
    print(f"\nwrote {path} ({doc['wall_s']:.0f} s)")
    return 0


def target(name: str, value: float, threshold: float, *, best: float | None = None, note: str | None = None) -> dict[str, Any]:
    """A pass/fail record (higher is better): ``margin`` is ``value / threshold``, ``> 1`` passes.

    ``value`` is the median-based figure; ``best``, when given, the same
    figure from the contestants' fastest rounds (robust to other jobs);
    ``note``, why a target is out of reach where the run can tell; it is
    recorded only when the target is missed.
    """
    out = {"target": name, "value": value, "threshold": threshold, "passed": bool(value >= threshold), "margin": value / threshold}
    if best is not None:
        out.update({"value_best": best, "passed_best": bool(best >= threshold), "margin_best": best / threshold})
    if note is not None and not out["passed"]:
        out["note"] = note
    return out
