"""Build the network, the datasets and the trainer from a plain configuration and train.

The configuration is the resolved content of a ``configs/train/*.yaml`` (a dict); the keys:

- ``output_dir``; ``seed`` (network initialisation and data sampling);
- ``model``: ``preset`` (``align3r.model.PRESETS``), ``overrides`` (config fields to change),
  ``pretrained`` (a DUSt3R/MonST3R checkpoint → ``init_align3r_from_dust3r``; an Align3R one →
  loaded as is; null → random init), ``init_seed`` (seed of the freshly initialised prior branch);
- ``data.train``: ``common`` options + ``datasets`` entries (``align3r.data.build``);
  ``data.test``: ``common``, ``seed``, ``datasets`` as {name: entry};
- ``train``: the fields of :class:`align3r.train.config.TrainConfig`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from align3r.data.build import build_mixture
from align3r.data.mixing import PairSampleSet
from align3r.errors import InputError
from align3r.train import checkpoint as ckpt
from align3r.train.config import TrainConfig
from align3r.train.distributed import setup_distributed, teardown_distributed
from align3r.train.trainer import Trainer, TrainResult

log = logging.getLogger("align3r.train")


def build_network(model_cfg: dict[str, Any]):
    """The training network (ManyAR patch embedding, landscape-only heads) from its config."""
    from align3r.model import Align3RNet, preset

    config = preset(model_cfg.get("preset", "align3r-512-dpt"))
    overrides = dict(model_cfg.get("overrides") or {})
    if overrides:
        config = config.replace(**overrides)
    if not config.with_prior:
        raise InputError("fine-tuning trains the prior branch: the model preset must have with_prior=True")
    return Align3RNet(config.for_training())


def initial_weights(model_cfg: dict[str, Any], net) -> dict[str, torch.Tensor] | None:
    """Weights to start from: a DUSt3R/MonST3R checkpoint mapped by ``init_align3r_from_dust3r``,
    or an Align3R checkpoint as it is (continued fine-tuning); None for a random start."""
    source = model_cfg.get("pretrained")
    if not source:
        return None
    from align3r.model import init_align3r_from_dust3r, read_checkpoint

    loaded = read_checkpoint(source)
    if loaded.config.with_prior:
        return loaded.state_dict
    return init_align3r_from_dust3r(loaded.state_dict, net.config, seed=int(model_cfg.get("init_seed", 0)))


def build_datasets(data_cfg: dict[str, Any], seed: int) -> tuple[PairSampleSet, dict[str, PairSampleSet]]:
    train_cfg = data_cfg.get("train") or {}
    if not train_cfg.get("datasets"):
        raise InputError("data.train.datasets is empty: list the training datasets in the config")
    train = PairSampleSet(build_mixture(train_cfg["datasets"], train_cfg.get("common")), seed=seed)
    test_cfg = data_cfg.get("test") or {}
    tests = {}
    for name, entry in (test_cfg.get("datasets") or {}).items():
        pairs = build_mixture([entry], test_cfg.get("common"))
        # test subsets are drawn once, so epochs are compared on the same pairs and crops
        tests[name] = PairSampleSet(pairs, seed=int(test_cfg.get("seed", 777)), fixed_epoch=0)
    return train, tests


def run_training(cfg: dict[str, Any]) -> TrainResult:
    """Train as ``cfg`` says (see the module docstring); resumes from ``output_dir`` if possible."""
    train_options = dict(cfg.get("train") or {})
    train_options["output_dir"] = cfg["output_dir"]
    train_options.setdefault("seed", int(cfg.get("seed", 0)))
    config = TrainConfig.from_dict(train_options)
    ctx = setup_distributed(config.device)
    torch.manual_seed(config.seed)  # same network initialisation on every rank
    net = build_network(cfg.get("model") or {})
    resuming = (Path(config.output_dir) / ckpt.LAST).is_file()
    init = None if resuming else initial_weights(cfg.get("model") or {}, net)
    train_set, test_sets = build_datasets(cfg.get("data") or {}, config.seed)
    if ctx.is_main:
        log.info("training set: %r", train_set.pairs)
        for name, ds in test_sets.items():
            log.info("test set %s: %r", name, ds.pairs)
    try:
        return Trainer(config, net, train_set, test_sets, init_state_dict=init, ctx=ctx).fit()
    finally:
        teardown_distributed()
