"""The public surface: every name in __all__ imports, and the documented names are there."""

import subprocess
import sys
import textwrap

from test_sharding import _env

import jrbm

DOCUMENTED_NAMES = {
    "RBM", "init", "as_rbm", "layers", "testing", "init_state",
    "BernoulliRBM", "GaussianRBM", "init_bernoulli", "init_gaussian",
    "energy", "free_energy", "p_h_given_v", "p_v_given_h", "sample_h_given_v", "sample_v_given_h",
    "gibbs_step", "gibbs_chain", "cd_grad", "pcd_grad", "CD", "PCD", "exact",
}


def test_all_names_import():
    for name in jrbm.__all__:
        assert getattr(jrbm, name) is not None, name
    assert sorted(jrbm.__all__) == jrbm.__all__


def test_design_names_are_public():
    assert DOCUMENTED_NAMES <= set(jrbm.__all__)


def test_layer_names_are_public():
    from jrbm import layers

    assert {"Layer", "Bernoulli", "Spin", "Potts", "Gaussian", "ReLU", "dReLU", "one_hot", "zero_sum_gauge"} <= set(layers.__all__)
    for name in layers.__all__:
        assert getattr(layers, name) is not None, name
    for name in ("log_partition", "log_likelihood", "grad"):
        assert callable(getattr(jrbm.exact, name))


def test_runs_with_only_jax_optax_and_chex():
    """On a machine with only jax, optax and chex (an accelerator host running a checkout with
    ``PYTHONPATH=.``), jrbm imports, trains and estimates; scikit-learn, matplotlib and tqdm are
    imported only by the functions that need them."""
    code = textwrap.dedent(
        """
        import sys, warnings, importlib.abc
        OPTIONAL = {"sklearn", "matplotlib", "tqdm", "torch", "hypothesis"}
        asked = set()

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in OPTIONAL:
                    asked.add(name.split(".")[0])
                    raise ImportError(f"{name} is not installed")

        sys.meta_path.insert(0, Block())
        import jax, optax
        import jrbm, jrbm.ais, jrbm.cli, jrbm.datasets, jrbm.exact, jrbm.io, jrbm.metrics, jrbm.plots, jrbm.tempering
        data = jrbm.datasets.bars_and_stripes(3)
        params = jrbm.init_bernoulli(jax.random.key(0), 9, 4, data=data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            params, history = jrbm.fit(jax.random.key(1), params, data, optimizer=optax.sgd(0.1),
                                       epochs=2, batch_size=8, log_likelihood="exact")
        assert any("tqdm is not installed" in str(w.message) for w in caught), [str(w.message) for w in caught]
        assert len(history["log_likelihood"]) == 2
        assert jax.numpy.isfinite(jrbm.ais.log_partition(jax.random.key(2), params, betas=100, n_runs=10).log_z)
        assert asked == {"tqdm"}, asked  # only fit's progress bar asked for an optional package
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=_env(1))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-4000:]
