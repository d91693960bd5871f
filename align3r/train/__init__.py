"""Fine-tuning: criteria, schedule, parameter selection, checkpoints and the DDP trainer.

``align3r train`` (``align3r.commands.train``) composes the Hydra config and calls
:func:`align3r.train.run.run_training`; from Python, build a :class:`Trainer` directly.
"""

from align3r.train.config import OptimConfig, TrainConfig
from align3r.train.losses import ConfLoss, Regr3D, ScaleShiftInvLoss
from align3r.train.params import OFFICIAL_TRAINABLE, parameter_groups, select_trainable
from align3r.train.schedule import learning_rate
from align3r.train.trainer import Trainer, TrainResult, symmetrize_batch

__all__ = [
    "OFFICIAL_TRAINABLE",
    "ConfLoss",
    "OptimConfig",
    "Regr3D",
    "ScaleShiftInvLoss",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "learning_rate",
    "parameter_groups",
    "select_trainable",
    "symmetrize_batch",
]
