"""Models as pytrees: :class:`RBM` pairs any two layers; the tutorial's two models keep their names.

An RBM is a visible layer, a hidden layer and a weight array with
``W.shape == visible.shape + hidden.shape`` (:mod:`jrbm.layers`). Every model
type exposes ``visible``, ``hidden`` and ``W`` and rebuilds itself from them
with ``assemble``, so the model functions are written once against the layer
interface and return gradients shaped like the parameters they were given.

* :class:`RBM` ``(visible, hidden, W)``: any pairing.
* :class:`BernoulliRBM` ``(W, b, c)``: Cheng section 2, the same model as
  ``RBM(Bernoulli(b), Bernoulli(c), W)``.
* :class:`GaussianRBM` ``(W, b, c, log_sigma)``: Cheng section 3 with one
  ``a_i = exp(-log_sigma_i)`` per visible unit (equal entries give the
  tutorial's single ``a`` of eq. 3.3), the same model as
  ``RBM(Gaussian(b, log_sigma), Bernoulli(c), W)``.

The two flat types keep the leaf names of the tutorial (``b``, ``c``,
``log_sigma``) and the checkpoint format of earlier releases; :func:`as_rbm`
turns either into the general form.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jrbm import _checks
from jrbm.layers import Bernoulli, Gaussian, Layer
from jrbm.layers import base as layer_base

PRNGKey = Array


class Model(Protocol):
    """What the model functions need of a parameter pytree."""

    @property
    def visible(self) -> Layer: ...

    @property
    def hidden(self) -> Layer: ...

    W: Array

    def assemble(self, visible: Layer, hidden: Layer, W: Array) -> "Model":
        """A model of the same type from the parts (for gradients shaped like the parameters)."""


def _check_W(name: str, W, shape: tuple, dtype) -> None:
    if not hasattr(W, "dtype") or not jnp.issubdtype(W.dtype, jnp.floating):
        raise TypeError(f"{name}.W: expected a floating dtype, got {getattr(W, 'dtype', type(W).__name__)}")
    if tuple(W.shape) != tuple(shape):
        raise ValueError(f"{name}.W: expected shape visible.shape + hidden.shape = {tuple(shape)}, got {tuple(W.shape)}")
    if W.dtype != dtype:
        raise TypeError(f"{name}.W: expected dtype {dtype} like the layers' fields, got {W.dtype}")


def check_layers(name: str, visible, hidden):
    """Checks both layers (:meth:`jrbm.layers.Layer.check`); returns their common dtype."""
    for side, layer in (("visible", visible), ("hidden", hidden)):
        layer_base.check_interface(layer, f"{name}.{side}")
        layer.check(f"{name}.{side}")
    dtype = jax.tree.leaves(visible)[0].dtype
    hidden_dtype = jax.tree.leaves(hidden)[0].dtype
    if hidden_dtype != dtype:
        raise TypeError(f"{name}.hidden: expected dtype {dtype} like {name}.visible, got {hidden_dtype}")
    return dtype


class RBM(NamedTuple):
    """Any visible layer with any hidden layer: ``energy = U_vis(v) + U_hid(h) - <s_vis(v), W, s_hid(h)>``.

    Attributes:
      visible: a layer (:mod:`jrbm.layers`), states of shape ``visible.shape``.
      hidden: a layer.
      W: weights of shape ``visible.shape + hidden.shape``.

    Example:
      >>> import jax, jrbm
      >>> from jrbm.layers import Potts, ReLU
      >>> params = jrbm.init(jax.random.key(0), Potts.init(5, 3), ReLU.init(4))
      >>> params.W.shape
      (5, 3, 4)
    """

    visible: Any
    hidden: Any
    W: Array

    def assemble(self, visible, hidden, W) -> "RBM":
        return RBM(visible, hidden, W)

    def check(self, name: str = "params") -> None:
        dtype = check_layers(name, self.visible, self.hidden)
        _check_W(name, self.W, self.visible.shape + self.hidden.shape, dtype)


class BernoulliRBM(NamedTuple):
    """BB-RBM parameters (Cheng section 2, eq. 2.3): ``RBM(Bernoulli(b), Bernoulli(c), W)``.

    Attributes:
      W: ``(n_visible, n_hidden)`` weights, the tutorial's ``w_ij``.
      b: ``(n_visible,)`` visible bias.
      c: ``(n_hidden,)`` hidden bias.
    """

    W: Array
    b: Array
    c: Array

    @property
    def visible(self) -> Bernoulli:
        return Bernoulli(self.b)

    @property
    def hidden(self) -> Bernoulli:
        return Bernoulli(self.c)

    def assemble(self, visible: Bernoulli, hidden: Bernoulli, W: Array) -> "BernoulliRBM":
        return BernoulliRBM(W, visible.theta, hidden.theta)

    def check(self, name: str = "params") -> None:
        _check_flat(self, name)


class GaussianRBM(NamedTuple):
    """GB-RBM parameters (Cheng section 3, eq. 3.3 with one ``a_i`` per unit):
    ``RBM(Gaussian(b, log_sigma), Bernoulli(c), W)``.

    Attributes:
      W: ``(n_visible, n_hidden)`` weights.
      b: ``(n_visible,)`` visible bias: the mean of ``v`` when ``h = 0``.
      c: ``(n_hidden,)`` hidden bias.
      log_sigma: ``(n_visible,)`` log standard deviation of ``v_i | h``; the
        tutorial's ``a`` is ``exp(-log_sigma)``.
    """

    W: Array
    b: Array
    c: Array
    log_sigma: Array

    @property
    def visible(self) -> Gaussian:
        return Gaussian(self.b, self.log_sigma)

    @property
    def hidden(self) -> Bernoulli:
        return Bernoulli(self.c)

    def assemble(self, visible: Gaussian, hidden: Bernoulli, W: Array) -> "GaussianRBM":
        return GaussianRBM(W, visible.b, hidden.theta, visible.log_sigma)

    def check(self, name: str = "params") -> None:
        _check_flat(self, name)


def _check_flat(params, name: str) -> None:
    """The checks of the tutorial's flat types, naming their leaves ``b``, ``c``, ``log_sigma``."""
    for field in params._fields:
        leaf = getattr(params, field)
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(f"{name}.{field}: expected an array, got {type(leaf).__name__}; pass jnp.asarray(...)")
    W = params.W
    if W.ndim != 2:
        raise ValueError(
            f"{name}.W: expected shape (n_visible, n_hidden), got shape {W.shape}; "
            "a stack of models is handled by jax.vmap (and saved with jrbm.io.save_tree, or one model at a time)"
        )
    if not jnp.issubdtype(W.dtype, jnp.floating):
        raise TypeError(f"{name}.W: expected a floating dtype, got {W.dtype}")
    n_visible, n_hidden = W.shape
    if n_visible == 0 or n_hidden == 0:
        raise ValueError(f"{name}.W: expected at least one visible and one hidden unit, got shape {tuple(W.shape)}")
    expected = {"b": (n_visible,), "c": (n_hidden,), "log_sigma": (n_visible,)}
    for field in params._fields[1:]:
        leaf = getattr(params, field)
        if getattr(leaf, "shape", None) != expected[field]:
            raise ValueError(
                f"{name}.{field}: expected shape {expected[field]} to match W of shape {tuple(W.shape)}, "
                f"got {leaf.shape}"
            )
        if leaf.dtype != W.dtype:
            raise TypeError(f"{name}.{field}: expected dtype {W.dtype} like {name}.W, got {leaf.dtype}")
    if "log_sigma" in params._fields:
        layer_base.check_log_scales(params, name, ("log_sigma",))


