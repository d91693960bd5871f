"""Training's starting point: a DUSt3R (or CroCo) checkpoint mapped onto a fresh Align3R network.

The official code loads the DUSt3R weights non-strictly into the Align3R network (official
``dust3r/training.py``, ``train``, ``--pretrained``); here every key is accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from align3r.errors import CheckpointError
from align3r.model.config import Align3RConfig
from align3r.model.network import Align3RNet
from align3r.model.state_dict import CROCO_ONLY_PREFIXES, has_prior_branch, listing, official_to_native


def init_align3r_from_dust3r(state_dict: Mapping[str, Tensor], config: Align3RConfig, *,
                             seed: int = 0) -> dict[str, Tensor]:
    """A full Align3R state dict initialised from a DUSt3R (or CroCo) checkpoint, for training.

    - Keys of the source network are taken as they are (official alias keys dropped).
    - ``dec_blocks2.*`` is copied from ``dec_blocks.*`` only when the source has no
      ``dec_blocks2`` key (CroCo checkpoints); unlike the official prefix test this never copies
      the prior branch's ``dec_blocks_pc``.
    - The prior branch is freshly initialised as the official network does (patch projection
      PyTorch default, blocks xavier / zero bias / LayerNorm 1-0, injections zero), seeded by
      ``seed``; so are heads a CroCo checkpoint lacks. CroCo-only keys (``prediction_head``) are
      dropped; any other unknown key is an error.

    ``config`` must have ``with_prior=True``. Pure: the inputs are not modified.
    """
    if not config.with_prior:
        raise CheckpointError("init_align3r_from_dust3r needs a config with the prior branch (with_prior=True)")
    source = official_to_native(state_dict)
    if has_prior_branch(source):
        raise CheckpointError("the source checkpoint already has a prior branch: it is an Align3R checkpoint, "
                              "load it with load_model instead")
    source = {k: v for k, v in source.items() if not k.startswith(tuple(CROCO_ONLY_PREFIXES))}
    if not any(k.startswith("dec_blocks2.") for k in source):
        source.update({"dec_blocks2." + k[len("dec_blocks."):]: v for k, v in source.items()
                       if k.startswith("dec_blocks.")})
    devices = torch.random.fork_rng(devices=[])
    with devices:
        torch.manual_seed(seed)
        fresh = Align3RNet(config).state_dict()
    unknown = sorted(set(source) - set(fresh))
    wrong = sorted(k for k in set(source) & set(fresh) if source[k].shape != fresh[k].shape)
    if unknown or wrong:
        raise CheckpointError("the source checkpoint does not fit this configuration: "
                              + "; ".join(p for p in (
                                  f"unknown keys {listing(unknown)}" if unknown else "",
                                  f"mis-shaped keys {listing(wrong)}" if wrong else "") if p))
    return {k: (source[k].detach().clone().contiguous() if k in source else v) for k, v in fresh.items()}
