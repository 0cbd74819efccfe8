"""Training: ``optax`` updates driven by any gradient estimator, one compiled scan per epoch.

The estimators return loss gradients (of the mean negative log-likelihood), so an ``optax`` optimiser
minimising the mean negative log-likelihood needs no sign flip. The usual
recipes of Hinton's practical guide are ``optax`` compositions:

* weight decay on ``W`` only::

    optax.chain(
        optax.add_decayed_weights(2e-4, mask=jrbm.train.weights_only),
        optax.sgd(0.05),
    )

* momentum 0.5 for the first epochs, then 0.9 (Hinton's guide, section 9)::

    steps_per_epoch = len(data) // batch_size
    momentum = optax.join_schedules(
        [optax.constant_schedule(0.5), optax.constant_schedule(0.9)], [5 * steps_per_epoch])
    optax.inject_hyperparams(optax.sgd)(learning_rate=0.05, momentum=momentum)

  (``optax.sgd`` takes a fixed momentum; ``inject_hyperparams`` lets it follow a
  schedule.)

For a GB-RBM, ``log_sigma`` is frozen unless ``learn_sigma=True``: the tutorial's
"a as a hyper-parameter" (section 3), done by ``optax.multi_transform`` with
``optax.set_to_zero`` on that leaf.

Scaling out (:mod:`jrbm.parallel`): :func:`fit_ensemble` trains ``N`` models
(seeds, initialisations, learning rates) in one compiled program by
``jax.vmap``; ``fit(..., mesh=...)`` splits minibatches and chains across
devices and lets XLA reduce the gradient. Both run the same per-model epoch,
:func:`fit_epoch`.
"""

from jrbm.train import checkpoint, ensemble, loop, monitor, step
from jrbm.train.checkpoint import FitState
from jrbm.train.ensemble import fit_ensemble
from jrbm.train.loop import fit
from jrbm.train.step import (
    MONITOR_SIZE,
    Optimizer,
    TrainState,
    epoch_keys,
    fit_epoch,
    has_sigma,
    init_state,
    make_optimizer,
    monitor_rows,
    train_epoch,
    train_step,
    weights_only,
)

__all__ = [
    "MONITOR_SIZE",
    "monitor_rows",
    "FitState",
    "Optimizer",
    "TrainState",
    "checkpoint",
    "ensemble",
    "epoch_keys",
    "fit",
    "fit_ensemble",
    "fit_epoch",
    "has_sigma",
    "init_state",
    "loop",
    "make_optimizer",
    "monitor",
    "step",
    "train_epoch",
    "train_step",
    "weights_only",
]
