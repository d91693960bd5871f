"""State-dict conversions and the strict key check.

Our network uses the official parameter names, so an official state dict maps onto ours by
dropping keys that name no parameter of their own; every such key is listed here with its reason.
Anything else missing, extra or mis-shaped is an error that names the keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

from align3r.errors import CheckpointError

# Official keys that are aliases of another key (same tensor under two names), with the canonical
# name they alias and why they exist. The official DPT's ``scratch.layer_rn`` ModuleList holds the
# same four convolutions as ``scratch.layer{1..4}_rn``; safetensors (Hub files) drops them.
_ALIAS = re.compile(r"^(downstream_head[12]\.dpt\.scratch)\.layer_rn\.([0-3])\.weight$")
ALIAS_REASON = "alias of scratch.layer{N}_rn.weight (official ModuleList over the same convolutions)"

PRIOR_PREFIXES = ("patch_embed_point_cloud.", "dec_blocks_pc.", "zero_convs.")
# Keys of a CroCo pretraining checkpoint that no DUSt3R-family network has, with the reason.
CROCO_ONLY_PREFIXES = {"prediction_head.": "CroCo pretraining pixel head, replaced by the DUSt3R heads"}


def canonical_alias(key: str) -> str | None:
    """The canonical key an official alias key stands for, or None for an ordinary key."""
    match = _ALIAS.match(key)
    return f"{match.group(1)}.layer{int(match.group(2)) + 1}_rn.weight" if match else None


def official_to_native(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Map an official state dict (``.pth`` or Hub safetensors) onto our parameter names.

    Drops the 8 DPT alias keys (``downstream_head{1,2}.dpt.scratch.layer_rn.{0..3}.weight``) after
    checking they equal their canonical key; an alias whose canonical key is absent is renamed.
    Tensors are returned as they are (possibly strided views); ``load_state_dict`` copies them.
    """
    out: dict[str, Tensor] = {}
    aliases: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if canonical_alias(key) is None:
            out[key] = value
        else:
            aliases[key] = value
    for key, value in aliases.items():
        canonical = canonical_alias(key)
        if canonical not in out:
            out[canonical] = value
        elif out[canonical].shape != value.shape or not torch.equal(out[canonical], value):
            raise CheckpointError(f"checkpoint keys {key!r} and {canonical!r} should hold the same tensor "
                                  "(official alias) but differ; the file is corrupt or was edited")
    return out


def has_prior_branch(keys) -> bool:
    """Whether a state dict holds the Align3R prior branch (DUSt3R / MonST3R ones do not)."""
    return any(k.startswith(PRIOR_PREFIXES) for k in keys)


def listing(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def check_state_dict(expected: Mapping[str, torch.Size | tuple[int, ...]], state_dict: Mapping[str, Tensor],
                     source: str, what: str) -> None:
    """Raise ``CheckpointError`` unless ``state_dict`` has exactly the ``expected`` keys and shapes.

    ``source`` names the file; ``what`` describes the checkpoint that was expected there.
    """
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != tuple(expected[k]))
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"missing keys: {listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {listing(unexpected)}")
    if wrong:
        parts.append("mis-shaped keys: " + listing(
            [f"{k} {tuple(state_dict[k].shape)} (expected {tuple(expected[k])})" for k in wrong]))
    raise CheckpointError(f"{source} does not match the network it declares ({'; '.join(parts)}). Expected "
                          f"{what}; the file may be truncated, from another model, or edited. Re-download it "
                          f"or pass the right file.")
