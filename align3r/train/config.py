"""The trainer's configuration: plain dataclasses (Hydra stays in ``align3r train``).

Defaults are the paper's recipe (official ``train.sh``, run by
``dust3r/training.py``, ``train``) for 2 processes: batch 2 per
process, 4 accumulation steps ⇒ 16 pairs per optimizer step; lr 5e-5 → 1e-6, 5 warm-up epochs
of 50; AdamW (0.9, 0.95), weight decay 0.05.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from align3r.errors import InputError, check_known_fields
from align3r.train.params import OFFICIAL_TRAINABLE

AMP_MODES = ("auto", "bf16", "fp16", "none")


@dataclass
class OptimConfig:
    lr: float = 5e-5
    min_lr: float = 1e-6
    warmup_epochs: float = 5
    epochs: int = 50
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8


@dataclass
class TrainConfig:
    """How to train (not what on: datasets and the network are built by the caller).

    - ``batch_size``: pairs per process per forward pass; ``accum_iter``: forward passes per
      optimizer step. Pairs per optimizer step = batch_size × processes × accum_iter.
    - ``amp``: ``auto`` = bf16 autocast on CUDA, none on CPU; ``fp16`` adds a grad scaler.
    - ``tf32``: allow TF32 matmuls on CUDA (the reference trains fp32 with TF32 on).
    - ``trainable`` / ``train_decoder_embed``: the substring rule (``align3r.train.params``).
    - ``symmetrize``: feed every pair in both orders (the reference always does).
    - ``conf_alpha``: weight α of the −α·log(confidence) term of the training loss.
    - ``save_freq`` / ``keep_freq`` / ``eval_freq``: in epochs; ``save_every_steps``: also write
      ``checkpoint-last`` every that many optimizer steps (0 = epoch ends only).
    - ``max_steps``: stop after this many optimizer steps in total (checkpoint written, the run
      resumes from there next time); None = train all epochs.
    - ``print_freq``: write a log.jsonl record every that many optimizer steps (and, with
      ``progress=false``, a console line).
    """

    output_dir: str = "checkpoints/align3r_finetune"
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 2
    accum_iter: int = 4
    test_batch_size: int | None = None
    seed: int = 0
    num_workers: int = 8
    device: str = "auto"
    amp: str = "auto"
    tf32: bool = True
    trainable: tuple[str, ...] = OFFICIAL_TRAINABLE
    train_decoder_embed: bool = False
    symmetrize: bool = True
    conf_alpha: float = 0.2
    save_freq: int = 1
    keep_freq: int = 5
    eval_freq: int = 1
    save_every_steps: int = 0
    max_steps: int | None = None
    print_freq: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.optim, dict):
            check_known_fields(OptimConfig, self.optim, "optimizer options (train.optim)")
            self.optim = OptimConfig(**self.optim)
        _convert_fields(self, "")
        problems = []
        if self.batch_size < 1 or self.accum_iter < 1:
            problems.append(f"batch_size ({self.batch_size}) and accum_iter ({self.accum_iter}) must be >= 1")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.optim.epochs < 1 or self.optim.warmup_epochs < 0:
            problems.append("epochs must be >= 1 and warmup_epochs >= 0")
        if not (self.optim.lr > 0 and 0 <= self.optim.min_lr <= self.optim.lr):
            problems.append(f"need 0 <= min_lr ({self.optim.min_lr}) <= lr ({self.optim.lr}) and lr > 0")
        if problems:
            raise InputError("invalid training configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, prefix: str = "",
                  names: dict[str, str] | None = None) -> TrainConfig:
        """From plain values (a config file's ``train:`` section): unknown keys and values of the
        wrong type raise a one-line ``InputError`` "<key>=<value>: expected <type>", the key shown
        as ``prefix + field`` (``train.optim.lr``) or as ``names[field]``."""
        check_known_fields(cls, values, "training options")
        values = dict(values)
        if isinstance(values.get("optim"), dict):
            check_known_fields(OptimConfig, values["optim"], "optimizer options (train.optim)")
            values["optim"] = OptimConfig(**_typed(OptimConfig, values["optim"], prefix + "optim.", {}))
        return cls(**_typed(cls, values, prefix, names or {}))


def _typed(datacls, values: dict[str, Any], prefix: str, names: dict[str, str]) -> dict[str, Any]:
    """``values`` converted to the field types of ``datacls`` (``align3r.typed_values``)."""
    from align3r.typed_values import convert_value

    hints = typing.get_type_hints(datacls)
    return {key: value if key not in hints or isinstance(value, OptimConfig)
            else convert_value(value, hints[key], names.get(key, prefix + key))
            for key, value in values.items()}


def _convert_fields(obj, prefix: str) -> None:
    """Convert (or reject, ``InputError``) every field of ``obj`` in place, nested ``optim`` too."""
    for key, value in _typed(type(obj), {f.name: getattr(obj, f.name) for f in fields(obj)}, prefix, {}).items():
        setattr(obj, key, value)
    if isinstance(getattr(obj, "optim", None), OptimConfig):
        _convert_fields(obj.optim, prefix + "optim.")
