"""Scaling out with JAX's own machinery: device meshes and sharding annotations.

jrbm has no distribution layer of its own. Two mechanisms of JAX do the work:

* **Ensembles** (:func:`jrbm.train.fit_ensemble`): ``jax.vmap`` over a leading
  model axis of keys, parameters and hyper-parameters, so ``N`` models train
  in one compiled program.
* **Data parallelism** (the ``mesh`` argument of :func:`jrbm.fit`,
  :func:`jrbm.gibbs_chain`, :func:`jrbm.tempering.pt_chain`,
  :func:`jrbm.ais.log_partition`): the minibatch, the persistent chains and
  the AIS runs are split across the devices of a :class:`jax.sharding.Mesh`
  along its ``"data"`` axis, the parameters are replicated, and XLA's SPMD
  partitioner (GSPMD, through ``jax.jit`` and
  ``jax.lax.with_sharding_constraint``) inserts the all-reduce of the gradient
  mean into the compiled step. There is no ``pmap`` and no Python-level
  all-reduce.

Axis names are fixed: :data:`DATA_AXIS` (``"data"``) splits examples, chains
and runs; :data:`MODEL_AXIS` (``"model"``) splits the models of an ensemble
(``jax.vmap(..., spmd_axis_name="model")``). A mesh may have either or both;
on an axis it lacks, the corresponding arrays are not split.

Sharding annotations change where values live, never what is computed. A
function given a mesh draws every layer's noise with the keys' own generator
(:mod:`jrbm.rng`; philox bits, jrbm's default for threefry keys, do not
compile when XLA partitions them). With JAX's default partitionable
``threefry`` keys a sharded run thus draws the same random bits as a
single-device run inside :func:`jrbm.rng.own_generator`, and the results agree
up to the order of floating-point reductions (the gradient's sum over
examples).

The meshes use ``AxisType.Auto`` (GSPMD propagation); a mesh built with
``Explicit`` axes (the default of ``jax.make_mesh``) is used as its ``Auto``
counterpart on the same devices, also inside the user's ``jax.set_mesh`` of it
(``fit`` then moves arrays made in that context to the ``Auto`` mesh).

Multi-core CPUs: XLA runs one large product on all cores, but a vmapped
ensemble of small models does many small products, one core at a time.
Starting Python with ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``
gives JAX one CPU device per core; an ensemble split over
``make_mesh(data=1, model=<cores>)`` then uses them all (the bars-and-stripes
protocol, 26 models of 16 x 16: 1.2x faster on 2 cores than on one device
with jrbm's default noise, and more than twice as fast as one device drawing
threefry noise, ``benchmarks/RESULTS.md``).
Philox keys (``philox2x32``, ``philox4x32``: jax 0.10.2 and later) fail to
compile when split over devices with jax 0.10.2 and 0.12.0.1 ("failed to
legalize ... mulhi", "Unable to convert MHLO to StableHLO"); use JAX's default
``threefry2x32`` keys with a mesh, and trace programs of your own that shard
jrbm's samplers inside :func:`jrbm.rng.own_generator`.

Multi-host: call ``jax.distributed.initialize()`` first on every process, then
build the mesh over ``jax.devices()`` (all processes' devices) and call the
same functions with the same arguments on every process; inputs are placed
with ``jax.make_array_from_callback``, each process supplying its own devices'
slices of arrays that every process holds in full. ``examples/multihost.py``
is a complete script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import jax
import numpy as np
from jax import Array
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jrbm import _checks

DATA_AXIS = "data"
"""The mesh axis along which examples, chains and AIS runs are split."""

MODEL_AXIS = "model"
"""The mesh axis along which the models of an ensemble are split."""


def make_mesh(data: Optional[int] = None, model: int = 1, *, devices: Optional[Sequence[Any]] = None) -> Mesh:
    """A ``(model, data)`` mesh with ``Auto`` axes over ``devices`` (default: ``jax.devices()``, all processes').

    Args:
      data: devices along :data:`DATA_AXIS` (default: all devices not used by ``model``).
      model: devices along :data:`MODEL_AXIS` (for ensembles; default 1).
      devices: the devices to use, in order (default ``jax.devices()``).

    Example:
      >>> import jrbm.parallel
      >>> mesh = jrbm.parallel.make_mesh()
      >>> mesh.axis_names
      ('model', 'data')
    """
    devices = list(jax.devices() if devices is None else devices)
    model = _checks.positive_int("model", model)
    if data is None:
        if len(devices) % model:
            raise ValueError(f"model: {model} does not divide the {len(devices)} devices")
        data = len(devices) // model
    data = _checks.positive_int("data", data)
    if data * model > len(devices):
        raise ValueError(f"a {model} x {data} mesh needs {data * model} devices, only {len(devices)} are available")
    grid = np.array(devices[: data * model], dtype=object).reshape(model, data)
    return Mesh(grid, (MODEL_AXIS, DATA_AXIS), axis_types=(AxisType.Auto, AxisType.Auto))


def check_mesh(mesh: Mesh, *, need: Optional[str] = None) -> Mesh:
    """Validates ``mesh``; returns it with ``Auto`` axes. ``need``: an axis name it must have."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a jax.sharding.Mesh (e.g. jrbm.parallel.make_mesh()), got {type(mesh).__name__}")
    if need is not None and need not in mesh.axis_names:
        raise ValueError(f"mesh: expected an axis named {need!r}, got axes {tuple(mesh.axis_names)}")
    if any(t != AxisType.Auto for t in mesh.axis_types):
        mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return mesh


def axis_size(mesh: Optional[Mesh], name: str) -> int:
    """The number of devices along ``name`` (1 when ``mesh`` is ``None`` or lacks the axis)."""
    if mesh is None or name not in mesh.axis_names:
        return 1
    return int(mesh.shape[name])


