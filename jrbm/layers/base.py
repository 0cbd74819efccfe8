"""The layer interface: what a unit type supplies, and nothing else.

An RBM is a visible layer, a hidden layer and a weight array ``W`` of shape
``visible.shape + hidden.shape`` (:class:`jrbm.RBM`). Its physical energy is

    energy(v, h) = U_vis(v) + U_hid(h) - <s_vis(v), W, s_hid(h)>,

with ``U`` a layer's own energy and ``s`` its coupling statistic, linear in
the state (the state itself for every layer except the tutorial's Gaussian,
whose statistic is ``a x``). Everything a model does reduces to five
per-layer quantities of an *input field* ``I`` (the other layer's statistic
contracted with ``W``, shape ``layer.shape``):

* the cumulant generating function (log-partition given the input)
  ``cgf(I) = log sum_x exp(-U(x) + <I, s(x)>)`` (an integral for continuous
  units), summed over the layer's units, so that summing a layer out of the
  joint gives ``free_energy(v) = U_vis(v) - cgf_hid(I(v))``;
* the conditional mean ``E[x | I]``, with ``E[s(x) | I] = s(E[x | I]) =
  d cgf / d I``;
* a sampler of ``x ~ p(x | I)``, split into ``noise`` (drawn independently of
  the parameters) and ``sample_given_noise``, so a chain can draw the noise
  of many sweeps in one call (jrbm passes ``noise`` the key of
  :func:`jrbm.rng.noise_key`);
* for discrete units, ``unit_states``, the values one unit takes, from which
  :mod:`jrbm.exact` enumerates the layer;
* validation (``check`` of the parameters, ``check_data`` of states), the
  data-matched independent layer ``from_data`` (the initial visible fields
  and the base model of AIS) and the annealing path ``interpolate``.

A layer is a ``NamedTuple`` of per-unit parameter arrays (its leaves), so it
is a pytree: every field a floating array of the unit shape, in one dtype;
constants of a unit type (a count of trials, say) are class attributes, not
fields (:func:`check_interface`). :func:`check_leaves` and
:func:`check_values` are the checks jrbm's own layers build ``check`` and
``check_data`` from. :func:`jrbm.testing.check_layer` certifies a new layer against
enumeration or quadrature; a unit type written in user code needs no change
to jrbm.
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from jrbm import _checks, rng


@runtime_checkable
class Layer(Protocol):
    """The interface every unit type implements (see the module docstring).

    Shapes: a layer's states have shape ``shape`` (``(n,)``, or ``(n, q)``
    for ``n`` Potts units of ``q`` states); every method takes any leading
    batch shape of its states (and inputs), while the layer's own parameters
    have the unit shape only: a stack of layers (a leading axis on every
    leaf, as tempering's replicas) is used through ``jax.vmap``. ``energy``
    and ``cgf`` sum over the layer's units.

    Optional hooks, used where a layer has them:

    * ``affine_bits() -> (offset, scale)``: a two-state unit whose states are
      ``offset + scale * {0, 1}`` (Bernoulli, Spin); :mod:`jrbm.exact` then
      enumerates the layer by meeting in the middle;
    * ``annealed_cgf_difference(base_layer, inputs, beta0, beta1)``: the
      change of the annealed hidden cgf between two inverse temperatures,
      accurate for the short steps of AIS (:func:`jrbm.model.annealed_log_ratio`);
    * ``cgf_difference(inputs0, inputs1)``: ``cgf(inputs1) - cgf(inputs0)``,
      accurate for close inputs (:func:`cgf_difference`);
    * ``check_training_data(name, x)``: the check of data to train on, where
      it is wider than :meth:`check_data` (Bernoulli units train on values in
      ``[0, 1]``).
    """

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one state of the layer."""

    def energy(self, x: Array) -> Array:
        """``U(x)``, summed over units: ``(..., *shape) -> (...)``."""

    def statistic(self, x: Array) -> Array:
        """The coupling statistic ``s(x)``, linear in ``x``: ``(..., *shape) -> (..., *shape)``."""

    def cgf(self, inputs: Array) -> Array:
        """``log sum_x exp(-U(x) + <inputs, s(x)>)`` (or the integral), summed over units: ``(..., *shape) -> (...)``."""

    def mean(self, inputs: Array) -> Array:
        """``E[x | inputs]``, ``(..., *shape)``; ``statistic(mean(I))`` is ``d cgf / d I``."""

    def noise(self, key: Array, batch_shape: tuple[int, ...], dtype) -> Array:
        """The randomness of one draw of ``batch_shape`` states, independent of the parameters."""

    def sample_given_noise(self, inputs: Array, noise: Array) -> Array:
        """A draw of ``x ~ p(x | inputs)`` from :meth:`noise`, in the inputs' dtype."""

    def unit_states(self) -> Optional[Array]:
        """``(k, *shape[1:])``: the values one unit takes, or ``None`` for continuous units."""

    def shifted(self, inputs: Array) -> "Layer":
        """The layer whose energy is ``U(x) - <inputs, s(x)>`` up to a constant (a field added to every unit)."""

    def check(self, name: str) -> None:
        """Raises unless the leaves have the layer's shapes and one floating dtype (static checks)."""

    def check_data(self, name: str, x) -> None:
        """Raises a ``ValueError`` unless the concrete states ``x`` lie in the layer's state space (value checks).

        jrbm calls it with concrete arrays only (:func:`check_data`), never
        under ``jit``; :func:`jrbm.testing.check_layer` also reads the support
        of a continuous unit from it (probing values below and above a state
        it takes)."""

    def from_data(self, data: Optional[Array]) -> "Layer":
        """An independent layer of this type matching ``data``'s marginals (``(N, *shape)``), or a neutral one for ``None``."""

    def interpolate(self, base: "Layer", beta) -> tuple["Layer", Array]:
        """``(layer_beta, scale)``: ``layer_beta``'s energy is ``(1 - beta) U_base + beta U`` up to a constant, and
        ``statistic(x) = scale * layer_beta.statistic(x)`` (``scale`` broadcasts against ``shape``)."""


LAYER_MEMBERS = tuple(name for name in vars(Layer) if not name.startswith("_"))
"""The members every layer has (:class:`Layer`'s); optional hooks that jrbm uses where a layer has them are
listed in :class:`Layer`'s docstring."""


@jax.custom_jvp
def softplus(x: ArrayLike) -> Array:
    """``log(1 + exp(x))`` elementwise, as ``max(x, 0) + log1p(exp(-|x|))``: no overflow, no cancellation.

    The layers' cumulant generating functions and the free energies use it in
    place of ``jax.nn.softplus`` (a ``logaddexp``): the same values, and on a
    CPU 2.9x faster summed over 500 units (one ``exp`` and one ``log1p``, which
    XLA vectorises; ``python -m benchmarks.softplus``).
    Its derivative is ``sigmoid(x)``, also at ``x = 0``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jrbm.layers.base import softplus
      >>> x = jnp.array([-100.0, 0.0, 3.0, 100.0])
      >>> bool(jnp.allclose(softplus(x), jax.nn.softplus(x)))
      True
    """
    x = jnp.asarray(x)
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return softplus(x), jax.nn.sigmoid(x) * x_dot


def linear_energy(x: Array, theta: Array) -> Array:
    """``-sum(x * theta)`` over the unit axes (the last ``theta.ndim`` axes of ``x``): a linear layer's energy.

    Written as a product, so that the gradient of a batch's energies is one
    too (:func:`jrbm.model.free_energy_grad`) and XLA reads a freshly drawn
    ``x`` once instead of drawing it again inside each elementwise consumer;
    at full float32 precision, which GPUs and TPUs do not use for products by
    default.
    """
    return -jnp.tensordot(x, theta, axes=theta.ndim, precision=lax.Precision.HIGHEST)


def noise(key: Array, layer: Layer, batch_shape: tuple[int, ...], dtype) -> Array:
    """:meth:`Layer.noise` drawn with :func:`jrbm.rng.noise_key` of ``key``: how every sampler in jrbm draws a layer's noise.

    Refuses a dtype narrower than float32: bfloat16's uniforms lie on a grid of
    ``2^-7`` (0 with probability 1/128), so a unit of probability 3e-4 would be
    drawn on 23 times as often. float32's grid is ``2^-23``: a discrete unit
    (Bernoulli, Spin, Potts, drawn as ``u < p``) of probability below
    ``2^-23`` is drawn with probability ``2^-23`` (about 1.2e-7) instead, the
    grid's resolution; float64's is ``2^-52``. (The ReLU layers draw from the
    open interval, for their tails.)
    """
    _checks.float32_or_wider(dtype, "jrbm samples with", "whose random numbers are too coarse for unbiased draws")
    return layer.noise(rng.noise_key(key), tuple(batch_shape), dtype)


@rng.own_on_mesh(set_mesh=False)
def sample(key: Array, layer: Layer, inputs: Array) -> Array:
    """``x ~ p(x | inputs)`` for any batch of inputs: :func:`noise` then :meth:`Layer.sample_given_noise`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jrbm.layers import Bernoulli, sample
      >>> sample(jax.random.key(0), Bernoulli(jnp.zeros(3)), jnp.full((2, 3), -50.0)).tolist()
      [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    batch = inputs.shape[: inputs.ndim - len(layer.shape)]
    return layer.sample_given_noise(inputs, noise(key, layer, batch, inputs.dtype))


def sample_replicas(key: Array, layers: Layer, inputs: Array) -> Array:
    """``x[:, m] ~ p_m(x | inputs[:, m])`` for a stack of layers of one type (leaves with a leading replica axis ``M``).

    ``inputs``: ``(n, M, *shape)``. A layer's noise does not depend on its
    parameters, so the noise of every chain and replica is drawn in one call
    from ``key`` (parallel tempering's temperatures, trajectory tempering's
    saved models), then each replica's layer turns its slice into states.
    """
    first = jax.tree.map(lambda a: a[0], layers)
    u = noise(key, first, inputs.shape[:2], inputs.dtype)
    return jax.vmap(lambda layer, i, n: layer.sample_given_noise(i, n), in_axes=(0, 1, 1), out_axes=1)(layers, inputs, u)


def check_data(layer: Layer, name: str, x) -> None:
    """:meth:`Layer.check_data` of concrete ``x``; traced values are not checked.

    jrbm checks values at its public boundary, outside compiled code, and
    calls a layer's own ``check_data`` only through this function (or
    :func:`check_training_data`), so a layer's check only ever sees concrete
    arrays and may convert them with ``np.asarray``.
    """
    if _checks.is_concrete(x):
        layer.check_data(name, x)


def check_training_data(layer: Layer, name: str, x) -> None:
    """Checks data to train on: the layer's ``check_training_data`` where it has one (Bernoulli units take
    values in ``[0, 1]``, the mean-field use of greyscale data), otherwise :meth:`Layer.check_data`;
    concrete ``x`` only, as :func:`check_data`."""
    if not _checks.is_concrete(x):
        return
    own = getattr(layer, "check_training_data", None)
    (own if own is not None else layer.check_data)(name, x)


def cgf_difference(layer: Layer, inputs0: Array, inputs1: Array) -> Array:
    """``cgf(inputs1) - cgf(inputs0)``; a layer may supply ``cgf_difference`` accurate for close inputs (AIS steps)."""
    own = getattr(layer, "cgf_difference", None)
    if own is not None:
        return own(inputs0, inputs1)
    return layer.cgf(inputs1) - layer.cgf(inputs0)


def where_small(small: Array, accurate, plain) -> Array:
    """``jnp.where(small, accurate(), plain())``, evaluating ``plain`` only when some entry is not ``small``.

    For :meth:`cgf_difference` formulas with an accurate branch for close
    inputs: the short steps of an AIS schedule have every entry small, so
    their step pays for one formula, not two (under ``vmap`` both run, as
    with ``jnp.where``). ``accurate`` must be finite where ``small`` is false.
    """
    return lax.cond(jnp.all(small), accurate, lambda: jnp.where(small, accurate(), plain()))


def series_limit(dtype) -> float:
    """``eps^(1/4)`` of ``dtype`` (0.019 in float32, 1.2e-4 in float64): steps ``|d|`` below it may use a
    fourth-order series in ``d``, whose first omitted term, ``O(d^5)``, is then below ``eps`` relative to ``d``."""
    return float(jnp.finfo(dtype).eps) ** 0.25


def is_discrete(layer: Layer) -> bool:
    """True when the layer has finitely many states per unit (:meth:`Layer.unit_states`)."""
    return layer.unit_states() is not None


def n_units(layer: Layer) -> int:
    return int(layer.shape[0])


def log2_states(layer: Layer) -> float:
    """``log2`` of the number of states of a discrete layer (``n log2 k``)."""
    return n_units(layer) * float(np.log2(layer.unit_states().shape[0]))


def enumerate_states(layer: Layer, start, count: int, dtype) -> Array:
    """States ``start .. start + count - 1`` of a discrete layer, in mixed radix (unit ``i`` is digit ``i``, base ``k``)."""
    values = jnp.asarray(layer.unit_states(), dtype)
    k = values.shape[0]
    idx = jnp.asarray(start, jnp.uint32) + jnp.arange(count, dtype=jnp.uint32)
    if k == 2:
        digits = (idx[:, None] >> jnp.arange(n_units(layer), dtype=jnp.uint32)) & 1
    else:
        # a power of 2^32 or more exceeds every uint32 index, so its digit is 0 (cast, it would wrap around)
        raw = [k**i for i in range(n_units(layer))]
        powers = jnp.asarray(np.array([min(p, 2**32 - 1) for p in raw], np.uint32))
        beyond = jnp.asarray(np.array([p >= 2**32 for p in raw]))
        digits = jnp.where(beyond, jnp.uint32(0), (idx[:, None] // powers) % jnp.uint32(k))
    return values[digits.astype(jnp.int32)]


# --- checks shared by the layers --------------------------------------------------------------


def check_interface(layer, name: str) -> None:
    """Refuses, naming what is missing, an object that is not a layer: a class rather than an instance, not a
    ``NamedTuple``, without some of :class:`Layer`'s members, or with a field that is not a floating array
    (constants of a unit type, such as a count of trials, belong in class attributes)."""
    if isinstance(layer, type):
        raise TypeError(f"{name}: expected a layer instance, got the class {layer.__name__} itself; make one, e.g. {layer.__name__}.init(n_units)")
    if not hasattr(layer, "_fields"):
        raise TypeError(f"{name}: expected a layer (a NamedTuple such as jrbm.layers.Bernoulli), got {type(layer).__name__}")
    missing = [m for m in LAYER_MEMBERS if not hasattr(layer, m)]
    if missing:
        raise TypeError(f"{name}: expected a layer with every member of jrbm.layers.Layer, got a {type(layer).__name__} without {', '.join(missing)}")
    for field in layer._fields:
        for leaf in jax.tree.leaves(getattr(layer, field)):
            if not hasattr(leaf, "dtype") or not jnp.issubdtype(leaf.dtype, jnp.floating):
                raise TypeError(
                    f"{name}.{field}: expected a floating array (a layer's fields are its per-unit parameters; constants "
                    f"such as a count of trials belong in class attributes), got {getattr(leaf, 'dtype', type(leaf).__name__)}"
                )


def check_leaves(layer, name: str, *, shape: Optional[tuple] = None, ndim: int = 1) -> None:
    """Every leaf a floating array of one shape (``shape``, or that of the first leaf, of rank ``ndim``) and one dtype."""
    fields = layer._fields
    first = getattr(layer, fields[0])
    want = tuple(getattr(first, "shape", ())) if shape is None else tuple(shape)
    if shape is None and len(want) != ndim:
        raise ValueError(f"{name}.{fields[0]}: expected {ndim} dimension(s) for a {type(layer).__name__} layer, got shape {want}")
    if 0 in want:
        raise ValueError(f"{name}.{fields[0]}: expected at least one unit (and state) in every dimension, got shape {want}")
    dtype = getattr(first, "dtype", None)
    for field in fields:
        leaf = getattr(layer, field)
        if not hasattr(leaf, "dtype") or not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(f"{name}.{field}: expected a floating array, got {getattr(leaf, 'dtype', type(leaf).__name__)}")
        if tuple(leaf.shape) != want:
            raise ValueError(f"{name}.{field}: expected shape {want}, got {tuple(leaf.shape)}")
        if leaf.dtype != dtype:
            raise TypeError(f"{name}.{field}: expected dtype {dtype} like {name}.{fields[0]}, got {leaf.dtype}")


def log_scale_limit(dtype) -> float:
    """The largest ``|log scale|`` whose ``exp(2 |value|)`` is finite in ``dtype`` (44.36 in float32, 354.9 in float64)."""
    return float(np.log(np.finfo(dtype).max)) / 2


def check_log_scales(layer, name: str, fields: tuple[str, ...]) -> None:
    """Refuses a log-scale leaf (``log_sigma``, ``log_gamma``) whose ``exp(2 |value|)`` overflows its dtype.

    The layers use ``exp(+-value)`` and ``exp(-2 value)``; beyond
    ``log(finfo.max) / 2`` (44.4 in float32, 354.9 in float64) they are
    infinite and every result is NaN. Traced leaves are not checked.
    """
    for field in fields:
        leaf = getattr(layer, field)
        if not _checks.is_concrete(leaf):
            continue
        a = np.asarray(leaf)
        limit = log_scale_limit(a.dtype)
        bad = np.isfinite(a) & (np.abs(a) > limit)  # non-finite values: model.check's own message
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}.{field}: expected values within +-{limit:.4g} (where exp(2 |{field}|) is finite in {a.dtype}) "
                f"for a {type(layer).__name__}, got {a[idx]} at index {idx}"
            )


def check_values(name: str, x, ok, expected: str, layer_name: str, hint: str = "") -> None:
    """Raises naming the first entry of concrete ``x`` where the boolean array ``ok(x)`` is false."""
    if not _checks.is_concrete(x):
        return
    a = np.asarray(x)
    bad = ~np.asarray(ok(a))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: expected {expected} for a {layer_name} layer, got {a[idx]} at index {idx}{hint}")


def zeros(shape, dtype=None, names: tuple[str, ...] = ("n", "q")) -> Array:
    """Zero fields of ``shape`` for a layer's ``init``; each size a positive int, named by ``names`` in errors."""
    shape = tuple(_checks.positive_int(name, d) for name, d in zip(names, shape))
    dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
    return jnp.zeros(shape, dtype)


def data_mean(layer, data) -> Array:
    """The mean state of ``data`` (``(..., *layer.shape)``) in the layer's dtype."""
    dtype = jax.tree.leaves(layer)[0].dtype
    return jnp.mean(jnp.asarray(data, dtype).reshape((-1,) + tuple(layer.shape)), axis=0)


__all__ = ["Layer", "LAYER_MEMBERS", "softplus", "sample", "check_data", "check_training_data", "cgf_difference", "is_discrete",
           "enumerate_states", "check_interface", "check_leaves", "check_values", "check_log_scales"]