MODEL_TYPES = (RBM, BernoulliRBM, GaussianRBM)


def as_rbm(params) -> RBM:
    """The general form ``RBM(visible, hidden, W)`` of any model.

    Example:
      >>> import jax, jrbm
      >>> rbm = jrbm.as_rbm(jrbm.init_bernoulli(jax.random.key(0), 4, 3))
      >>> type(rbm.visible).__name__, rbm.W.shape
      ('Bernoulli', (4, 3))
    """
    check_type(params)
    return RBM(params.visible, params.hidden, params.W)


def check_type(params, name: str = "params") -> None:
    """Raises ``TypeError`` unless ``params`` is a model (has ``visible``, ``hidden``, ``W`` and ``assemble``)."""
    if not all(hasattr(params, attr) for attr in ("visible", "hidden", "W", "assemble")):
        names = ", ".join(t.__name__ for t in MODEL_TYPES)
        raise TypeError(f"{name}: expected one of {names} (a model with visible, hidden and W), got {type(params).__name__}")


def _dtype(dtype):
    """``dtype`` checked (default: JAX's default float); float64 without ``jax_enable_x64`` is refused, not truncated."""
    if dtype is None:
        return jnp.zeros(()).dtype
    out = _checks.float_dtype("dtype", dtype)
    if out.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"dtype: {out} needs jax_enable_x64, which is off; enable it with "
            "jax.config.update('jax_enable_x64', True) before creating arrays, or use float32"
        )
    return out


