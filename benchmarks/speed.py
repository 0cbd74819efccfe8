"""Speed suite: training and sampling throughput of a 784 x 500 RBM, against the matrix-product floor and peers.

* Training (float32, random binary data of density 0.13, plain SGD): CD-1,
  CD-10 and PCD-1 for a BB-RBM and CD-1 for a GB-RBM (fixed sigma), at
  batch 100 and 1000; in the full size also CD-1 of both families at batch
  10,000, where a GPU must reach :data:`LARGE_BATCH_FLOOR` of the floor (a
  target recorded only when JAX's backend is a GPU) and a CPU 0.85 (recorded
  only on the CPU, as are the batch-100 and batch-1000 targets). jrbm is timed as whole epochs
  (``jrbm.train.train_epoch`` under ``jax.jit``: one compiled ``lax.scan``
  over the minibatches, no Python per step). Peers on the same data and
  shapes: the PyTorch implementation of :mod:`benchmarks.torch_rbm` (same
  algorithms), and scikit-learn's ``BernoulliRBM``, whose only algorithm is
  PCD-1 with one persistent chain per example (``partial_fit`` per minibatch;
  it converts to float64, so it is also timed in float32 through the per-
  minibatch ``_fit`` that its ``fit`` runs).
* The floor: each matrix product of an update timed alone inside compiled
  code at the same shapes (:func:`benchmarks.common.matmul_program`). A CD-k
  update needs ``1 + k`` products ``(B, I) @ (I, J)``, ``k`` products
  ``(B, J) @ (J, I)`` and the two outer products of the gradient, which jrbm
  fuses into one ``(I, 2B) @ (2B, J)``; jrbm's PCD-k recomputes ``P(h | v)``
  of the chains with the current parameters, one ``(B, I) @ (I, J)`` more.
  "of floor" is floor time / measured time.
* GFLOP/s count ``2 B I J`` per product: ``(6 + 4k) B I J`` per CD-k update,
  ``(8 + 4k) B I J`` per PCD-k update of jrbm and PyTorch, ``10 B I J`` per
  scikit-learn PCD-1 update (it reuses the last hidden sample).
* Gibbs sampling (``jrbm.gibbs_chain``) with 1, 100 and 10,000 chains, in
  chain-sweeps per second, against PyTorch and the floor (one product each
  way per sweep).
* AIS (``jrbm.ais.log_partition``, 100 runs) on the 784 x 500 model.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jrbm
from benchmarks import common

I, J = 784, 500
DENSITY = 0.13
LR = 0.01
GIBBS_TARGETS = {1: 0.70, 100: 0.90, 10000: 0.90}
"""Fractions of the matmul floor set for ``gibbs_chain`` on a 2-core CPU, by number of chains."""
AIS_TARGET = 0.80
PT_TARGET = 0.80
LARGE_BATCH_CPU_FLOOR = 0.85
"""CD-1 at batch 10,000 on a CPU: the fraction of the matmul floor set."""
PT_REPLICAS, PT_CHAINS = 10, 100

OWN = "jrbm, threefry noise (rng.own_generator)"
"""The row of jrbm drawing its noise with the keys' own threefry2x32 (:func:`jrbm.rng.own_generator`), beside the default philox4x32 noise."""

SIZES = {
    # minibatches per timed call, per batch size and method; rounds of the interleaved timing
    "small": dict(
        batches={100: dict(cd1=8, cd10=2, pcd1=5, gb1=5), 1000: dict(cd1=2, cd10=1, pcd1=2, gb1=2)},
        rounds=3,
        gibbs_steps={1: 200, 100: 30, 10000: 1},
        gibbs_rounds=3,
        pt_steps=5,
        ais_betas=500,
        ais_rounds=1,
    ),
    "full": dict(
        batches={
            100: dict(cd1=15, cd10=4, pcd1=10, gb1=10),
            1000: dict(cd1=4, cd10=1, pcd1=3, gb1=3),
            10000: "large",  # CD-1, BB and GB: the GPU target; see large_batch()
        },
        rounds=7,
        gibbs_steps={1: 2000, 100: 300, 10000: 5},
        gibbs_rounds=5,
        pt_steps=50,
        ais_betas=None,
        ais_rounds=4,
    ),
}

METHODS = {  # name: (family, estimator kind, k)
    "cd1": ("BB", "CD", 1),
    "cd10": ("BB", "CD", 10),
    "pcd1": ("BB", "PCD", 1),
    "gb1": ("GB", "CD", 1),
}
LABELS = {"cd1": "BB CD-1", "cd10": "BB CD-10", "pcd1": "BB PCD-1", "gb1": "GB CD-1"}


