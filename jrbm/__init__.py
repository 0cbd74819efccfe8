"""jrbm: restricted Boltzmann machines in JAX.

Bernoulli-Bernoulli and Gaussian-Bernoulli RBMs as pure functions of
parameter pytrees, with exact likelihoods for small models, Gibbs chains
under ``lax.scan`` and gradient estimators that feed ``optax``.
"""

from jrbm import exact
from jrbm.estimators import CD, PCD, cd_grad, pcd_grad
from jrbm.model import (
    energy,
    free_energy,
    hidden_free_energy,
    p_h_given_v,
    p_v_given_h,
    sample_h_given_v,
    sample_v_given_h,
)
from jrbm.params import BernoulliRBM, GaussianRBM, init_bernoulli, init_gaussian
from jrbm.sampling import gibbs_chain, gibbs_step

__version__ = "0.1.0"

__all__ = [
    "BernoulliRBM",
    "CD",
    "GaussianRBM",
    "PCD",
    "cd_grad",
    "energy",
    "exact",
    "free_energy",
    "gibbs_chain",
    "gibbs_step",
    "hidden_free_energy",
    "init_bernoulli",
    "init_gaussian",
    "p_h_given_v",
    "p_v_given_h",
    "pcd_grad",
    "sample_h_given_v",
    "sample_v_given_h",
]