def _data(mesh: Mesh) -> Optional[str]:
    return DATA_AXIS if DATA_AXIS in mesh.axis_names else None


def row_spec(mesh: Mesh, ndim: int) -> P:
    """Split the first axis along :data:`DATA_AXIS` (when the mesh has it); ``ndim`` is the array's rank."""
    return P(_data(mesh), *([None] * (ndim - 1))) if ndim >= 1 else P()


def check_divisible(name: str, n: int, mesh: Optional[Mesh], what: str) -> None:
    """Raises unless ``n`` splits evenly over the mesh's :data:`DATA_AXIS`."""
    d = axis_size(mesh, DATA_AXIS)
    if n % d:
        raise ValueError(
            f"{name}: expected a multiple of the {d} devices of the mesh's {DATA_AXIS!r} axis "
            f"(each device takes an equal share of the {what}), got {n}"
        )


def estimator_state_specs(state, mesh: Mesh):
    """Partition specs for an estimator state: its chains split along :data:`DATA_AXIS`, the rest replicated.

    A state declares its own layout with a ``partition_specs(mesh)`` method
    (:class:`jrbm.tempering.PTState` does); otherwise every array of rank >= 2
    (:class:`jrbm.PCD`'s ``(n_chains, *visible.shape)``) is split along its
    first axis and scalars and vectors (step counts, statistics) are
    replicated. Only the layout depends on this rule, never the result.
    """
    own = getattr(state, "partition_specs", None)
    if callable(own):
        return own(mesh)

    def spec(x):
        return row_spec(mesh, x.ndim) if x.ndim >= 2 else P()

    return jax.tree.map(spec, state)


def check_state_divisible(state, mesh: Optional[Mesh], name: str = "estimator state") -> None:
    """Raises unless every axis that :func:`estimator_state_specs` splits over :data:`DATA_AXIS` splits evenly.

    Reads the state's own ``partition_specs`` where it has them, so only the
    axes actually split are counted (a ladder of saved models or a running
    average declared replicated is not). The error names the leaf and the axis.
    """
    if mesh is None or DATA_AXIS not in mesh.axis_names:
        return
    d = axis_size(mesh, DATA_AXIS)

    def check(path, spec, sub):
        for sub_path, x in jax.tree_util.tree_flatten_with_path(sub)[0]:
            for axis, names in enumerate(tuple(spec)[: getattr(x, "ndim", 0)]):
                if DATA_AXIS in (names if isinstance(names, tuple) else (names,)) and x.shape[axis] % d:
                    where = jax.tree_util.keystr(tuple(path) + tuple(sub_path))
                    raise ValueError(
                        f"{name}{where}: expected its axis {axis} (split over the mesh's {DATA_AXIS!r} axis) to be a "
                        f"multiple of the {d} devices (each device takes an equal share of the chains), got {x.shape[axis]}; "
                        f"give the estimator a number of chains (n_chains) that is a multiple of {d}"
                    )

    jax.tree_util.tree_map_with_path(check, estimator_state_specs(state, mesh), state, is_leaf=lambda s: isinstance(s, P))


def constrain(tree, mesh: Optional[Mesh], specs):
    """``jax.lax.with_sharding_constraint`` of every leaf with its spec (a single spec or a matching tree); no-op without a mesh."""
    if mesh is None:
        return tree
    if isinstance(specs, P):
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, NamedSharding(mesh, specs)), tree)
    return jax.tree.map(
        lambda x, s: jax.lax.with_sharding_constraint(x, NamedSharding(mesh, s)), tree, specs,
        is_leaf=lambda s: isinstance(s, P),
    )


def constrain_rows(x: Array, mesh: Optional[Mesh]) -> Array:
    """Constrain ``x`` to be split along its first axis over :data:`DATA_AXIS`; no-op without a mesh."""
    return x if mesh is None else jax.lax.with_sharding_constraint(x, NamedSharding(mesh, row_spec(mesh, x.ndim)))


def _place_leaf(x, sharding: NamedSharding):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_place_leaf(jax.random.key_data(x), sharding), impl=impl)
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    # Multi-process: every process holds the whole array and supplies its own devices' slices.
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def place(tree, mesh: Optional[Mesh], specs=P()):
    """Puts every leaf of ``tree`` on ``mesh`` with its spec (default: replicated); works across processes.

    Keys (typed PRNG key arrays) are placed through their ``key_data``. Without
    a mesh, returns ``tree`` unchanged.
    """
    if mesh is None:
        return tree
    if isinstance(specs, P):
        return jax.tree.map(lambda x: _place_leaf(x, NamedSharding(mesh, specs)), tree)
    return jax.tree.map(lambda x, s: _place_leaf(x, NamedSharding(mesh, s)), tree, specs, is_leaf=lambda s: isinstance(s, P))


def place_rows(x, mesh: Optional[Mesh]):
    """Puts ``x`` on ``mesh`` split along its first axis over :data:`DATA_AXIS`."""
    if mesh is None:
        return x
    return _place_leaf(x, NamedSharding(mesh, row_spec(mesh, np.ndim(x))))


def gather(tree):
    """A host numpy copy of every leaf, also of arrays spread over several processes (typed PRNG keys stay
    keys, of a host copy of their bits)."""

    def get(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):  # a typed key: its bits
            return jax.random.wrap_key_data(get(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if x.is_fully_replicated:  # every process has a full copy
                return np.asarray(x.addressable_data(0))
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(get, tree)


__all__ = [
    "DATA_AXIS",
    "MODEL_AXIS",
    "axis_size",
    "check_mesh",
    "check_state_divisible",
    "constrain",
    "constrain_rows",
    "estimator_state_specs",
    "gather",
    "make_mesh",
    "place",
    "place_rows",
]
