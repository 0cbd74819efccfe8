"""Unit types: the layers an :class:`jrbm.RBM` pairs.

| layer | fields | states | ``U(x)`` per unit |
| --- | --- | --- | --- |
| :class:`Bernoulli` | ``theta`` | {0, 1} | ``-theta x`` |
| :class:`Spin` | ``theta`` | {-1, +1} | ``-theta x`` |
| :class:`Potts` | ``theta`` (n, q) | one-hot over q | ``-sum_k theta_k x_k`` |
| :class:`Gaussian` | ``b``, ``log_sigma`` | real | ``a^2 (x - b)^2 / 2``, ``a = exp(-log_sigma)``, statistic ``a x`` |
| :class:`ReLU` | ``theta``, ``log_gamma`` | ``x >= 0`` | ``gamma x^2 / 2 - theta x`` |
| :class:`dReLU` | ``theta_pos``, ``theta_neg``, ``log_gamma_pos``, ``log_gamma_neg`` | real | ``gamma_pos x_+^2 / 2 + gamma_neg x_-^2 / 2 - theta_pos x_+ - theta_neg x_-``, ``x_+ = max(x, 0)``, ``x_- = min(x, 0)`` |

Every layer implements :class:`Layer`; see :mod:`jrbm.layers.base`.
"""

from jrbm.layers.base import Layer, cgf_difference, enumerate_states, is_discrete, sample, softplus
from jrbm.layers.bernoulli import Bernoulli
from jrbm.layers.drelu import dReLU
from jrbm.layers.gaussian import Gaussian
from jrbm.layers.potts import Potts, one_hot, zero_sum_gauge
from jrbm.layers.relu import ReLU
from jrbm.layers.spin import Spin

__all__ = ["Bernoulli", "Gaussian", "Layer", "Potts", "ReLU", "Spin", "dReLU", "one_hot", "zero_sum_gauge", "cgf_difference", "enumerate_states", "is_discrete", "sample", "softplus"]