LARGE_BATCH_FLOOR = 0.70
"""The target at batch 10,000 on a GPU: CD-1 (BB and GB) at this fraction of the matmul floor or better."""


def large_batch() -> dict[str, int]:
    """Minibatches per timed call at batch 10,000: CD-1 of both families only.

    One on CPU (an update takes about a third of a second there); eight on an
    accelerator, where one update takes about a millisecond and a call must be
    long enough to amortise Python's dispatch.
    """
    n = 1 if jax.default_backend() == "cpu" else 8
    return dict(cd1=n, gb1=n)


def random_data(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, I)) < DENSITY).astype(np.float32)


def update_products(kind: str, k: int) -> tuple[int, int]:
    """``(forward products (B, I) @ (I, J), backward products (B, J) @ (J, I))`` of one jrbm update."""
    return (1 + k if kind == "CD" else 2 + k), k


def update_flops(kind: str, k: int, batch: int) -> float:
    n_fwd, n_bwd = update_products(kind, k)
    return (n_fwd + n_bwd + 2) * 2.0 * batch * I * J


# ----------------------------------------------------------------------------- contestants


def jrbm_trainer(method: str, data: jnp.ndarray, batch: int, own: bool = False):
    """A callable running one jrbm epoch (one compiled scan) over ``data``; state carries over.

    The keys are JAX's default threefry2x32; with ``own``, the epoch is traced
    (and run) inside :func:`jrbm.rng.own_generator`, so the layers draw their
    noise with threefry rather than philox4x32 (:mod:`jrbm.rng`).
    """
    fam, kind, k = METHODS[method]
    key = jax.random.key(1)
    if fam == "BB":
        params = jrbm.init_bernoulli(key, I, J, data=data)
    else:
        params = jrbm.init_gaussian(key, I, J, data=data)
    estimator = jrbm.CD(k) if kind == "CD" else jrbm.PCD(k, n_chains=batch)
    optimizer = jrbm.train.make_optimizer(params, optax.sgd(LR))
    state = jrbm.train.init_state(jax.random.key(2), params, data, optimizer=optimizer, estimator=estimator)
    epoch = jax.jit(
        functools.partial(jrbm.train.train_epoch, batch_size=batch, optimizer=optimizer, estimator=estimator)
    )
    box = {"state": state, "key": jax.random.key(3)}

    def call():
        box["key"], sub = jax.random.split(box["key"])
        with jrbm.rng.own_generator(own):
            box["state"] = common.block(epoch(sub, box["state"], data))

    return call


FIT_EPOCHS = 3
"""Epochs per timed call of ``jrbm.fit`` (a call also initialises the optimiser and chains and checks its data)."""

FIT_EXAMPLES = 16_000
"""Training examples of a timed ``jrbm.fit`` call (at least): a data set of a user's size, over which the
monitors' fixed cost (:data:`jrbm.train.MONITOR_SIZE` examples an epoch) is spread as it is for users."""

FIT_TARGET = 0.95
"""``fit``'s throughput as a fraction of its own compiled epoch's (``train_epoch``): the target."""


def jrbm_fitter(method: str, data: jnp.ndarray, batch: int):
    """A callable running ``jrbm.fit`` for :data:`FIT_EPOCHS` epochs over ``data`` as a user calls it (defaults, no progress bar).

    Every call starts from the same initial parameters; the per-epoch monitors
    and the divergence check run as they do for users.
    """
    fam, kind, k = METHODS[method]
    key = jax.random.key(1)
    params = jrbm.init_bernoulli(key, I, J, data=data) if fam == "BB" else jrbm.init_gaussian(key, I, J, data=data)
    estimator = jrbm.CD(k) if kind == "CD" else jrbm.PCD(k, n_chains=batch)
    optimizer = optax.sgd(LR)
    box = {"key": jax.random.key(4)}

    def call():
        box["key"], sub = jax.random.split(box["key"])
        out, _ = jrbm.fit(sub, params, data, optimizer=optimizer, estimator=estimator, epochs=FIT_EPOCHS, batch_size=batch, progress=False)
        common.block(out)

    return call