def init(
    key: PRNGKey,
    visible: Layer,
    hidden: Layer,
    *,
    data: Optional[ArrayLike] = None,
    weight_std: float = 0.01,
) -> RBM:
    """An RBM pairing two layers: ``W ~ Normal(0, weight_std^2)``, the visible fields from ``data``.

    ``visible`` and ``hidden`` are layers giving the shapes, dtype and initial
    fields (``jrbm.layers.Potts.init(n, q)``, ...). With ``data``
    (``(n_examples, *visible.shape)``), the visible layer becomes
    ``visible.from_data(data)``: the independent layer with the data's
    marginals (Hinton's practical guide, section 8). For a
    :class:`~jrbm.layers.Gaussian` layer that is the data's mean and standard
    deviation, replacing the layer's own ``sigma``; :func:`init_gaussian`
    takes the mean from the data and keeps its ``sigma`` argument (a start
    below the data's standard deviation is what lets learned variances move
    away from the best Gaussian).

    Example:
      >>> import jax, jrbm
      >>> from jrbm.layers import Bernoulli, Spin
      >>> params = jrbm.init(jax.random.key(0), Spin.init(6), Bernoulli.init(3))
      >>> params.W.shape, type(params.hidden).__name__
      ((6, 3), 'Bernoulli')
    """
    _checks.key("key", key)
    dtype = check_layers("init", visible, hidden)
    if data is not None:
        data = _checks.data_batch("data", data, visible, dtype)
        layer_base.check_training_data(visible, "data", data)
        visible = visible.from_data(data)
    W = _finite_weights(_weight_std(weight_std) * jax.random.normal(key, visible.shape + hidden.shape, dtype), weight_std)
    return RBM(visible, hidden, W)


def _finite_weights(W, weight_std):
    """``W``, refused naming ``weight_std`` when the scale overflowed its dtype (concrete values only)."""
    if _checks.is_concrete(W) and not bool(jnp.all(jnp.isfinite(W))):
        raise ValueError(f"weight_std: expected a scale whose weights are finite in {W.dtype}, got {weight_std!r}")
    return W


def _weight_std(value):
    """``weight_std`` checked when concrete: a finite number >= 0 (a traced one, under vmap, is passed on)."""
    if _checks.is_concrete(value):
        a = np.asarray(value)
        if a.shape != () or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or not (np.isfinite(a) and a >= 0):
            raise ValueError(f"weight_std: expected a finite number >= 0, got {value!r}")
    return value


