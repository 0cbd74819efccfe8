"""Data-parallel RBM training on every device of one or several hosts, with ``jax.distributed``.

jrbm adds no distribution layer: ``jrbm.fit(..., mesh=mesh)`` splits each
minibatch and the persistent chains along the mesh's ``"data"`` axis,
replicates the parameters, and XLA (GSPMD) all-reduces the gradient inside the
compiled step. On several hosts the only extra step is
``jax.distributed.initialize()`` before anything else touches JAX; then
``jax.devices()`` lists every process's devices, the mesh spans them all, and
every process runs this same script with the same arguments, the same data
and the same seeds (multi-controller SPMD).

Run it

* on one machine, all local devices (on a CPU, fake several)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/multihost.py

* on N hosts (or N processes of one machine), once per process::

    python examples/multihost.py --coordinator HOST0:12345 --num-processes N --process-id I

  On Cloud TPU, or under SLURM / Open MPI, ``jax.distributed.initialize()``
  finds these values itself: pass ``--auto``.

Only process 0 prints and writes files. ``--check`` also runs the same
training on one local device of each process and prints the largest
difference to the sharded run.
"""

from __future__ import annotations

import argparse
import json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coordinator", help="HOST:PORT of process 0 (multi-process runs)")
    ap.add_argument("--num-processes", type=int, default=1)
    ap.add_argument("--process-id", type=int, default=0)
    ap.add_argument("--auto", action="store_true", help="jax.distributed.initialize() with no arguments (TPU, SLURM, MPI)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch-per-device", type=int, default=16)
    ap.add_argument("--check", action="store_true", help="compare with a single-device run")
    ap.add_argument("--float64", action="store_true", help="train in float64 (jax_enable_x64)")
    ap.add_argument("--out", help="write the history as JSON here (process 0)")
    args = ap.parse_args(argv)

    import jax

    if args.coordinator or args.auto:
        # CPU devices of different processes talk through gloo (GPUs and TPUs ignore this setting).
        # Nothing may touch a JAX backend before initialize().
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        if args.auto:
            jax.distributed.initialize()
        else:
            jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)

    if args.float64:
        jax.config.update("jax_enable_x64", True)

    import numpy as np
    import optax

    import jrbm
    import jrbm.parallel

    lead = jax.process_index() == 0
    mesh = jrbm.parallel.make_mesh()  # ("model": 1, "data": every device of every process)
    n_dev = mesh.shape["data"]
    data = np.asarray(jrbm.datasets.digits().train, np.float64 if args.float64 else np.float32)  # the same on every process
    params = jrbm.init_bernoulli(jax.random.key(0), data.shape[1], args.hidden, data=data, dtype=data.dtype)
    settings = dict(
        optimizer=optax.sgd(0.05, momentum=0.9),
        estimator=jrbm.PCD(1, 8 * n_dev),  # chains split over the devices too
        epochs=args.epochs,
        batch_size=args.batch_per_device * n_dev,
        progress=False,
    )
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with Python floats
        trained, history = jrbm.fit(jax.random.key(1), params, data, mesh=mesh, **settings)
    if lead:
        print(f"processes {jax.process_count()}, devices {n_dev} ({jax.devices()[0].platform}), mesh {dict(mesh.shape)}")
        for epoch, err in zip(history["epoch"], history["recon_error"]):
            print(f"epoch {epoch}: reconstruction error {err:.5f}")
        print("params.W sharding:", trained.W.sharding.spec, "(replicated)")
    record = {"processes": jax.process_count(), "devices": n_dev, **history}
    if args.check:
        # Every process trains the same model on one of its own devices; the sharded
        # parameters are replicated, so each process holds a full copy to compare. A run
        # with a mesh draws its noise with the key's own generator (jrbm.rng), so this one does too.
        with jax.numpy_dtype_promotion("standard"), jax.default_device(jax.local_devices()[0]), jrbm.rng.own_generator():
            single, _ = jrbm.fit(jax.random.key(1), params, data, **settings)
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(trained, single))
        record["max_abs_diff_to_single_device"] = diff
        if lead:
            print(f"largest difference to the single-device run: {diff:.3g}")
    if lead and args.out:
        with open(args.out, "w") as f:
            json.dump(record, f)


if __name__ == "__main__":
    main()
