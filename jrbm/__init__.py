"""jrbm: restricted Boltzmann machines in JAX.

Bernoulli-Bernoulli and Gaussian-Bernoulli RBMs as pure functions of
parameter pytrees, with exact likelihoods for small models, Gibbs chains
under ``lax.scan``, gradient estimators that feed ``optax``, annealed
importance sampling, training, data sets and checkpoints.
"""

from jrbm import ais, datasets, exact, io, metrics, model, parallel, plots, tempering, train
from jrbm.estimators import CD, PCD, cd_grad, pcd_grad
from jrbm.io import load, save
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
from jrbm.tempering import PT
from jrbm.train import fit, fit_ensemble, train_step

__version__ = "0.1.0"

__all__ = [
    "BernoulliRBM",
    "CD",
    "GaussianRBM",
    "PCD",
    "PT",
    "ais",
    "cd_grad",
    "datasets",
    "energy",
    "exact",
    "fit",
    "fit_ensemble",
    "free_energy",
    "gibbs_chain",
    "gibbs_step",
    "hidden_free_energy",
    "init_bernoulli",
    "init_gaussian",
    "io",
    "load",
    "metrics",
    "model",
    "p_h_given_v",
    "p_v_given_h",
    "parallel",
    "pcd_grad",
    "plots",
    "sample_h_given_v",
    "sample_v_given_h",
    "save",
    "tempering",
    "train",
    "train_step",
]
