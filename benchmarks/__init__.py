"""jrbm benchmarks: speed against the matrix-product floor and against peers, and quality.

Run ``python -m benchmarks.run --help``. Every number is measured in one run,
with the contestants interleaved round by round, so that ratios stay
meaningful on a shared or noisy machine; see :mod:`benchmarks.common`.
"""
