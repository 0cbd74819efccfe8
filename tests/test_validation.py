"""Bad input at the public boundary: one row per case, each error naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import random_bernoulli, random_gaussian

import jrbm
from jrbm import layers

BB = random_bernoulli(0, 5, 3)
GB = random_gaussian(0, 5, 3)
KEY = jax.random.key(0)
V = np.zeros((4, 5))
NAN_V = V.copy()
NAN_V[2, 1] = np.nan
DATA = np.random.default_rng(0).integers(0, 2, (16, 5)).astype(np.float64)
POTTS = jrbm.RBM(layers.Potts(jnp.zeros((4, 3))), layers.Bernoulli(jnp.zeros(2)), jnp.zeros((4, 3, 2)))


class _DictGrad:
    """An estimator whose gradient is a dict, not a pytree like the parameters."""

    def init(self, key, params, data):
        return ()

    def grad(self, key, params, batch, state):
        return {"W": params.W}, state


SPIN = jrbm.RBM(layers.Spin(jnp.zeros(5)), layers.Bernoulli(jnp.zeros(3)), jnp.zeros((5, 3)))
RELU_HIDDEN = jrbm.RBM(layers.Bernoulli(jnp.zeros(5)), layers.ReLU(jnp.zeros(3), jnp.zeros(3)), jnp.zeros((5, 3)))


def fit(params=BB, data=DATA, **kw):
    kw = {"optimizer": optax.sgd(0.1), "epochs": 1, "batch_size": 4, "progress": False} | kw
    return jrbm.fit(KEY, params, data, **kw)


CASES = [
    ("v of the wrong length", lambda: jrbm.free_energy(BB, np.zeros(4)), ValueError, r"v: expected shape \(\.\.\., 5\).*got shape \(4,\)"),
    ("scalar v", lambda: jrbm.p_h_given_v(BB, 1.0), ValueError, r"v: expected shape \(\.\.\., 5\)"),
    ("h of the wrong length", lambda: jrbm.p_v_given_h(GB, np.zeros(5)), ValueError, r"h: expected shape \(\.\.\., 3\)"),
    ("NaN in v", lambda: jrbm.free_energy(GB, NAN_V), ValueError, r"v: expected finite values, got nan at index \(2, 1\)"),
    ("inf in h", lambda: jrbm.energy(BB, V[0], np.array([0, np.inf, 0])), ValueError, r"h: expected finite values"),
    ("string data", lambda: jrbm.free_energy(BB, np.array(["a"] * 5)), TypeError, r"v: expected a real numeric"),
    ("complex data", lambda: jrbm.free_energy(BB, np.zeros(5, complex)), TypeError, r"v: expected a real numeric"),
    ("unknown params type", lambda: jrbm.free_energy((BB.W, BB.b, BB.c), V), TypeError, r"params: expected one of RBM, BernoulliRBM, GaussianRBM \(a model with visible, hidden and W\), got tuple"),
    ("b of the wrong shape", lambda: jrbm.free_energy(BB._replace(b=jnp.zeros(4)), V), ValueError, r"params.b: expected shape \(5,\).*got \(4,\)"),
    ("c of the wrong shape", lambda: jrbm.free_energy(BB._replace(c=jnp.zeros(5)), V), ValueError, r"params.c: expected shape \(3,\)"),
    ("log_sigma of the wrong shape", lambda: jrbm.free_energy(GB._replace(log_sigma=jnp.zeros(3)), V), ValueError, r"params.log_sigma: expected shape \(5,\)"),
    ("W not a matrix", lambda: jrbm.free_energy(BB._replace(W=jnp.zeros(5)), V), ValueError, r"params.W: expected shape \(n_visible, n_hidden\)"),
    ("mixed leaf dtypes", lambda: jrbm.free_energy(BB._replace(b=BB.b.astype(jnp.float32)), V), TypeError, r"params.b: expected dtype float64"),
    ("integer weights", lambda: jrbm.free_energy(BB._replace(W=jnp.zeros((5, 3), jnp.int32)), V), TypeError, r"params.W: expected a floating dtype"),
    ("k = 0", lambda: jrbm.cd_grad(KEY, BB, V, k=0), ValueError, r"k: expected a positive integer, got 0"),
    ("k not an int", lambda: jrbm.cd_grad(KEY, BB, V, k=1.5), TypeError, r"k: expected a positive integer"),
    ("key not a key", lambda: jrbm.cd_grad(0, BB, V), TypeError, r"key: expected a jax.random key"),
    ("key after params", lambda: jrbm.gibbs_chain(BB, KEY, V, 3), TypeError, r"key: expected a jax.random key"),
    ("n_steps = 0", lambda: jrbm.gibbs_chain(KEY, BB, V, 0), ValueError, r"n_steps: expected a positive integer"),
    ("v0 of the wrong length", lambda: jrbm.gibbs_chain(KEY, BB, np.zeros((2, 6)), 3), ValueError, r"v0: expected shape \(\.\.\., 5\)"),
    ("chains of the wrong length", lambda: jrbm.pcd_grad(KEY, BB, V, np.zeros((2, 4))), ValueError, r"chains: expected shape \(\.\.\., 5\)"),
    ("empty minibatch", lambda: jrbm.cd_grad(KEY, BB, np.zeros((0, 5))), ValueError, r"v: expected at least one example, got shape \(0, 5\)"),
    ("no persistent chains", lambda: jrbm.pcd_grad(KEY, BB, V, np.zeros((0, 5))), ValueError, r"chains: expected at least one example"),
    ("PCD with no chains", lambda: jrbm.PCD(1, 0).init(KEY, BB, V), ValueError, r"n_chains: expected a positive integer"),
    ("layer too wide for exact", lambda: jrbm.exact.log_partition(jrbm.init_bernoulli(KEY, 30, 30)), ValueError, r"max_bits=24"),
    ("non-binary data to a Bernoulli likelihood", lambda: jrbm.exact.log_likelihood(BB, np.full(5, 0.3)), ValueError, r"v: expected binary values \(0 or 1\).*got 0.3"),
    ("NaN to exact.grad", lambda: jrbm.exact.grad(GB, NAN_V), ValueError, r"v: expected finite values"),
    ("n_visible = 0", lambda: jrbm.init_bernoulli(KEY, 0, 3), ValueError, r"n_visible: expected a positive integer, got 0"),
    ("data with the wrong width", lambda: jrbm.init_bernoulli(KEY, 4, 3, data=V), ValueError, r"data: expected 4 columns"),
    ("empty data", lambda: jrbm.init_gaussian(KEY, 5, 3, data=np.zeros((0, 5))), ValueError, r"data: expected at least one example"),
    ("non-positive sigma", lambda: jrbm.init_gaussian(KEY, 5, 3, sigma=0.0), ValueError, r"sigma: expected positive finite values"),
    ("n_hidden = 0", lambda: jrbm.init_bernoulli(KEY, 5, 0), ValueError, r"n_hidden: expected a positive integer, got 0"),
    ("NaN in init data", lambda: jrbm.init_bernoulli(KEY, 5, 3, data=NAN_V), ValueError, r"data: expected finite values"),
    ("v and h batches that do not broadcast", lambda: jrbm.energy(BB, np.zeros((4, 5)), np.zeros((3, 3))), ValueError, r"v and h: expected batch shapes that broadcast, got v \(4,\), h \(3,\)"),
    ("sampler key not a key", lambda: jrbm.sample_v_given_h(1, BB, np.zeros(3)), TypeError, r"key: expected a jax.random key"),
    ("NaN start state of a chain", lambda: jrbm.gibbs_chain(KEY, BB, NAN_V, 2), ValueError, r"v0: expected finite values"),
    ("ragged data", lambda: jrbm.free_energy(BB, [[0, 1], [0]]), TypeError, r"v: expected an array"),
    # fit: the data, the loop's settings, the optimiser and the estimator
    ("NaN in training data", lambda: fit(data=np.where(DATA == 1, np.nan, DATA)), ValueError, r"data: expected finite values, got nan at index \(\d+, \d+\)"),
    ("empty training data", lambda: fit(data=np.zeros((0, 5))), ValueError, r"data: expected at least one example, got shape \(0, 5\)"),
    ("training data of the wrong width", lambda: fit(data=np.zeros((8, 4))), ValueError, r"data: expected 5 columns \(n_visible\), got shape \(8, 4\)"),
    ("training data not a matrix", lambda: fit(data=DATA.reshape(2, 8, 5)), ValueError, r"data: expected a 2-D array"),
    ("batch larger than the data", lambda: fit(batch_size=17), ValueError, r"batch_size: expected at most the number of examples \(16\), got 17"),
    ("batch_size = 0", lambda: fit(batch_size=0), ValueError, r"batch_size: expected a positive integer, got 0"),
    ("epochs = 0", lambda: fit(epochs=0), ValueError, r"epochs: expected a positive integer, got 0"),
    ("optimizer not an optax transformation", lambda: fit(optimizer=0.1), TypeError, r"optimizer: expected an optax.GradientTransformation.*got float 0.1"),
    ("estimator not an estimator", lambda: fit(estimator="cd"), TypeError, r"estimator: expected an estimator with init and grad.*got str 'cd'"),
    ("CD with k = 0 in fit", lambda: fit(estimator=jrbm.CD(0)), ValueError, r"k: expected a positive integer, got 0"),
    ("NaN in the initial parameters", lambda: fit(params=BB._replace(W=BB.W.at[1, 2].set(jnp.nan))), ValueError, r"params.W: expected finite values, got nan at index \(1, 2\)"),
    ("non-binary data with likelihood monitoring", lambda: fit(data=np.full((16, 5), 0.5), log_likelihood="exact"), ValueError, r"data: expected binary values"),
    ("fit key not a key", lambda: jrbm.fit(0, BB, DATA, optimizer=optax.sgd(0.1), epochs=1, batch_size=4), TypeError, r"key: expected a jax.random key"),
    # AIS and parallel tempering
    ("AIS schedule not increasing", lambda: jrbm.ais.log_partition(KEY, BB, betas=np.array([0.0, 0.5, 0.3, 1.0])), ValueError, r"betas: expected a non-decreasing \(ascending\) schedule, got 0.5 then 0.3 at index 1"),
    ("AIS schedule not ending at 1", lambda: jrbm.ais.log_partition(KEY, BB, betas=np.array([0.0, 0.5])), ValueError, r"betas: expected to end at 1"),
    ("AIS with no runs", lambda: jrbm.ais.log_partition(KEY, BB, n_runs=0), ValueError, r"n_runs: expected a positive integer, got 0"),
    ("AIS base data of the wrong width", lambda: jrbm.ais.log_partition(KEY, BB, data=np.zeros((3, 4))), ValueError, r"data: expected 5 columns"),
    ("non-binary data to an AIS likelihood", lambda: jrbm.ais.log_likelihood(KEY, BB, np.full((2, 5), 0.5)), ValueError, r"v: expected binary values"),
    ("tempering ladder above 1", lambda: jrbm.tempering.pt_init(KEY, BB, DATA, betas=np.array([0.5, 1.0, 2.0])), ValueError, r"betas: expected values in \[0, 1\]"),
    ("empty tempering ladder", lambda: jrbm.tempering.temperature_ladder(0), ValueError, r"betas: expected at least 1 temperatures, got 0"),
    # metrics, data sets, files
    ("held-out data of the wrong width", lambda: jrbm.metrics.free_energy_gap(BB, DATA, np.zeros((2, 4))), ValueError, r"held_out: expected shape \(\.\.\., 5\)"),
    ("non-binary data to the pseudo-likelihood", lambda: jrbm.metrics.pseudo_log_likelihood(BB, np.full((2, 5), 0.5)), ValueError, r"v: expected binary values"),
    ("bars and stripes of size 0", lambda: jrbm.datasets.bars_and_stripes(0), ValueError, r"n: expected a positive integer, got 0"),
    ("saving NaN parameters", lambda: jrbm.save("unused.npz", BB._replace(W=BB.W.at[0, 0].set(jnp.nan))), ValueError, r"params.W: expected finite values"),
    ("loading a directory", lambda: jrbm.load("."), IsADirectoryError, r"path: '.' is a directory, not a checkpoint file"),
    # models of any pairing of layers
    ("a visible layer that is not a layer", lambda: jrbm.free_energy(jrbm.RBM(BB.b, layers.Bernoulli(BB.c), BB.W), V), TypeError, r"params.visible: expected a layer"),
    ("W not shaped visible + hidden", lambda: jrbm.free_energy(jrbm.RBM(layers.Bernoulli(BB.b), layers.Bernoulli(BB.c), BB.W.T), V), ValueError, r"params.W: expected shape visible.shape \+ hidden.shape = \(5, 3\), got \(3, 5\)"),
    ("layers of different dtypes", lambda: jrbm.free_energy(jrbm.RBM(layers.Bernoulli(BB.b), layers.Bernoulli(BB.c.astype(jnp.float32)), BB.W), V), TypeError, r"params.hidden: expected dtype float64"),
    ("Potts states of the wrong shape", lambda: jrbm.free_energy(POTTS, np.zeros((2, 4, 2))), ValueError, r"v: expected shape \(\.\.\., 4, 3\) for 4 visible units of shape \(3,\)"),
    ("Potts data that are not one-hot", lambda: jrbm.exact.log_likelihood(POTTS, np.full((4, 3), 1 / 3)), ValueError, r"v: expected .*one-hot"),
    ("Spin data in {0, 1}", lambda: jrbm.init(KEY, layers.Spin.init(5), layers.Bernoulli.init(3), data=DATA), ValueError, r"data: expected .*-1.*\+1"),
    ("negative data for a ReLU layer", lambda: jrbm.exact.log_likelihood(jrbm.RBM(layers.ReLU.init(2), layers.Bernoulli.init(3), jnp.zeros((2, 3))), -np.ones(2)), ValueError, r"v: expected .*>= 0"),
    ("no discrete layer to enumerate", lambda: jrbm.exact.log_partition(jrbm.RBM(layers.Gaussian.init(2), layers.ReLU.init(3), jnp.zeros((2, 3)))), TypeError, r"params: exact enumeration needs a discrete layer, got Gaussian visible and ReLU hidden units"),
    ("max_bits beyond 32-bit indices", lambda: jrbm.exact.log_partition(BB, max_bits=40), ValueError, r"max_bits: expected at most 32"),
    ("enumerating a continuous layer", lambda: jrbm.exact.log_partition(GB, layer="visible"), ValueError, r"layer: expected None or the name of a discrete layer"),
    ("integer codes out of range for one_hot", lambda: layers.one_hot(np.array([[0, 3]]), 3), ValueError, r"codes: expected"),
    ("raw digits (0..16) to init_bernoulli", lambda: jrbm.init_bernoulli(KEY, 5, 3, data=DATA * 16), ValueError, r"data: expected values in \[0, 1\] .* got 16.0 .*rescale the data to \[0, 1\]"),
    ("raw digits (0..16) to fit", lambda: fit(data=DATA * 16), ValueError, r"data: expected values in \[0, 1\] .*rescale"),
    ("raw digits (0..16) to PCD's chains", lambda: jrbm.PCD(1, 4).init(KEY, BB, DATA * 16), ValueError, r"data: expected values in \[0, 1\]"),
    ("an estimator class, not an instance", lambda: fit(estimator=jrbm.PCD), TypeError, r"estimator: expected an estimator instance, got the class PCD itself; .*estimator=jrbm.PCD\(1\)"),
    ("an optax function, not a transformation", lambda: fit(optimizer=optax.sgd), TypeError, r"optimizer: expected an optax.GradientTransformation, got the function 'sgd' itself"),
    ("CD(0) refused when made", lambda: jrbm.CD(0), ValueError, r"k: expected a positive integer, got 0"),
    ("PT with a ladder above 1, refused when made", lambda: jrbm.PT(np.array([0.5, 2.0])), ValueError, r"betas: expected values in \[0, 1\]"),
    ("a traced k under jit", lambda: jax.jit(lambda k: jrbm.cd_grad(KEY, BB, V, k=k))(1), TypeError, r"k: expected a positive integer known at trace time \(a static argument\)"),
    ("an int seed in place of a key", lambda: jrbm.init_bernoulli(0, 5, 3), TypeError, r"key: expected a jax.random key \(jax.random.key\(seed\)\)"),
    ("init with a layer that is not a layer", lambda: jrbm.init(KEY, "Bernoulli", layers.Bernoulli.init(3)), TypeError, r"init.visible: expected a layer"),
    ("raw pixels (0..255) to cd_grad", lambda: jrbm.cd_grad(KEY, BB, DATA * 255), ValueError, r"v: expected values in \[0, 1\] .* got 255.0"),
    ("raw pixels (0..255) to pcd_grad", lambda: jrbm.pcd_grad(KEY, BB, DATA * 255, DATA), ValueError, r"v: expected values in \[0, 1\]"),
    ("negative persistent chains", lambda: jrbm.pcd_grad(KEY, BB, V, -np.ones((2, 5))), ValueError, r"chains: expected values in \[0, 1\] .* got -1.0"),
    ("a batch of keys where one key goes", lambda: jrbm.cd_grad(jax.random.split(KEY, 3), BB, V), ValueError, r"key: expected one jax.random key \(shape \(\)\), got a batch of keys of shape \(3,\)"),
    ("NaN weight_std", lambda: jrbm.init_bernoulli(KEY, 5, 3, weight_std=np.nan), ValueError, r"weight_std: expected a finite number >= 0, got nan"),
    ("infinite weight_std in init", lambda: jrbm.init(KEY, layers.Bernoulli.init(5), layers.Bernoulli.init(3), weight_std=np.inf), ValueError, r"weight_std: expected a finite number >= 0, got inf"),
    ("an integer dtype for the parameters", lambda: jrbm.init_bernoulli(KEY, 5, 3, dtype="int32"), TypeError, r"dtype: expected a floating dtype .*got 'int32'"),
    ("raw pixels (0..255) as AIS base data", lambda: jrbm.ais.log_partition(KEY, BB, data=DATA * 255), ValueError, r"data: expected values in \[0, 1\]"),
    ("sigma of the wrong length", lambda: jrbm.init_gaussian(KEY, 5, 3, sigma=[1.0, 2.0]), ValueError, r"sigma: expected a scalar or 5 values \(one per visible unit\), got shape \(2,\)"),
    ("NaN in the weights to free_energy", lambda: jrbm.free_energy(BB._replace(W=BB.W.at[1, 2].set(np.nan)), V), ValueError, r"params.W: expected finite values, got nan at index \(1, 2\)"),
    ("infinite hidden fields to a sampler", lambda: jrbm.sample_h_given_v(KEY, BB._replace(c=BB.c.at[0].set(np.inf)), V), ValueError, r"params.c: expected finite values, got inf"),
    ("an empty layer in a general model", lambda: jrbm.free_energy(jrbm.RBM(layers.Bernoulli(jnp.zeros(5)), layers.Bernoulli(jnp.zeros(0)), jnp.zeros((5, 0))), V), ValueError, r"params.hidden.theta: expected at least one unit"),
    ("Spin states in {0, 1} to free_energy", lambda: jrbm.free_energy(SPIN, DATA), ValueError, r"v: expected spin values \(-1 or \+1\) for a Spin layer, got 0.0"),
    ("negative ReLU hidden states to p_v_given_h", lambda: jrbm.p_v_given_h(RELU_HIDDEN, -np.ones(3)), ValueError, r"h: expected non-negative values \(x >= 0\) for a ReLU layer, got -1.0"),
    ("Bernoulli data above 1 to free_energy", lambda: jrbm.free_energy(BB, DATA * 16), ValueError, r"v: expected values in \[0, 1\] .* got 16.0"),
    ("Potts data that are not one-hot to p_h_given_v", lambda: jrbm.p_h_given_v(POTTS, np.ones((4, 3))), ValueError, r"v: expected one 1 per unit"),
    ("a float32 log_sigma whose exp(-2 log_sigma) overflows", lambda: jrbm.free_energy(jax.tree.map(lambda a: a.astype(jnp.float32), GB._replace(log_sigma=GB.log_sigma.at[1].set(-50.0))), V), ValueError, r"params.log_sigma: expected values within \+-44.36 \(where exp\(2 \|log_sigma\|\) is finite in float32\) for a GaussianRBM, got -50.0 at index \(1,\)"),
    ("a float64 Gaussian layer's log_sigma beyond exp's range", lambda: jrbm.free_energy(jrbm.as_rbm(GB._replace(log_sigma=GB.log_sigma.at[0].set(400.0))), V), ValueError, r"params.visible.log_sigma: expected values within \+-354.9 .* for a Gaussian, got 400.0"),
    ("a ReLU log_gamma beyond exp's range", lambda: jrbm.p_v_given_h(RELU_HIDDEN._replace(hidden=layers.ReLU(jnp.zeros(3), jnp.array([0.0, -360.0, 0.0]))), np.ones(3)), ValueError, r"params.hidden.log_gamma: expected values within \+-354.9 .* for a ReLU, got -360.0 at index \(1,\)"),
    ("a layer class passed uncalled", lambda: jrbm.init(KEY, layers.Bernoulli, layers.Bernoulli.init(3)), TypeError, r"init.visible: expected a layer instance, got the class Bernoulli itself; make one, e.g. Bernoulli.init\(n_units\)"),
    ("a layer of zero units", lambda: layers.Bernoulli.init(0), ValueError, r"n: expected a positive integer, got 0"),
    ("Potts units with no states", lambda: layers.Potts.init(3, 0), ValueError, r"q: expected a positive integer, got 0"),
    ("a model with no hidden units", lambda: jrbm.free_energy(BB._replace(c=jnp.zeros(0), W=jnp.zeros((5, 0))), V), ValueError, r"params.W: expected at least one visible and one hidden unit, got shape \(5, 0\)"),
    ("a bool for epochs", lambda: fit(epochs=True), TypeError, r"epochs: expected a positive integer, got the bool True"),
    ("a callback that is not callable", lambda: fit(callback=3), TypeError, r"callback: expected a function called as callback\(epoch, params, record\), got int"),
    ("an estimator whose gradient is not like the parameters", lambda: fit(estimator=_DictGrad()), TypeError, r"estimator.grad: expected gradients with the structure of the parameters"),
    ("an int seed to PCD.init", lambda: jrbm.PCD(1, 4).init(0, BB, DATA), TypeError, r"key: expected a jax.random key"),
    ("an int seed to init_state", lambda: jrbm.train.init_state(0, BB, DATA, optimizer=optax.sgd(0.1), estimator=jrbm.CD(1)), TypeError, r"key: expected a jax.random key"),
    ("empty data to reconstruction_error", lambda: jrbm.metrics.reconstruction_error(BB, V[:0]), ValueError, r"v: expected at least one example, got shape \(0, 5\)"),
    ("empty held-out data to free_energy_gap", lambda: jrbm.metrics.free_energy_gap(BB, V, V[:0]), ValueError, r"held_out: expected at least one example"),
    ("empty data to exact.grad", lambda: jrbm.exact.grad(BB, V[:0]), ValueError, r"v: expected at least one example"),
    ("empty data to centering.data_means", lambda: jrbm.centering.data_means(BB, V[:0]), ValueError, r"v: expected at least one example"),
    ("a string for check", lambda: jrbm.exact.log_likelihood(BB, V, check="no"), TypeError, r"check: expected True or False, got str 'no'"),
    ("float16 parameters to AIS", lambda: jrbm.ais.log_partition(KEY, jax.tree.map(lambda a: a.astype(jnp.float16), BB), n_runs=2, betas=10), TypeError, r"params: AIS needs float32 or float64 parameters, got float16"),
    ("finite Gaussian data whose squares overflow float32", lambda: jrbm.free_energy(jax.tree.map(lambda a: a.astype(jnp.float32), GB), np.full((2, 5), 1e20)), ValueError, r"v: expected values of magnitude below 1.84e\+19, whose squares are finite in float32, got 1e\+20 at index \(0, 0\)"),
    ("float64 data beyond float32's range to a float32 model", lambda: jrbm.init_gaussian(KEY, 5, 3, data=np.full((2, 5), 1e300), dtype=jnp.float32), ValueError, r"data: expected values of magnitude below 1.84e\+19"),
    ("eval_every without log_likelihood", lambda: fit(eval_every=3), ValueError, r"eval_every: only used with log_likelihood, got eval_every=3 and log_likelihood=None"),
    ("checkpoint_every without checkpoint_dir", lambda: fit(checkpoint_every=3), ValueError, r"checkpoint_every: only used with checkpoint_dir"),
    ("a callback of the wrong arity", lambda: fit(callback=lambda epoch: None), TypeError, r"callback: expected a function called as callback\(epoch, params, record\), got <lambda>\(epoch\)"),
    ("a dict to as_rbm", lambda: jrbm.as_rbm({"W": 1}), TypeError, r"params: expected one of RBM, BernoulliRBM, GaussianRBM .*got dict"),
    ("lists as a model's leaves", lambda: jrbm.free_energy(jrbm.BernoulliRBM(BB.W.tolist(), BB.b, BB.c), V), TypeError, r"params.W: expected an array, got list"),
    ("params in place of a TrainState", lambda: jrbm.train_step(KEY, BB, DATA, optimizer=optax.sgd(0.1), estimator=jrbm.CD(1)), TypeError, r"state: expected a jrbm.train.TrainState"),
    ("a TrainState of another optimizer", lambda: jrbm.train_step(KEY, jrbm.train.init_state(KEY, BB, DATA, optimizer=optax.sgd(0.1, momentum=0.9), estimator=jrbm.CD(1)), DATA, optimizer=optax.adam(0.1), estimator=jrbm.CD(1)), ValueError, r"state.opt_state: expected the structure of optimizer.init\(params\)"),
    ("a ladder index out of range", lambda: jrbm.trajectory.model_at(jrbm.trajectory.stack([BB, BB]), 2), ValueError, r"t: expected an int in \[-2, 2\) for a ladder of 2 models, got 2"),
    ("a non-integer ladder index", lambda: jrbm.trajectory.model_at(jrbm.trajectory.stack([BB, BB]), 1.5), ValueError, r"t: expected an int in \[-2, 2\)"),
    ("NaN in an autocorrelation series", lambda: jrbm.trajectory.integrated_autocorrelation_time([1.0, np.nan, 2.0]), ValueError, r"x: expected finite values, got nan at index \(1, 0\)"),
    ("a zero autocorrelation window constant", lambda: jrbm.trajectory.integrated_autocorrelation_time(DATA[:, 0], c=0.0), ValueError, r"c: expected a finite window constant > 0"),
    ("bars-and-stripes too large to build", lambda: jrbm.datasets.bars_and_stripes(30), ValueError, r"n: 30 gives 2,147,483,648 rows of 900 columns"),
    ("an int to noise_key", lambda: jrbm.rng.noise_key(3), TypeError, r"key: expected a jax.random key \(or a batch of them\), got int"),
    ("an image shape that does not fit the pixels", lambda: jrbm.plots.filters(BB, (2, 3)), ValueError, r"image_shape: expected \(height, width\) with height \* width = 5 pixels, got \(2, 3\)"),
    ("a history without epochs to learning_curves", lambda: jrbm.plots.learning_curves({}), ValueError, r"history: expected the dict of jrbm.fit with an 'epoch' list"),
    ("bfloat16 parameters to a sampler", lambda: jrbm.sample_h_given_v(KEY, jax.tree.map(lambda a: a.astype(jnp.bfloat16), BB), V), TypeError, r"params: jrbm samples with float32 or float64 parameters, got bfloat16"),
    ("jax.grad through AIS", lambda: jax.grad(lambda p: jrbm.ais.log_partition(KEY, p, n_runs=2, betas=10).log_z)(BB), TypeError, r"jrbm.ais: an AIS estimate is not differentiable"),
    ("3-D data to density_2d", lambda: jrbm.plots.density_2d(random_gaussian(0, 2, 3), np.zeros((4, 3))), ValueError, r"data: expected 2 columns"),
    ("a layer of bounded states to density_2d", lambda: jrbm.plots.density_2d(jrbm.init(KEY, layers.ReLU.init(2), layers.Bernoulli.init(3)), np.ones((4, 2))), ValueError, r"params: expected a visible layer taking any real value \(Gaussian, dReLU\), got ReLU"),
    ("NaN in images to image_grid", lambda: jrbm.plots.image_grid(np.where(np.eye(4, 16) > 0, np.nan, 0.5)), ValueError, r"images: expected finite values, got nan at index \(0, 0\) \(4 non-finite entries\)"),
    ("strings as images to image_grid", lambda: jrbm.plots.image_grid(np.array([["a", "b"]])), ValueError, r"images: expected an array of numbers"),
    ("vmin above vmax to image_grid", lambda: jrbm.plots.image_grid(np.zeros((2, 4)), vmin=1.0, vmax=0.0), ValueError, r"vmin, vmax: expected vmin <= vmax, got vmin=1.0 and vmax=0.0"),
    ("a string vmin to image_grid", lambda: jrbm.plots.image_grid(np.zeros((2, 4)), vmin="a"), ValueError, r"vmin: expected a finite number, got str 'a'"),
    ("strings in a history to learning_curves", lambda: jrbm.plots.learning_curves({"epoch": [1, 2], "recon_error": ["a", "b"]}), ValueError, r"history\['recon_error'\]: expected numbers"),
    ("bars-and-stripes of an n with no float size", lambda: jrbm.datasets.bars_and_stripes(1100), ValueError, r"n: 1100 gives about 2\^1101 rows of 1210000 columns \(about 2\^1123 bytes\)"),
    ("an unknown dtype name to a data set", lambda: jrbm.datasets.bars_and_stripes(2, dtype="foo"), TypeError, r"dtype: expected a floating dtype such as float32, got 'foo'"),
    ("dtype None to a data set", lambda: jrbm.datasets.labeled_shifter(2, dtype=None), TypeError, r"dtype: expected a floating dtype such as float32, got None"),
    ("a string for trajectory", lambda: jrbm.gibbs_chain(KEY, BB, V, 3, trajectory="no"), TypeError, r"trajectory: expected True or False, got str 'no'"),
    ("a traced n_steps", lambda: jax.jit(lambda n: jrbm.gibbs_chain(KEY, BB, V, n))(3), TypeError, r"n_steps: expected a positive integer known at trace time \(a static argument\)"),
    ("an int seed to draw_rows", lambda: jrbm.sampling.draw_rows(0, DATA, (4,)), TypeError, r"key: expected a jax.random key"),
    ("no rows to draw_rows", lambda: jrbm.sampling.draw_rows(KEY, DATA[:0], (4,)), ValueError, r"data: expected an array with at least one row, got shape \(0, 5\)"),
    ("a negative shape to draw_rows", lambda: jrbm.sampling.draw_rows(KEY, DATA, (-1,)), ValueError, r"shape: expected a tuple of positive ints, got \(-1,\)"),
    ("zero sweeps to negative_phase", lambda: jrbm.sampling.negative_phase(KEY, BB, jnp.zeros((2, 3)), 0), ValueError, r"k: expected a positive integer, got 0"),
    ("a sigma whose log overflows float32", lambda: jrbm.init_gaussian(KEY, 2, 2, sigma=1e-50, dtype=jnp.float32), ValueError, r"sigma: expected values with \|log sigma\| <= 44.36, finite to square in float32"),
    ("a string sigma", lambda: jrbm.init_gaussian(KEY, 2, 2, sigma="a"), TypeError, r"sigma: expected a positive number or one per visible unit, got str 'a'"),
    ("a bool sigma", lambda: jrbm.init_gaussian(KEY, 2, 2, sigma=True), TypeError, r"sigma: expected a positive number or one per visible unit, got bool True"),
    ("a weight scale that overflows float32", lambda: jrbm.init_bernoulli(KEY, 2, 2, weight_std=1e40, dtype=jnp.float32), ValueError, r"weight_std: expected a scale whose weights are finite in float32, got 1e\+40"),
    ("traced data to init_bernoulli", lambda: jax.jit(lambda d: jrbm.init_bernoulli(KEY, 5, 3, data=d))(DATA), TypeError, r"data: expected concrete values .* use jrbm.init with jrbm.layers"),
    ("an infinite fast_lr", lambda: jrbm.FPCD(fast_lr=float("inf")), ValueError, r"fast_lr: expected a finite float >= 0, got inf"),
    ("chains in place of an FPCD state", lambda: jrbm.FPCD(1, 4).grad(KEY, BB, DATA, DATA[:4]), TypeError, r"state: expected a jrbm.estimators.FPCDState"),
    ("an FPCD state of another model", lambda: jrbm.FPCD(1, 4).grad(KEY, BB, DATA, jrbm.FPCD(1, 4).init(KEY, random_bernoulli(1, 5, 4), DATA)), ValueError, r"state.fast: expected fast parameters of the structure and shapes of params"),
    ("NaN log-weights to effective_sample_size", lambda: jrbm.jarzynski.effective_sample_size([0.0, np.nan]), ValueError, r"log_weights: expected log-weights below \+inf and not NaN, got nan at index 1"),
    ("no finite log-weight to systematic_resample", lambda: jrbm.jarzynski.systematic_resample(KEY, [-np.inf, -np.inf]), ValueError, r"log_weights: expected at least one finite log-weight"),
    ("a NaN log-weight in a Jarzynski state", lambda: jrbm.JarzynskiPCD(1, 4).grad(KEY, BB, DATA, (lambda s: s._replace(log_weights=s.log_weights.at[0].set(np.nan)))(jrbm.JarzynskiPCD(1, 4).init(KEY, BB, DATA))), ValueError, r"state.log_weights: expected log-weights below \+inf and not NaN"),
    ("an unstacked model to model_at", lambda: jrbm.trajectory.model_at(BB, 0), ValueError, r"ladder: expected a ladder axis in front of every leaf, got W of shape \(5, 3\)"),
    ("NaN in a later model of a ladder", lambda: jrbm.trajectory.check_ladder((lambda L: L._replace(W=L.W.at[1, 0, 0].set(np.nan)))(jrbm.trajectory.stack([BB, BB]))), ValueError, r"ladder.W: expected finite values, got nan at index \(1, 0, 0\)"),
    ("a PTT state of another model", lambda: jrbm.trajectory.PTT(2, n_chains=4).grad(KEY, BB, DATA, jrbm.trajectory.PTT(2, n_chains=4).init(KEY, random_bernoulli(1, 5, 4), DATA)), ValueError, r"state.ladder: expected models like params \(BernoulliRBM of W \(5, 3\)\), got BernoulliRBM of W \(5, 4\)"),
    ("a batch of raw keys", lambda: jrbm.gibbs_step(jax.random.split(jax.random.PRNGKey(1), 5), BB, V), TypeError, r"key: expected a jax.random key .* and shape \(5, 2\) \(a batch of raw keys\?"),
]


@pytest.mark.parametrize("fn, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(fn, error, match):
    with pytest.raises(error, match=match):
        fn()


def test_shape_errors_are_raised_under_jit_too():
    with pytest.raises(ValueError, match=r"v: expected shape \(\.\.\., 5\)"):
        jax.jit(jrbm.free_energy)(BB, jnp.zeros(4))


def test_bernoulli_conditionals_accept_real_valued_data():
    """Documented: the BB conditionals and free energy are formulas valid for real v (mean-field use)."""
    v = np.full(5, 0.25)
    np.testing.assert_allclose(jrbm.p_h_given_v(BB, v), jax.nn.sigmoid(v @ BB.W + BB.c), rtol=1e-13)
    assert np.isfinite(jrbm.free_energy(BB, v))


def test_load_names_a_dtype_that_is_not_floating(tmp_path):
    jrbm.save(tmp_path / "m.npz", BB)
    with pytest.raises(TypeError, match=r"dtype: expected a floating dtype .*got int32"):
        jrbm.load(tmp_path / "m.npz", dtype=np.int32)
