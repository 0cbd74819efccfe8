"""Pictures of a model and its training: filters, samples, learning curves (matplotlib).

Every function returns a ``matplotlib.figure.Figure`` and never calls
``pyplot.show``, so it works headless; :mod:`jrbm.cli` saves them as PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np


def _figure(*args, **kwargs):
    from matplotlib.figure import Figure

    return Figure(*args, **kwargs)


def image_grid(
    images: np.ndarray,
    image_shape: Optional[Sequence[int]] = None,
    *,
    title: str = "",
    cmap: str = "gray",
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
    colorbar: str = "",
):
    """Tiles ``(n, n_pixels)`` rows as images in a near-square grid, on one colour scale.

    ``image_shape`` defaults to a square when ``n_pixels`` is a perfect
    square; otherwise each row is drawn as a one-pixel-high strip. The scale
    runs from ``vmin`` to ``vmax`` (default: the images' range) for every
    tile; ``colorbar`` labels a colour bar for it. The figure is at most
    :data:`MAX_INCHES` on its longer side, whatever the tiles' shape.

    Raises:
      ValueError: ``images`` not a non-empty 2-D array of finite numbers, an
        ``image_shape`` that does not hold ``n_pixels``, or ``vmin`` above
        ``vmax``.
    """
    try:
        images = np.asarray(images, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"images: expected an array of numbers (n_images, n_pixels), got {type(images).__name__}: {e}") from None
    if images.ndim != 2 or 0 in images.shape:
        raise ValueError(f"images: expected a non-empty 2-D array (n_images, n_pixels), got shape {images.shape}")
    bad = ~np.isfinite(images)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"images: expected finite values, got {images[idx]} at index {idx} ({int(bad.sum())} non-finite entries)")
    n, d = images.shape
    if image_shape is None:
        side = math.isqrt(d)
        image_shape = (side, side) if side * side == d else (1, d)
    image_shape = _image_shape(image_shape, d)
    vmin = float(images.min()) if vmin is None else _finite_float("vmin", vmin)
    vmax = float(images.max()) if vmax is None else _finite_float("vmax", vmax)
    if vmin > vmax:
        raise ValueError(f"vmin, vmax: expected vmin <= vmax, got vmin={vmin} and vmax={vmax}")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    width, height = 1.2 * cols + (1.2 if colorbar else 0), 1.2 * rows * image_shape[0] / image_shape[1] + 0.6
    shrink = min(1.0, MAX_INCHES / max(width, height))
    fig = _figure(figsize=(max(width * shrink, 1.0), max(height * shrink, 1.0)))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    import matplotlib

    colours = matplotlib.colormaps.get_cmap(cmap).with_extremes(bad="white")  # the gaps between tiles and the empty tiles
    shown = ax.imshow(_mosaic(images, image_shape, rows, cols), cmap=colours, interpolation="nearest", vmin=vmin, vmax=vmax)
    if title:
        fig.suptitle(title)
    if colorbar:
        fig.colorbar(shown, ax=ax, shrink=0.8, label=colorbar)
    return fig


MAX_INCHES = 20.0
"""The longest side of a figure of :func:`image_grid`, in inches (a tall strip of tiles is scaled down to it)."""


def _finite_float(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite number, got {type(value).__name__} {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name}: expected a finite number, got {out}")
    return out


def _image_shape(image_shape, d: int) -> tuple[int, int]:
    """``image_shape`` checked: two positive ints whose product is the number of pixels ``d``."""
    if isinstance(image_shape, np.ndarray):
        image_shape = tuple(image_shape.tolist())
    ok = isinstance(image_shape, Sequence) and len(image_shape) == 2 and all(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0 for x in image_shape)
    if not ok or image_shape[0] * image_shape[1] != d:
        raise ValueError(f"image_shape: expected (height, width) with height * width = {d} pixels, got {image_shape!r}")
    return int(image_shape[0]), int(image_shape[1])


def _mosaic(images: np.ndarray, image_shape: Sequence[int], rows: int, cols: int) -> np.ndarray:
    """The images tiled row by row into one array, with NaN in the gaps (an eighth of a tile, at least one
    pixel) and in unused tiles: drawn in one ``imshow``, a fraction of the time of one subplot per tile."""
    h, w = image_shape
    gap = max(1, min(h, w) // 8)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image.reshape(h, w)
    return out


def filters(params, image_shape: Optional[Sequence[int]] = None, *, max_filters: int = 100):
    """The weights to each hidden unit as an image, on one symmetric colour scale with a colour bar.

    A tile holds every weight from the visible layer to one hidden unit, in
    the visible layer's shape: ``n`` values for ``n`` units, an ``(n, q)``
    table for Potts units (their default ``image_shape``). For a Potts
    hidden layer each tile is one (hidden unit, state) pair, unit by unit.
    ``max_filters`` tiles at most are drawn.
    """
    from jrbm import _checks
    from jrbm.model import check

    check(params)
    max_filters = _checks.positive_int("max_filters", max_filters)
    vis, hid = tuple(params.visible.shape), tuple(params.hidden.shape)
    n_vis = math.prod(vis)
    W = np.asarray(params.W, np.float64).reshape(n_vis, -1)[:, :max_filters].T  # one row per hidden unit (and state)
    if image_shape is None and len(vis) == 2:
        image_shape = vis
    top = float(np.abs(W).max()) or 1.0
    what = "(hidden unit, state) pairs" if len(hid) > 1 else "hidden units"
    return image_grid(
        W, image_shape, title=f"Filters: the weights to each of the first {W.shape[0]} {what}",
        cmap="RdBu_r", vmin=-top, vmax=top, colorbar="weight from each visible unit" + (" and state" if len(vis) > 1 else ""),
    )


_CURVES = {
    "recon_error": ("Reconstruction error", "mean squared error per visible unit", "training examples (fixed subset)"),
    "free_energy_gap": ("Free-energy gap (overfitting if it grows)", "validation minus training\nmean free energy (nats)", None),
}


def learning_curves(history: dict):
    """The training monitors against the epoch, one labelled panel each (a history of :func:`jrbm.fit`).

    Reconstruction error; the free-energy gap (validation minus training,
    when there was validation data); the log-likelihood of the training and
    validation data in one panel, with AIS's standard error as error bars,
    whenever it was measured. Epochs without a value are skipped; a history
    with no finite value at all is drawn as one panel that says so.
    """
    if not isinstance(history, dict) or "epoch" not in history:
        raise ValueError(f"history: expected the dict of jrbm.fit with an 'epoch' list, got {type(history).__name__}"
                         + (f" with keys {sorted(history)}" if isinstance(history, dict) else ""))
    epochs = np.asarray(history["epoch"])
    for name, values in history.items():
        if np.ndim(values) != 1 or len(values) != len(epochs):
            raise ValueError(f"history[{name!r}]: expected one value per epoch ({len(epochs)}), got shape {np.shape(values)}")

    def series(name):
        try:
            y = np.asarray(history.get(name, []), float)
        except (TypeError, ValueError):
            raise ValueError(f"history[{name!r}]: expected numbers, got {history[name][:3]!r}...") from None
        return y if y.size and np.isfinite(y).any() else None

    for name in history:
        series(name)

    panels = [name for name in _CURVES if series(name) is not None]
    likelihood = [name for name in ("log_likelihood", "val_log_likelihood") if series(name) is not None]
    others = [k for k in history if k not in ("epoch", "log_z_std", *_CURVES, "log_likelihood", "val_log_likelihood")
              and series(k) is not None]
    n = len(panels) + bool(likelihood) + len(others)
    fig = _figure(figsize=(4.3 * max(n, 1), 3.4))
    if n == 0:
        ax = fig.add_subplot(1, 1, 1)
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"No monitor recorded a finite value in {len(epochs)} epoch(s)", ha="center", va="center")
        return fig
    i = 0
    for name in panels:
        i += 1
        ax = fig.add_subplot(1, n, i)
        y = series(name)
        ok = np.isfinite(y)
        title, ylabel, label = _CURVES[name]
        ax.plot(epochs[ok], y[ok], marker="o" if ok.sum() < 30 else None, label=label)
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        if label:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    if likelihood:
        i += 1
        ax = fig.add_subplot(1, n, i)
        err = series("log_z_std")
        for name, label in (("log_likelihood", "training data"), ("val_log_likelihood", "validation data")):
            y = series(name)
            if y is None:
                continue
            ok = np.isfinite(y)
            ax.errorbar(epochs[ok], y[ok], yerr=None if err is None else err[ok], marker="o", capsize=3, label=label)
        ax.set(title="Log-likelihood" + (" (AIS, +- its standard error)" if err is not None else " (exact)"),
               xlabel="epoch", ylabel="nats per example")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    for name in others:
        i += 1
        ax = fig.add_subplot(1, n, i)
        y = series(name)
        ok = np.isfinite(y)
        ax.plot(epochs[ok], y[ok], marker="o" if ok.sum() < 30 else None)
        ax.set(title=name.replace("_", " "), xlabel="epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def density_2d(params, data: np.ndarray, *, grid: int = 200):
    """Contours of a 2-D model's log-density ``-free_energy`` over a scatter of ``data``.

    The grid reaches one unit past the data on every side, so the visible
    layer must take any real value (Gaussian, dReLU); other layers are refused.
    """
    import jax.numpy as jnp

    from jrbm import _checks
    from jrbm.layers import base as layer_base
    from jrbm.model import check, free_energy

    check(params)
    if params.visible.shape != (2,):
        raise ValueError(f"params: expected a model of 2 visible units, got visible shape {params.visible.shape}")
    data = np.asarray(_checks.data_matrix("data", data, 2))
    grid = _checks.positive_int("grid", grid)
    if grid < 2:
        raise ValueError(f"grid: expected at least 2 points per axis, got {grid}")
    lo, hi = data.min(0) - 1, data.max(0) + 1
    xs, ys = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    gx, gy = np.meshgrid(xs, ys)
    pts = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1), params.W.dtype)
    try:
        layer_base.check_data(params.visible, "v", np.array([[-1e3, -1e3], [1e3, 1e3], [-0.5, 0.5]], pts.dtype))
    except ValueError:
        raise ValueError(
            f"params: expected a visible layer taking any real value (Gaussian, dReLU), got {type(params.visible).__name__}, "
            "whose states do not cover the grid around the data"
        ) from None
    logf = np.asarray(-free_energy(params, pts)).reshape(gx.shape)
    fig = _figure(figsize=(6, 5))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(data[:, 0], data[:, 1], s=2, alpha=0.3, color="gray", label="data")
    lines = ax.contour(gx, gy, logf - logf.max(), levels=np.linspace(-12, 0, 13))
    fig.colorbar(lines, ax=ax, label="log-density minus its maximum (nats)")
    ax.set(title="Model log-density over the data", xlabel="v_1", ylabel="v_2")
    ax.legend(loc="upper right", fontsize="small", markerscale=4)
    return fig
