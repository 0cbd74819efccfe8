"""jrbm: restricted Boltzmann machines in JAX.

RBMs built from layers (Bernoulli, Spin, Potts, Gaussian, ReLU, dReLU, or
your own) as pure functions of parameter pytrees, with the tutorial's
Bernoulli-Bernoulli and Gaussian-Bernoulli models under their own names,
exact likelihoods for small models, Gibbs chains under ``lax.scan``, gradient
estimators that feed ``optax``, annealed importance sampling, training, data
sets and checkpoints.
"""

from jrbm import (
    ais,
    centering,
    datasets,
    exact,
    io,
    jarzynski,
    layers,
    metrics,
    model,
    parallel,
    plots,
    rng,
    tempering,
    testing,
    train,
    trajectory,
)
from jrbm.centering import Centered
from jrbm.estimators import CD, FPCD, PCD, cd_grad, pcd_grad
from jrbm.io import load, save
from jrbm.jarzynski import JarzynskiPCD
from jrbm.model import (
    energy,
    free_energy,
    hidden_free_energy,
    p_h_given_v,
    p_v_given_h,
    sample_h_given_v,
    sample_v_given_h,
)
from jrbm.params import RBM, BernoulliRBM, GaussianRBM, as_rbm, init, init_bernoulli, init_gaussian
from jrbm.sampling import gibbs_chain, gibbs_step
from jrbm.tempering import PT
from jrbm.train import FitState, fit, fit_ensemble, init_state, train_step
from jrbm.trajectory import PTT

__version__ = "0.1.0"

__all__ = [
    "BernoulliRBM",
    "CD",
    "Centered",
    "FPCD",
    "FitState",
    "GaussianRBM",
    "JarzynskiPCD",
    "PCD",
    "PT",
    "PTT",
    "RBM",
    "ais",
    "as_rbm",
    "cd_grad",
    "centering",
    "datasets",
    "energy",
    "exact",
    "fit",
    "fit_ensemble",
    "free_energy",
    "gibbs_chain",
    "gibbs_step",
    "hidden_free_energy",
    "init",
    "init_bernoulli",
    "init_gaussian",
    "init_state",
    "io",
    "jarzynski",
    "layers",
    "load",
    "metrics",
    "model",
    "p_h_given_v",
    "p_v_given_h",
    "parallel",
    "pcd_grad",
    "plots",
    "rng",
    "sample_h_given_v",
    "sample_v_given_h",
    "save",
    "tempering",
    "testing",
    "train",
    "train_step",
    "trajectory",
]
