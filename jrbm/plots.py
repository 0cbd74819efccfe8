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


def image_grid(images: np.ndarray, image_shape: Optional[Sequence[int]] = None, *, title: str = "", cmap: str = "gray"):
    """Tiles ``(n, n_pixels)`` rows as images in a near-square grid.

    ``image_shape`` defaults to a square when ``n_pixels`` is a perfect
    square; otherwise each row is drawn as a one-pixel-high strip.
    """
    images = np.asarray(images, np.float64)
    n, d = images.shape
    if image_shape is None:
        side = math.isqrt(d)
        image_shape = (side, side) if side * side == d else (1, d)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = _figure(figsize=(1.2 * cols, 1.2 * rows * image_shape[0] / image_shape[1] + 0.4))
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].reshape(image_shape), cmap=cmap, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return fig


def filters(params, image_shape: Optional[Sequence[int]] = None, *, max_filters: int = 100):
    """The columns of ``W`` (one per hidden unit) as images, each scaled to its own range."""
    W = np.asarray(params.W, np.float64)[:, :max_filters].T
    span = np.ptp(W, axis=1, keepdims=True)
    W = (W - W.min(axis=1, keepdims=True)) / np.where(span > 0, span, 1)
    return image_grid(W, image_shape, title=f"filters (first {W.shape[0]} hidden units)")


def learning_curves(history: dict):
    """One panel per recorded metric against the epoch; evaluations absent from an epoch are skipped."""
    names = [k for k in history if k != "epoch" and np.isfinite(np.asarray(history[k], float)).any()]
    fig = _figure(figsize=(4 * max(len(names), 1), 3.2))
    epochs = np.asarray(history["epoch"])
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        y = np.asarray(history[name], float)
        ok = np.isfinite(y)
        ax.plot(epochs[ok], y[ok], marker="o" if ok.sum() < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def density_2d(params, data: np.ndarray, *, grid: int = 200):
    """Contours of a 2-D GB-RBM's log-density ``-free_energy`` over a scatter of ``data``."""
    import jax.numpy as jnp

    from jrbm.model import free_energy

    lo, hi = data.min(0) - 1, data.max(0) + 1
    xs, ys = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    gx, gy = np.meshgrid(xs, ys)
    pts = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1), params.W.dtype)
    logf = np.asarray(-free_energy(params, pts)).reshape(gx.shape)
    fig = _figure(figsize=(5, 5))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(data[:, 0], data[:, 1], s=2, alpha=0.3, color="gray")
    ax.contour(gx, gy, logf - logf.max(), levels=np.linspace(-12, 0, 13))
    ax.set_title("model log-density (unnormalised) over the data")
    return fig
