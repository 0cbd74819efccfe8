"""The command line end to end at a small setting: files written, numbers consistent, errors clear."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import jrbm
from jrbm import cli


@pytest.fixture(autouse=True)
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):  # optax internals; see tests/test_train.py
        yield


def run(*argv):
    return cli.main([str(a) for a in argv])


def test_train_evaluate_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", "--dataset", "bars-and-stripes", "--hidden", 8, "--epochs", 3, "--estimator", "cd",
               "--k", 2, "--samples", 4, "--sample-steps", 5, "--out", out, "--quiet") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == "exact"  # 8 hidden units: enumerated
    for name in ("params.npz", "history.json", "curves.png", "filters.png", "samples.png"):
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    history = json.loads((out / "history.json").read_text())
    assert history["history"]["epoch"] == [1, 2, 3]
    params = jrbm.load(out / "params.npz")
    assert params.W.shape == (16, 8)
    assert jrbm.io.load_metadata(out / "params.npz")["dataset"] == "bars-and-stripes"
    expected = float(jrbm.exact.log_likelihood(params, jrbm.datasets.bars_and_stripes(4)).mean())
    assert np.isclose(printed["log_likelihood"], expected, rtol=1e-5)

    assert run("evaluate", out / "params.npz", "--method", "ais", "--betas", 200, "--runs", 20) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["method"] == "ais" and ev["dataset"] == "bars-and-stripes"
    # 20 AIS runs of 200 betas on a barely trained model: within 10 of its own standard errors
    assert abs(ev["log_likelihood"] - expected) < 10 * ev["log_z_std"] + 1e-3

    assert run("sample", out / "params.npz", "--n", 6, "--steps", 4, "--out", tmp_path / "s.png") == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (6, 16) and set(np.unique(samples)) <= {0.0, 1.0}
    assert (tmp_path / "s.png").stat().st_size > 0


def test_train_gaussian_toy_with_pt(tmp_path, capsys):
    out = tmp_path / "gb"
    assert run("train", "--dataset", "two-laplace", "--hidden", 4, "--epochs", 2, "--estimator", "pt",
               "--temperatures", 3, "--chains", 10, "--batch-size", 500, "--learn-sigma", "--out", out, "--quiet") == 0
    assert json.loads(capsys.readouterr().out)["method"] == "exact"
    assert isinstance(jrbm.load(out / "params.npz"), jrbm.GaussianRBM)
    assert (out / "density.png").stat().st_size > 0


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert run("evaluate", tmp_path / "missing.npz") == 2
    assert "jrbm evaluate: error:" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    assert run("evaluate", tmp_path / "junk.npz") == 2
    assert "junk.npz" in capsys.readouterr().err


def test_module_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "jrbm", "train", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    for option in ("--dataset", "--model", "--hidden", "--estimator", "--epochs", "--lr", "--seed", "--out"):
        assert option in res.stdout
