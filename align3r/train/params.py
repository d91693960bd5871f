"""Which parameters train, and the AdamW parameter groups (official
``dust3r/training.py``, ``train_one_epoch``'s ``list_grad``; ``croco/utils/misc.py``,
``get_parameter_groups``).

The reference trains every parameter whose name contains one of :data:`OFFICIAL_TRAINABLE`
(a substring test). ``decoder_embed`` (the 1024 → 768 projection between encoder and decoder)
matches none of them, so it stays frozen with the encoder — a quirk we keep by default;
``train_decoder_embed=True`` adds it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from align3r.errors import InputError

OFFICIAL_TRAINABLE = ("downstream_head", "dec_blocks", "dec_norm", "dec_blocks2", "dec_blocks_pc",
                      "patch_embed_point_cloud", "zero_convs")


def select_trainable(model: nn.Module, substrings: Sequence[str] = OFFICIAL_TRAINABLE,
                     train_decoder_embed: bool = False) -> list[str]:
    """Set ``requires_grad`` by the substring rule; return the names of the trainable parameters."""
    substrings = tuple(substrings) + (("decoder_embed",) if train_decoder_embed else ())
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(any(s in name for s in substrings))
        if param.requires_grad:
            trainable.append(name)
    if not trainable:
        raise InputError(f"no parameter name contains any of {list(substrings)}: nothing would train")
    return trainable


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups over the trainable parameters: biases and 1-D tensors get no weight decay."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
