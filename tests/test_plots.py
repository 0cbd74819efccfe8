"""Pictures a person can read: titles and axis labels in words, colour bars, the likelihood curve when measured."""

import jax
import numpy as np

import jrbm


def _labels(fig):
    return [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


def test_learning_curves_are_labelled_and_show_the_likelihood():
    history = {"epoch": [1, 2, 3], "recon_error": [0.3, 0.2, 0.1], "free_energy_gap": [0.0, 0.1, 0.2],
               "log_likelihood": [np.nan, np.nan, -5.0], "val_log_likelihood": [np.nan, np.nan, -5.5],
               "log_z_std": [np.nan, np.nan, 0.01]}
    fig = jrbm.plots.learning_curves(history)
    titles = {t: (x, y) for t, x, y in _labels(fig)}
    assert titles["Reconstruction error"] == ("epoch", "mean squared error per visible unit")
    gap = next(t for t in titles if t.startswith("Free-energy gap"))
    assert "validation minus training" in titles[gap][1]
    assert titles["Log-likelihood (AIS, +- its standard error)"] == ("epoch", "nats per example")
    assert not any("_" in t for t in titles)  # no raw keys as titles


def test_filters_and_density_have_colour_bars_and_axis_labels():
    params = jrbm.init_bernoulli(jax.random.key(0), 16, 4, weight_std=1.0)
    fig = jrbm.plots.filters(params, (4, 4))
    assert any(ax.get_ylabel().startswith("weight") for ax in fig.axes)  # the colour bar's axis
    gb = jrbm.init_gaussian(jax.random.key(1), 2, 3)
    fig = jrbm.plots.density_2d(gb, np.random.default_rng(0).normal(size=(50, 2)))
    labels = _labels(fig)
    assert ("Model log-density over the data", "v_1", "v_2") in labels
    assert any("log-density minus its maximum" in y for _, _, y in labels)


def test_image_grid_places_every_image_in_its_tile():
    """The mosaic holds each image at its tile, NaN in the gaps and in unused tiles, for any tile shape."""
    from jrbm.plots import _mosaic

    rng = np.random.default_rng(0)
    for n, shape in ((1, (3, 3)), (5, (2, 4)), (7, (1, 6)), (9, (8, 8))):
        images = rng.normal(size=(n, shape[0] * shape[1]))
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        out = _mosaic(images, shape, rows, cols)
        gap = max(1, min(shape) // 8)
        assert out.shape == (rows * (shape[0] + gap) - gap, cols * (shape[1] + gap) - gap)
        for i in range(n):
            r, c = divmod(i, cols)
            tile = out[r * (shape[0] + gap): r * (shape[0] + gap) + shape[0], c * (shape[1] + gap): c * (shape[1] + gap) + shape[1]]
            np.testing.assert_array_equal(tile, images[i].reshape(shape))
        assert np.isnan(out).sum() == out.size - n * images.shape[1]  # everything else is background
    fig = jrbm.plots.image_grid(rng.normal(size=(3, 16)), (4, 4), cmap=__import__("matplotlib").colormaps["viridis"])
    assert len(fig.axes) == 1


def test_filters_draw_one_tile_per_hidden_unit_in_the_visible_layer_shape():
    """Potts units: a visible (n, q) layer gives one (n, q) table per hidden unit; a hidden (m, q) layer one tile
    per (unit, state) pair; each tile holds exactly the weights to its column."""
    from jrbm import layers

    key = jax.random.key(0)
    cases = (
        (layers.Potts.init(12, 3), layers.Bernoulli.init(5), 5, "hidden units", (12, 3)),
        (layers.Bernoulli.init(12), layers.Potts.init(4, 3), 12, "(hidden unit, state) pairs", (3, 4)),
        (layers.Bernoulli.init(12), layers.Bernoulli.init(7), 7, "hidden units", (3, 4)),
    )
    for vis, hid, n_tiles, what, shape in cases:
        params = jrbm.init(key, vis, hid, weight_std=1.0)
        fig = jrbm.plots.filters(params, None if len(vis.shape) == 2 else shape)
        assert fig._suptitle.get_text() == f"Filters: the weights to each of the first {n_tiles} {what}"
        shown = np.ma.filled(fig.axes[0].images[0].get_array(), np.nan)
        W = np.asarray(params.W, np.float64).reshape(int(np.prod(vis.shape)), -1)
        cols = int(np.ceil(np.sqrt(n_tiles)))
        gap = max(1, min(shape) // 8)
        for t in range(n_tiles):
            r, c = divmod(t, cols)
            tile = shown[r * (shape[0] + gap): r * (shape[0] + gap) + shape[0], c * (shape[1] + gap): c * (shape[1] + gap) + shape[1]]
            np.testing.assert_allclose(tile, W[:, t].reshape(shape))


def test_image_grid_keeps_a_tall_strip_of_tiles_to_a_readable_size():
    """120 images of (120, 1) would be a figure some 1,300 inches tall; the figure is held to MAX_INCHES."""
    fig = jrbm.plots.image_grid(np.random.default_rng(0).random((64, 120)), (120, 1))
    assert max(fig.get_size_inches()) <= jrbm.plots.MAX_INCHES + 1e-9


def test_learning_curves_say_when_there_is_nothing_to_draw():
    fig = jrbm.plots.learning_curves({"epoch": [1, 2], "recon_error": [np.nan, np.nan]})
    assert [t.get_text() for t in fig.axes[0].texts] == ["No monitor recorded a finite value in 2 epoch(s)"]
