"""Likelihood monitors of :func:`jrbm.fit`, through the public kernels of :mod:`jrbm.exact` and :mod:`jrbm.ais`."""

from __future__ import annotations

import jax.numpy as jnp

from jrbm import _checks, ais, exact, parallel
from jrbm.model import base_rate, free_energy_unchecked
from jrbm.train.step import epoch_keys


def evaluate_likelihood(key_train, epoch, params, data, validation, betas, *, kind, n_runs, mesh):
    """The likelihood monitors of one model after epoch ``epoch``: a dict of scalars (pure)."""
    if kind == "exact":
        out = {"log_likelihood": jnp.mean(exact.log_likelihood(params, data, check=False))}
        if validation is not None:
            out["val_log_likelihood"] = jnp.mean(exact.log_likelihood(params, validation, check=False))
        return out
    _, key_eval = epoch_keys(key_train, epoch)
    res = ais.forward(key_eval, base_rate(params, data), params, betas, n_runs, mesh)
    out = {"log_likelihood": -jnp.mean(free_energy_unchecked(params, data)) - res.log_z, "log_z_std": res.log_z_std}
    if validation is not None:
        out["val_log_likelihood"] = -jnp.mean(free_energy_unchecked(params, validation)) - res.log_z
    return out


def likelihood_names(kind, has_validation: bool) -> tuple[str, ...]:
    """The entries :func:`evaluate_likelihood` returns for ``kind`` (``"exact"`` or ``"ais"``), for a history that
    holds them from its first epoch."""
    return ("log_likelihood",) + (("log_z_std",) if kind == "ais" else ()) + (("val_log_likelihood",) if has_validation else ())


def eval_settings(kind, ais_kwargs, dtype, mesh):
    """``(betas, n_runs)`` of the AIS monitor (``(None, 0)`` for the exact one), checked."""
    if kind != "ais":
        if ais_kwargs:
            raise ValueError(f"ais_kwargs: only used with log_likelihood='ais', got {ais_kwargs!r} with log_likelihood={kind!r}")
        return None, 0
    kwargs = dict(ais_kwargs or {})
    unknown = set(kwargs) - {"betas", "n_runs"}
    if unknown:
        raise TypeError(f"ais_kwargs: expected only 'betas' and 'n_runs' (fit passes the data itself), got {sorted(unknown)}")
    betas = ais.schedule(kwargs.get("betas"), dtype)
    n_runs = _checks.positive_int("n_runs", kwargs.get("n_runs", ais.N_RUNS))
    if mesh is not None:
        parallel.check_divisible("ais_kwargs['n_runs']", n_runs, mesh, "AIS runs")
    return betas, n_runs