def torch_trainer(method: str, data_np: np.ndarray, batch: int):
    import torch

    from benchmarks import torch_rbm

    fam, kind, k = METHODS[method]
    dev = torch_rbm.device()
    W = np.random.default_rng(1).normal(0, 0.01, (I, J))
    p = np.clip(data_np.mean(0), 1e-3, 1 - 1e-3)
    b = np.log(p / (1 - p)) if fam == "BB" else data_np.mean(0)
    rbm = torch_rbm.TorchRBM(W, b, np.zeros(J), log_sigma=(np.zeros(I) if fam == "GB" else None), dev=dev)
    data = torch.as_tensor(data_np, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    box = {"chains": data[:batch].clone() if kind == "PCD" else None}

    def call():
        box["chains"] = rbm.train_epoch(data, batch, k=k, lr=LR, chains=box["chains"], generator=gen)
        torch_rbm.sync()

    return call


def sklearn_trainer(data_np: np.ndarray, batch: int, *, float32: bool):
    """scikit-learn ``BernoulliRBM`` PCD-1, one update per minibatch, shuffled like the others."""
    from sklearn.neural_network import BernoulliRBM
    from sklearn.utils import check_random_state

    rbm = BernoulliRBM(n_components=J, learning_rate=LR, batch_size=batch, n_iter=1, random_state=0)
    rng = np.random.default_rng(0)
    n_batches = data_np.shape[0] // batch
    if float32:
        data = data_np.astype(np.float32)
        rbm.fit(data[:batch])  # allocates float32 parameters and chains
        state = check_random_state(0)

        def call():
            order = rng.permutation(data.shape[0])
            for i in range(n_batches):
                rbm._fit(data[order[i * batch : (i + 1) * batch]], state)

    else:
        data = data_np.astype(np.float64)
        rbm.partial_fit(data[:batch])

        def call():
            order = rng.permutation(data.shape[0])
            for i in range(n_batches):
                rbm.partial_fit(data[order[i * batch : (i + 1) * batch]])

    return call


# ----------------------------------------------------------------------------- suites


def training(size: str, *, peers: bool = True) -> dict[str, Any]:
    cfg = SIZES[size]
    backend = jax.default_backend()  # the batch-100 and batch-1000 targets are set for a CPU, batch 10,000 for a GPU
    results: dict[str, Any] = {"rows": [], "targets": []}
    for batch, per_method in cfg["batches"].items():
        if per_method == "large":
            per_method = large_batch()
        n_max = max(per_method.values())
        data_np = random_data(batch * n_max)
        contestants, fit_batches = {}, {}
        for method, nb in per_method.items():
            d = jnp.asarray(data_np[: batch * nb])
            contestants[f"jrbm {method}"] = jrbm_trainer(method, d, batch)
            if method in ("cd1", "gb1") and batch <= 1000:
                n_fit = max(batch * nb, FIT_EXAMPLES // batch * batch)
                contestants[f"jrbm-fit {method}"] = jrbm_fitter(method, jnp.asarray(random_data(n_fit, seed=1)), batch)
                fit_batches[method] = n_fit // batch
            if method == "cd1":
                contestants[f"jrbm-own {method}"] = jrbm_trainer(method, d, batch, own=True)
            if peers:
                contestants[f"torch {method}"] = torch_trainer(method, data_np[: batch * nb], batch)
        if peers and "pcd1" in per_method:
            nb = per_method["pcd1"]
            contestants["sklearn64 pcd1"] = sklearn_trainer(data_np[: batch * nb], batch, float32=False)
            contestants["sklearn32 pcd1"] = sklearn_trainer(data_np[: batch * nb], batch, float32=True)
        reps = 4 if batch > 1000 else 8 if batch == 1000 else 20
        contestants.update(
            common.floor_contestants({"fwd": (batch, I, J), "bwd": (batch, J, I), "outer": (I, 2 * batch, J)}, reps)
        )
        times = common.interleaved(contestants, rounds=cfg["rounds"], warmup=1)
        mm = {n: np.asarray(times[f"mm {n}"]) / reps for n in ("fwd", "bwd", "outer")}
        results[f"matmul_ms_batch{batch}"] = {n: 1e3 * common.median(t) for n, t in mm.items()}

        def per_update(name, nb):
            return np.asarray(times[name]) / nb

        for method, nb in per_method.items():
            fam, kind, k = METHODS[method]
            n_fwd, n_bwd = update_products(kind, k)
            floor = n_fwd * mm["fwd"] + n_bwd * mm["bwd"] + mm["outer"]
            flops = update_flops(kind, k, batch)
            entries = [("jrbm", f"jrbm {method}", flops)]
            if f"jrbm-fit {method}" in times:
                entries.append((f"jrbm.fit ({FIT_EPOCHS} epochs a call, defaults)", f"jrbm-fit {method}", flops))
            if method == "cd1":
                entries.append((OWN, f"jrbm-own {method}", flops))
            if peers:
                entries.append(("pytorch (" + _torch_dev() + ")", f"torch {method}", flops))
                if method == "pcd1":
                    entries.append(("scikit-learn (float64, partial_fit)", "sklearn64 pcd1", 10.0 * batch * I * J))
                    entries.append(("scikit-learn (float32, _fit)", "sklearn32 pcd1", 10.0 * batch * I * J))
                if method == "cd1" and "pcd1" in per_method:  # scikit-learn has no CD; its PCD-1 does the same products as CD-1
                    entries.append(("scikit-learn PCD-1 (float64, partial_fit)", "sklearn64 pcd1", 10.0 * batch * I * J))
                    entries.append(("scikit-learn PCD-1 (float32, _fit)", "sklearn32 pcd1", 10.0 * batch * I * J))
            t_jrbm = per_update(f"jrbm {method}", nb)
            for impl, name, fl in entries:
                if name.startswith("jrbm-fit"):
                    t = per_update(name, fit_batches[method] * FIT_EPOCHS)
                else:
                    t = per_update(name, per_method["pcd1"] if name.startswith("sklearn") else nb)
                results["rows"].append(
                    {
                        "method": LABELS[method],
                        "batch": batch,
                        "implementation": impl,
                        "ms_per_update": 1e3 * common.median(t),
                        "examples_per_s": batch / common.median(t),
                        "gflops": common.gflops(fl, common.median(t)),
                        "floor_fraction": float(np.median(floor / t)) if name.startswith("jrbm") else None,
                        "floor_fraction_best": float(np.min(floor) / np.min(t)) if name.startswith("jrbm") else None,
                        "jrbm_speedup": float(np.median(t / t_jrbm)),
                        "jrbm_speedup_best": float(np.min(t) / np.min(t_jrbm)),
                        "spread": common.spread(t),
                    }
                )
            frac = float(np.median(floor / t_jrbm))
            frac_best = float(np.min(floor) / np.min(t_jrbm))
            if f"jrbm-fit {method}" in times and backend == "cpu":
                t_fit = per_update(f"jrbm-fit {method}", fit_batches[method] * FIT_EPOCHS)
                results["targets"].append(
                    common.target(
                        f"{LABELS[method]} batch {batch}: jrbm.fit throughput / its compiled epoch's (train_epoch)",
                        float(np.median(t_jrbm / t_fit)),
                        FIT_TARGET,
                        best=float(np.min(t_jrbm) / np.min(t_fit)),
                    )
                )
            if batch > 1000 and backend == "gpu":
                results["targets"].append(
                    common.target(f"{LABELS[method]} batch {batch} on GPU: fraction of matmul floor", frac, LARGE_BATCH_FLOOR, best=frac_best)
                )
            if method == "cd1":
                results[f"cd1_floor_ms_batch{batch}"] = 1e3 * common.median(floor)
                if backend == "cpu" and batch == 10000:
                    results["targets"].append(common.target("CD-1 batch 10,000: fraction of matmul floor", frac, LARGE_BATCH_CPU_FLOOR, best=frac_best))
                if backend == "cpu" and batch == 1000:
                    results["targets"].append(common.target("CD-1 batch 1000: fraction of matmul floor", frac, 0.90, best=frac_best))
                    if peers:
                        t_torch = per_update(f"torch {method}", nb)
                        results["targets"].append(
                            common.target(
                                "CD-1 batch 1000: speed-up over PyTorch",
                                float(np.median(t_torch / t_jrbm)),
                                1.2,
                                best=float(np.min(t_torch) / np.min(t_jrbm)),
                            )
                        )
                        for label, name in (("partial_fit, float64", "sklearn64 pcd1"), ("_fit loop, float32", "sklearn32 pcd1")):
                            sk = per_update(name, per_method["pcd1"])
                            results["targets"].append(
                                common.target(
                                    f"CD-1 batch 1000: speed-up over scikit-learn ({label})",
                                    float(np.median(sk / t_jrbm)),
                                    2.5,
                                    best=float(np.min(sk) / np.min(t_jrbm)),
                                    note=_sklearn_bound(sk, floor, 2.5),
                                )
                            )
                elif backend == "cpu" and batch == 100:
                    results["targets"].append(common.target("CD-1 batch 100: fraction of matmul floor", frac, 0.85, best=frac_best))
    return results


def _sklearn_bound(t_sklearn, floor, threshold: float) -> str | None:
    """Why a speed-up over scikit-learn is hard to reach: an update taking exactly the floor would miss it.

    scikit-learn's PCD-1 does the same five products per update as CD-1
    (two forward, one backward, two outer products), through NumPy's BLAS, so
    ``t_sklearn / floor`` is the speed-up of an update that takes exactly the
    floor. It is not a strict bound: small products inside an update can run
    faster than timed alone (the tables show fractions above 100%).
    """
    bound = float(np.median(t_sklearn / floor))
    if bound >= threshold:
        return None
    return (
        f"scikit-learn's update takes {bound:.3f}x the matmul floor (the same five products): {threshold}x needs "
        "an update faster than the sum of its products timed alone"
    )


def _torch_dev() -> str:
    try:
        from benchmarks import torch_rbm

        return str(torch_rbm.device())
    except ImportError:
        return "n/a"


def gibbs(size: str, *, peers: bool = True) -> dict[str, Any]:
    cfg = SIZES[size]
    rows = []
    params = jrbm.init_bernoulli(jax.random.key(0), I, J, weight_std=0.1)
    for n_chains, n_steps in cfg["gibbs_steps"].items():
        v0 = jnp.asarray(random_data(n_chains, seed=n_chains))
        chain = jax.jit(functools.partial(jrbm.gibbs_chain, n_steps=n_steps))
        box = {"v": v0, "key": jax.random.key(1)}

        def call_jrbm(box=box, chain=chain):
            box["key"], sub = jax.random.split(box["key"])
            box["v"] = common.block(chain(sub, params, box["v"]))

        contestants = {"jrbm": call_jrbm}
        own_chain = jax.jit(functools.partial(jrbm.gibbs_chain, n_steps=n_steps))  # its own cache: traced inside own_generator
        obox = {"v": v0, "key": jax.random.key(1)}

        def call_own(box=obox, chain=own_chain):
            box["key"], sub = jax.random.split(box["key"])
            with jrbm.rng.own_generator():
                box["v"] = common.block(chain(sub, params, box["v"]))

        contestants["jrbm-own"] = call_own
        if peers:
            import torch

            from benchmarks import torch_rbm

            trbm = torch_rbm.TorchRBM(params.W, params.b, params.c)
            tbox = {"v": torch.as_tensor(np.array(v0), device=torch_rbm.device())}

            def call_torch(tbox=tbox, trbm=trbm, n_steps=n_steps):
                with torch.no_grad():
                    tbox["v"] = trbm.gibbs(tbox["v"], n_steps)
                torch_rbm.sync()

            contestants["torch"] = call_torch
        reps = max(2, min(n_steps, 200))
        contestants.update(common.floor_contestants({"fwd": (n_chains, I, J), "bwd": (n_chains, J, I)}, reps))
        times = common.interleaved(contestants, rounds=cfg["gibbs_rounds"], warmup=1)
        floor = (np.asarray(times["mm fwd"]) + np.asarray(times["mm bwd"])) / reps
        t_j = np.asarray(times["jrbm"]) / n_steps
        for impl in contestants:
            if impl.startswith("mm"):
                continue
            t = np.asarray(times[impl]) / n_steps
            rows.append(
                {
                    "chains": n_chains,
                    "implementation": {"jrbm": "jrbm", "jrbm-own": OWN}.get(impl, f"pytorch ({_torch_dev()})"),
                    "sweeps_timed": n_steps,
                    "us_per_sweep": 1e6 * common.median(t),
                    "chain_sweeps_per_s": n_chains / common.median(t),
                    "gflops": common.gflops(4.0 * n_chains * I * J, common.median(t)),
                    "floor_fraction": float(np.median(floor / t)),
                    "floor_fraction_best": float(np.min(floor) / np.min(t)),
                    "jrbm_speedup": float(np.median(t / t_j)),
                }
            )
    targets = []
    if jax.default_backend() == "cpu":
        for r in rows:
            if r["implementation"] == "jrbm" and r["chains"] in GIBBS_TARGETS:
                name = f"gibbs_chain, {r['chains']:,} chain(s): fraction of matmul floor"
                targets.append(common.target(name, r["floor_fraction"], GIBBS_TARGETS[r["chains"]], best=r["floor_fraction_best"]))
    return {"rows": rows, "targets": targets}


def ais(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    params = jrbm.init_bernoulli(jax.random.key(0), I, J, weight_std=0.1)
    data = jnp.asarray(random_data(1000))
    betas = cfg["ais_betas"]
    n_betas = len(jrbm.ais.default_betas()) if betas is None else betas
    import time

    t0 = time.perf_counter()
    res = jrbm.ais.log_partition(jax.random.key(1), params, data=data, betas=betas, n_runs=100)
    common.block(res)
    first = time.perf_counter() - t0
    keys = iter(range(2, 100))

    def call():
        common.block(jrbm.ais.log_partition(jax.random.key(next(keys)), params, data=data, betas=betas, n_runs=100))

    reps = 200  # each floor call long enough (~0.1 s) that a moment's load on a shared machine moves it little
    contestants = {"ais": call, **common.floor_contestants({"fwd": (100, I, J), "bwd": (100, J, I)}, reps)}
    times = common.interleaved(contestants, rounds=cfg["ais_rounds"], warmup=0)
    t = np.asarray(times["ais"])
    floor = (np.asarray(times["mm fwd"]) + np.asarray(times["mm bwd"])) / reps * (n_betas - 1)
    frac = float(np.median(floor / t))
    targets = [common.target("AIS (default schedule, 100 runs): fraction of matmul floor", frac, AIS_TARGET)] if betas is None and jax.default_backend() == "cpu" else []
    return {
        "targets": targets,
        "n_betas": n_betas,
        "schedule": "default (Salakhutdinov & Murray, 14,500 betas)" if betas is None else f"{betas} equally spaced betas (small size)",
        "n_runs": 100,
        "first_call_s": first,
        "wall_s": common.median(t),
        "sweeps_per_s": (n_betas - 2) / common.median(t),
        "floor_fraction": frac,
        "log_z": float(res.log_z),
        "log_z_std": float(res.log_z_std),
    }


def pt(size: str) -> dict[str, Any]:
    """Parallel-tempering sweeps (``jrbm.tempering.pt_chain``, k=1, one swap round a sweep) on the 784 x 500 model.

    :data:`PT_CHAINS` runs of :data:`PT_REPLICAS` replicas: a sweep of every
    replica does one product ``(R, 784) @ (784, 500)`` and one
    ``(R, 500) @ (500, 784)`` with ``R = PT_CHAINS * PT_REPLICAS`` rows, the
    floor; the swaps' energies reuse the sweep's hidden inputs. The same runs
    with ``k=10`` sweeps a round, timed in the same rounds, split a round's
    time into its sweep and the rest (the swap round and the step's fixed work).
    The same runs with ``swap="joint"`` (joint states swapped by their
    energies, no free energies) are timed in the same rounds, and both kinds'
    swap rates over the timed rounds reported.
    """
    cfg = SIZES[size]
    n_steps = cfg["pt_steps"]
    params = jrbm.init_bernoulli(jax.random.key(0), I, J, weight_std=0.1)
    data = jnp.asarray(random_data(1000))
    state = jrbm.tempering.pt_init(jax.random.key(1), params, data, betas=PT_REPLICAS, n_chains=PT_CHAINS)
    k_long = 10

    boxes = {}

    def runner(k, steps, own=False, swap="marginal"):
        chain = jax.jit(lambda key, state: jrbm.tempering.pt_chain(key, params, state, PT_REPLICAS, steps, k=k, swap=swap))
        box = boxes.setdefault((k, own, swap), {"state": state, "key": jax.random.key(2)})

        def call():
            box["key"], sub = jax.random.split(box["key"])
            with jrbm.rng.own_generator(own):  # traced on the first call, so each runner keeps its generator
                box["state"] = common.block(chain(sub, box["state"]))

        return call

    rows = PT_CHAINS * PT_REPLICAS
    reps = 20
    long_steps = max(1, n_steps // k_long)
    contestants = {"pt": runner(1, n_steps), "pt k10": runner(k_long, long_steps), "pt own": runner(1, n_steps, own=True)}
    contestants.update({"pt joint": runner(1, n_steps, swap="joint"), "pt joint k10": runner(k_long, long_steps, swap="joint")})
    contestants.update(common.floor_contestants({"fwd": (rows, I, J), "bwd": (rows, J, I)}, reps))
    times = common.interleaved(contestants, rounds=cfg["gibbs_rounds"], warmup=1)
    t = np.asarray(times["pt"]) / n_steps
    t_round10 = np.asarray(times["pt k10"]) / long_steps
    sweep = (t_round10 - t) / (k_long - 1)  # per round: t = sweep + rest, t_round10 = 10 sweep + rest
    floor = (np.asarray(times["mm fwd"]) + np.asarray(times["mm bwd"])) / reps
    frac = float(np.median(floor / t))
    t_joint = np.asarray(times["pt joint"]) / n_steps
    sweep_joint = (np.asarray(times["pt joint k10"]) / long_steps - t_joint) / (k_long - 1)
    frac_joint = float(np.median(floor / t_joint))

    def mean_rate(swap):
        return float(np.nanmean(np.asarray(boxes[(1, False, swap)]["state"].swap_rates)))
    out = {
        "replicas": PT_REPLICAS,
        "chains": PT_CHAINS,
        "sweeps_timed": n_steps,
        "ms_per_sweep": 1e3 * common.median(t),
        "replica_sweeps_per_s": rows / common.median(t),
        "floor_fraction": frac,
        "floor_fraction_best": float(np.min(floor) / np.min(t)),
        "k10_ms_per_round": 1e3 * common.median(t_round10),
        "sweep_ms": 1e3 * common.median(sweep),
        "sweep_floor_fraction": float(np.median(floor / sweep)),
        "rest_ms": 1e3 * common.median(t - sweep),
        "floor_ms": 1e3 * common.median(floor),
        "own_ms_per_sweep": 1e3 * common.median(np.asarray(times["pt own"]) / n_steps),
        "joint_ms_per_sweep": 1e3 * common.median(t_joint),
        "joint_floor_fraction": frac_joint,
        "joint_floor_fraction_best": float(np.min(floor) / np.min(t_joint)),
        "joint_rest_ms": 1e3 * common.median(t_joint - sweep_joint),
        "swap_rate": mean_rate("marginal"),
        "joint_swap_rate": mean_rate("joint"),
        "targets": [],
    }
    why = (
        f"a round of k=1 takes {out['ms_per_sweep']:.1f} ms: its sweep {out['sweep_ms']:.1f} ms "
        f"({100 * out['sweep_floor_fraction']:.0f}% of the floor, from k=10 rounds of {out['k10_ms_per_round']:.0f} ms), "
        f"and the swap round with the step's fixed work {out['rest_ms']:.1f} ms; with swap='joint' (no free energies, "
        f"reported, not judged: its swaps are accepted less often) a round takes {out['joint_ms_per_sweep']:.1f} ms"
    )
    if jax.default_backend() == "cpu":
        out["targets"].append(
            common.target(f"PT sweeps ({PT_CHAINS} runs x {PT_REPLICAS} replicas): fraction of matmul floor", frac, PT_TARGET, best=out["floor_fraction_best"], note=why)
        )

    return out


# ----------------------------------------------------------------------------- report


def markdown(res: dict[str, Any]) -> str:
    """Tables of the parts present in ``res``: ``training``, ``gibbs`` and ``ais``."""
    out = []
    if "training" in res:
        out += _training_markdown(res["training"])
    if "gibbs" in res:
        out += _gibbs_markdown(res["gibbs"]["rows"]) + _targets_markdown(res["gibbs"].get("targets", []))
    if "ais" in res:
        out += _ais_markdown(res["ais"], (res.get("gibbs") or {}).get("rows", [])) + _targets_markdown(res["ais"].get("targets", []))
    if "pt" in res:
        out += _pt_markdown(res["pt"]) + _targets_markdown(res["pt"].get("targets", []))
    return "\n".join(out)


def _training_markdown(tr: dict[str, Any]) -> list[str]:
    out = []
    out.append("### Training throughput (784 x 500, float32)\n")
    rows = [
        [
            r["method"],
            r["batch"],
            r["implementation"],
            r["ms_per_update"],
            r["examples_per_s"],
            r["gflops"],
            (f"{100 * r['floor_fraction']:.0f}% ({100 * r['floor_fraction_best']:.0f}%)" if r["floor_fraction"] is not None else "-"),
            (f"{r['jrbm_speedup']:.2f}x ({r['jrbm_speedup_best']:.2f}x)" if r["implementation"] != "jrbm" else "-"),
        ]
        for r in tr["rows"]
    ]
    out.append(
        common.markdown_table(
            ["method", "batch", "implementation", "ms / update", "examples / s", "GFLOP/s", "of floor (best)", "jrbm faster by (best)"],
            rows,
        )
    )
    out.append(
        "\nMedians over rounds; in brackets the same ratio from each contestant's fastest round, "
        "less sensitive to other jobs on a shared machine. \"of floor\": floor time / measured time. "
        "A fraction above 100% means the update ran faster than the sum of its products timed alone, so the "
        "floor over-estimates there: a product timed alone pays a fixed dispatch and thread-synchronisation "
        "cost that overlaps with other work inside an update. It is largest for small products (batch 100) "
        "and shows at batch 1,000 too on this 2-core machine."
    )
    mm = [[b.replace("matmul_ms_batch", ""), v["fwd"], v["bwd"], v["outer"]] for b, v in tr.items() if b.startswith("matmul_ms")]
    out.append("\nMatrix-product floor, ms per product (each timed alone in compiled code):\n")
    out.append(common.markdown_table(["batch B", "(B,784)@(784,500)", "(B,500)@(500,784)", "(784,2B)@(2B,500)"], mm))
    return out + _targets_markdown(tr["targets"])


def _targets_markdown(targets: list[dict[str, Any]]) -> list[str]:
    if not targets:
        return []
    return [
        "\nTargets:\n",
        common.markdown_table(
            ["target", "threshold", "median rounds", "met", "fastest rounds", "met", "why missed"],
            [[t["target"], t["threshold"], t["value"], t["passed"], t.get("value_best"), t.get("passed_best"), t.get("note", "")] for t in targets],
        ),
    ]


def _gibbs_markdown(g: list[dict[str, Any]]) -> list[str]:
    out = []
    out.append("\n### Gibbs sampling (`jrbm.gibbs_chain`, 784 x 500)\n")
    out.append(
        common.markdown_table(
            ["chains", "implementation", "us / sweep", "chain-sweeps / s", "GFLOP/s", "of floor (best)", "jrbm faster by"],
            [
                [
                    r["chains"],
                    r["implementation"],
                    r["us_per_sweep"],
                    r["chain_sweeps_per_s"],
                    r["gflops"],
                    f"{100 * r['floor_fraction']:.0f}% ({100 * r['floor_fraction_best']:.0f}%)",
                    (f"{r['jrbm_speedup']:.2f}x" if r["implementation"] != "jrbm" else "-"),
                ]
                for r in g
            ],
        )
    )
    return out


def _ais_markdown(a: dict[str, Any], gibbs_rows: list[dict[str, Any]] = ()) -> list[str]:
    out = []
    out.append("\n### AIS (`jrbm.ais.log_partition`, 784 x 500, 100 runs)\n")
    out.append(
        common.markdown_table(
            ["schedule", "wall s", "first call s (with compile)", "sweeps / s (x100 runs)", "of floor"],
            [[a["schedule"], a["wall_s"], a["first_call_s"], a["sweeps_per_s"], f"{100 * a['floor_fraction']:.0f}%"]],
        )
    )
    same = [r for r in gibbs_rows if r["chains"] == a["n_runs"] and r["implementation"] == "jrbm"]
    if same:
        move_us = 1e6 / a["sweeps_per_s"]
        out.append(
            f"\nAn AIS move of the {a['n_runs']} runs takes {move_us:,.0f} us, a Gibbs sweep of {a['n_runs']} chains "
            f"{same[0]['us_per_sweep']:,.0f} us in the same run ({100 * same[0]['floor_fraction']:.0f}% of the floor): "
            "the rest of a move is its weight (the annealed log ratio of every run, a sum over the 500 hidden units "
            "and the visible energies) and the interpolated layers at its temperature."
        )
    floor_us = 1e6 * a["floor_fraction"] * a["wall_s"] / (a["n_betas"] - 1)  # the floor counts n_betas - 1 moves
    for t in a.get("targets", []):
        if not t["passed"]:
            why = f"\nMissed by {t['threshold'] - t['value']:.3f}. The floor (the two products of a move, timed alone) came to {floor_us:,.0f} us a move here"
            if same:
                why += (f", against {same[0]['us_per_sweep'] * same[0]['floor_fraction']:,.0f} us for the same two products timed "
                        "in the Gibbs section of this run: the floor's own timing moves by that much")
            out.append(why + ".")
    return out


def _pt_markdown(p: dict[str, Any]) -> list[str]:
    out = [
        f"\n### Parallel tempering (`jrbm.tempering.pt_chain`, 784 x 500, {p['chains']} runs x {p['replicas']} replicas, k=1)\n",
        common.markdown_table(
            ["ms / sweep (all replicas)", "replica-sweeps / s", "of floor (best)"],
            [[p["ms_per_sweep"], p["replica_sweeps_per_s"], f"{100 * p['floor_fraction']:.0f}% ({100 * p['floor_fraction_best']:.0f}%)"]],
        ),
    ]
    if "sweep_ms" in p:
        out.append(
            f"\nThe same runs with k=10 sweeps a swap round take {p['k10_ms_per_round']:.1f} ms a round, timed in the same rounds: "
            f"a sweep alone takes {p['sweep_ms']:.1f} ms ({100 * p['sweep_floor_fraction']:.0f}% of the {p['floor_ms']:.1f} ms floor), "
            f"the swap round and the step's fixed work {p['rest_ms']:.1f} ms."
        )
    if "own_ms_per_sweep" in p:
        out.append(f" With threefry noise (rng.own_generator) a k=1 round takes {p['own_ms_per_sweep']:.1f} ms.")
    if "joint_ms_per_sweep" in p:
        out.append(
            f"\nWith `swap=\"joint\"` (the joint states (v, h) swapped by their energies, no free energies), a k=1 round takes "
            f"{p['joint_ms_per_sweep']:.1f} ms ({100 * p['joint_floor_fraction']:.0f}% of the floor; best {100 * p['joint_floor_fraction_best']:.0f}%), "
            f"{p['ms_per_sweep'] - p['joint_ms_per_sweep']:.1f} ms less than with the free-energy swaps. Mean swap acceptance over the "
            f"ladder in the timed rounds: {p['swap_rate']:.2f} with free-energy swaps, {p['joint_swap_rate']:.2f} with joint swaps."
        )
    return out