def _init_common(key, n_visible, n_hidden, data, weight_std, dtype):
    """Checked sizes, dtype, ``W ~ N(0, weight_std^2)``, ``c = 0``, and the data's column means (or None)."""
    _checks.key("key", key)
    n_visible = _checks.positive_int("n_visible", n_visible)
    n_hidden = _checks.positive_int("n_hidden", n_hidden)
    dtype = _dtype(dtype)
    W = _finite_weights(_weight_std(weight_std) * jax.random.normal(key, (n_visible, n_hidden), dtype), weight_std)
    mean = None
    if data is not None:
        data = _checks.data_matrix("data", data, n_visible, dtype)
        if not _checks.is_concrete(data):
            raise TypeError("data: expected concrete values (init_bernoulli and init_gaussian read the data's means "
                            "with numpy), got a traced array; under jit or vmap use jrbm.init with jrbm.layers")
        mean = np.asarray(data, np.float64).mean(axis=0)
    return n_visible, dtype, W, jnp.zeros((n_hidden,), dtype), mean


def init_bernoulli(
    key: PRNGKey,
    n_visible: int,
    n_hidden: int,
    *,
    data: Optional[ArrayLike] = None,
    weight_std: float = 0.01,
    dtype=None,
) -> BernoulliRBM:
    """Initialises a BB-RBM as Hinton's practical guide (section 8) advises.

    ``W ~ Normal(0, weight_std^2)``, ``c = 0``, and ``b = log(p / (1 - p))``
    where ``p`` is the mean of ``data`` clipped to ``[1e-3, 1 - 1e-3]``
    (``b = 0`` without data), so that the initial model already has the
    data's marginals.

    Example:
      >>> import jax, jrbm
      >>> params = jrbm.init_bernoulli(jax.random.key(0), 16, 8)
      >>> params.W.shape
      (16, 8)
    """
    n_visible, dtype, W, c, mean = _init_common(key, n_visible, n_hidden, data, weight_std, dtype)
    if data is not None:  # shape and finiteness checked by _init_common
        Bernoulli(jnp.zeros(1)).check_training_data("data", np.asarray(data))
    if mean is None:
        b = jnp.zeros((n_visible,), dtype)
    else:
        p = np.clip(mean, 1e-3, 1 - 1e-3)
        b = jnp.asarray(np.log(p) - np.log1p(-p), dtype)
    return BernoulliRBM(W, b, c)


def init_gaussian(
    key: PRNGKey,
    n_visible: int,
    n_hidden: int,
    *,
    data: Optional[ArrayLike] = None,
    sigma: float | ArrayLike = 1.0,
    weight_std: float = 0.01,
    dtype=None,
) -> GaussianRBM:
    """Initialises a GB-RBM.

    ``W ~ Normal(0, weight_std^2)``, ``c = 0``, ``b`` the mean of ``data``
    (0 without data) and ``log_sigma = log(sigma)`` (a scalar or one value per
    visible unit). With standardised data, ``sigma = 1`` is the usual choice
    and is kept fixed during training (the tutorial's "a as a hyper-parameter").

    Example:
      >>> import jax, jrbm
      >>> params = jrbm.init_gaussian(jax.random.key(0), 2, 4, sigma=0.5)
      >>> params.log_sigma.shape
      (2,)
    """
    n_visible, dtype, W, c, mean = _init_common(key, n_visible, n_hidden, data, weight_std, dtype)
    if isinstance(sigma, (bool, np.bool_, str)):
        raise TypeError(f"sigma: expected a positive number or one per visible unit, got {type(sigma).__name__} {sigma!r}")
    try:
        sigma = np.asarray(sigma, np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"sigma: expected a positive number or one per visible unit, got {sigma!r}") from None
    if sigma.shape not in ((), (1,), (n_visible,)):
        raise ValueError(f"sigma: expected a scalar or {n_visible} values (one per visible unit), got shape {sigma.shape}")
    sigma = np.broadcast_to(sigma, (n_visible,))
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError(f"sigma: expected positive finite values, got {sigma}")
    limit = layer_base.log_scale_limit(dtype)  # as the Gaussian layer's check of log_sigma
    if np.any(np.abs(np.log(sigma)) > limit):
        raise ValueError(f"sigma: expected values with |log sigma| <= {limit:.4g}, finite to square in {np.dtype(dtype)}, got {sigma}")
    b = jnp.zeros((n_visible,), dtype) if mean is None else jnp.asarray(mean, dtype)
    return GaussianRBM(W, b, c, jnp.asarray(np.log(sigma), dtype))
