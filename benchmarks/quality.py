"""Quality on scikit-learn's 8x8 digits: jrbm against scikit-learn's ``BernoulliRBM``.

* Likelihood: a BB-RBM with 100 hidden units trained by jrbm and one trained
  by scikit-learn for the same epochs with the same algorithm and settings as
  scikit-learn's (PCD-1, learning rate 0.06, batch 10, plain SGD), on the
  binarised digits (``jrbm.datasets.digits("binary")``); both scored by the
  same AIS estimate of the test log-likelihood (``jrbm.ais.log_likelihood``,
  the scikit-learn model converted to a ``jrbm.BernoulliRBM``). The two
  differ in initial visible biases: jrbm starts from the data's log-odds,
  scikit-learn from zero.
* Features: scikit-learn's example pipeline ("Restricted Boltzmann Machine
  features for digit classification": RBM with 100 units, learning rate 0.06,
  then ``LogisticRegression(solver="newton-cg", C=6000)``; raw pixels with
  ``C=100``) on the pixels scaled to ``[0, 1]``
  (``jrbm.datasets.digits("unit")``), without the example's nudged copies of
  the training set, and with the solver's default tolerance (the example's
  ``tol=1`` stops newton-cg before its first step with scikit-learn 1.9's
  mean-loss scaling: every classifier then scores 0.1). jrbm's features are
  ``jrbm.p_h_given_v``.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jrbm
from benchmarks import common

N_HIDDEN = 100
LR = 0.06
BATCH = 10

SIZES = {
    "small": dict(epochs=10, ais_betas=3000),
    "full": dict(epochs=30, ais_betas=None),
}


def _sklearn_rbm(train: np.ndarray, epochs: int, seed: int = 0):
    from sklearn.neural_network import BernoulliRBM

    rbm = BernoulliRBM(n_components=N_HIDDEN, learning_rate=LR, batch_size=BATCH, n_iter=epochs, random_state=seed)
    return rbm.fit(train)


def _from_sklearn(rbm) -> jrbm.BernoulliRBM:
    return jrbm.BernoulliRBM(
        W=jnp.asarray(rbm.components_.T, jnp.float32),
        b=jnp.asarray(rbm.intercept_visible_, jnp.float32),
        c=jnp.asarray(rbm.intercept_hidden_, jnp.float32),
    )


def _jrbm_rbm(train: np.ndarray, epochs: int, seed: int = 0) -> jrbm.BernoulliRBM:
    key_init, key_fit = jax.random.split(jax.random.key(seed))
    params = jrbm.init_bernoulli(key_init, train.shape[1], N_HIDDEN, data=train)
    params, _ = jrbm.fit(
        key_fit,
        params,
        train,
        optimizer=optax.sgd(LR),
        estimator=jrbm.PCD(1, n_chains=BATCH),
        epochs=epochs,
        batch_size=BATCH,
        progress=False,
    )
    return params


def likelihood(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    split = jrbm.datasets.digits("binary")
    out: dict[str, Any] = {"epochs": cfg["epochs"], "rows": []}
    models = {}
    t0 = time.perf_counter()
    models["jrbm (PCD-1)"] = _jrbm_rbm(split.train, cfg["epochs"])
    t_j = time.perf_counter() - t0
    t0 = time.perf_counter()
    models["scikit-learn BernoulliRBM (PCD-1)"] = _from_sklearn(_sklearn_rbm(split.train, cfg["epochs"]))
    t_s = time.perf_counter() - t0
    betas = cfg["ais_betas"]
    for (name, params), t in zip(models.items(), (t_j, t_s)):
        test_ll, res = jrbm.ais.log_likelihood(jax.random.key(5), params, split.test, data=split.train, betas=betas, n_runs=100)
        train_ll = float(jnp.mean(-jrbm.free_energy(params, split.train)) - res.log_z)
        out["rows"].append(
            {
                "model": name,
                "train_s": t,
                "test_ll": float(test_ll),
                "train_ll": train_ll,
                "log_z": float(res.log_z),
                "log_z_std": float(res.log_z_std),
            }
        )
    out["ais"] = (
        "default schedule (14,500 betas)" if betas is None else f"{betas} equally spaced betas"
    ) + ", 100 runs, base model from the training data"
    return out


def features(size: str) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    cfg = SIZES[size]
    split = jrbm.datasets.digits("unit")
    x_tr, x_te, y_tr, y_te = split.train, split.test, split.train_labels, split.test_labels

    def accuracy(f_tr, f_te, c):
        clf = LogisticRegression(solver="newton-cg", C=c, max_iter=1000).fit(f_tr, y_tr)
        return float(clf.score(f_te, y_te))

    rows = [{"features": "raw pixels", "accuracy": accuracy(x_tr, x_te, 100.0)}]
    sk = _sklearn_rbm(x_tr, cfg["epochs"])
    rows.append({"features": "scikit-learn BernoulliRBM", "accuracy": accuracy(sk.transform(x_tr), sk.transform(x_te), 6000.0)})
    params = _jrbm_rbm(x_tr, cfg["epochs"])
    f = jax.jit(jrbm.p_h_given_v)
    rows.append(
        {"features": "jrbm (PCD-1)", "accuracy": accuracy(np.asarray(f(params, x_tr)), np.asarray(f(params, x_te)), 6000.0)}
    )
    return {"epochs": cfg["epochs"], "rows": rows}


def run(size: str) -> dict[str, Any]:
    return {"likelihood": likelihood(size), "features": features(size)}


def markdown(res: dict[str, Any]) -> str:
    lk, ft = res["likelihood"], res["features"]
    out = [
        f"### Digits (8x8, binarised): test log-likelihood after {lk['epochs']} epochs, 100 hidden units\n",
        f"Both models scored by the same AIS: {lk['ais']}.\n",
        common.markdown_table(
            ["model", "test log-likelihood", "train log-likelihood", "log Z", "log Z std. err.", "training s (jrbm: with compilation)"],
            [[r["model"], r["test_ll"], r["train_ll"], r["log_z"], r["log_z_std"], r["train_s"]] for r in lk["rows"]],
        ),
        f"\n### Digits (8x8, in [0, 1]): RBM features + logistic regression, {ft['epochs']} epochs\n",
        common.markdown_table(["features", "test accuracy"], [[r["features"], r["accuracy"]] for r in ft["rows"]]),
    ]
    return "\n".join(out)
