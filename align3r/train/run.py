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

log = logging.getLogger(__name__)


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
    from align3r.errors import CheckpointError
    from align3r.model import init_align3r_from_dust3r, read_checkpoint

    loaded = read_checkpoint(source)
    what = f"model.pretrained {loaded.path}"
    fix, otherwise = "set", "choose a model.pretrained of this run's architecture"
    if loaded.config.with_prior:
        ckpt.check_fits(net, loaded.state_dict, what, loaded.config, fix, otherwise)
        return loaded.state_dict
    try:
        return init_align3r_from_dust3r(loaded.state_dict, net.config, seed=int(model_cfg.get("init_seed", 0)))
    except CheckpointError as exc:
        advice = ckpt.mismatch_advice(loaded.config, net.config, fix, otherwise)
        raise CheckpointError(f"{what} does not fit the network of this run ({exc}); {advice}") from None


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


def _entries(data_cfg: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(config key, drop override, options) of every dataset entry: train list items, then test sets."""
    out = []
    train_cfg = data_cfg.get("train") or {}
    for i, entry in enumerate(train_cfg.get("datasets") or []):
        key = f"data.train.datasets.{i}"
        out.append((key, f"~{key}", {**(train_cfg.get("common") or {}), **dict(entry or {})}))
    test_cfg = data_cfg.get("test") or {}
    for name, entry in (test_cfg.get("datasets") or {}).items():
        key = f"data.test.datasets.{name}"
        out.append((key, f"~{key}", {**(test_cfg.get("common") or {}), **dict(entry or {})}))
    return out


def check_data(data_cfg: dict[str, Any], origin=None) -> None:
    """Cheap checks of the dataset entries before anything is loaded (datasets scanned, weights
    read or downloaded): every size a positive integer, every root an existing folder. One
    ``InputError`` naming the config keys; a missing folder comes with the exact overrides that
    drop its entries from the mixture. ``origin(key)`` may say where a key's value came from
    (e.g. `` (= ${test_pairs})``)."""
    origin = origin or (lambda key: "")
    problems, missing = [], []
    for key, drop, options in _entries(data_cfg):
        size = options.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            problems.append(f"{key}.size={size}{origin(key + '.size')}: a mixture size must be a positive integer "
                            "(pairs per epoch)")
        root = options.get("root")
        if root is not None and not Path(str(root)).is_dir():
            missing.append((key, options.get("name"), root, drop))
    if missing:
        listed = "; ".join(f"{key} ({name}): {root}{origin(key + '.root')}" for key, name, root, _ in missing)
        drops = " ".join(f"'{drop}'" for *_, drop in missing)
        problems.append(f"dataset folder(s) not found: {listed}. Prepare them (docs/training.md §1), set data_root "
                        f"to the folder holding them, or train without them by dropping them from the mixture: "
                        f"add the override(s) {drops}")
    if problems:
        raise InputError("; ".join(problems))


def train_config(cfg: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of a run config: its ``train`` section, ``output_dir`` and (unless
    ``train.seed`` is set) ``seed``; a bad key or value type is a one-line ``InputError`` naming
    the key as given on the command line (``train.optim.lr=abc: expected a number``)."""
    train_options = dict(cfg.get("train") or {})
    names = {"output_dir": "output_dir"}  # the command-line keys, for messages
    if "seed" not in train_options:
        names["seed"] = "seed"
        train_options["seed"] = cfg.get("seed", 0)
    train_options["output_dir"] = cfg.get("output_dir")
    return TrainConfig.from_dict(train_options, prefix="train.", names=names)


def run_training(cfg: dict[str, Any]) -> TrainResult:
    """Train as ``cfg`` says (see the module docstring); resumes from ``output_dir`` if possible.

    Data problems (sizes, missing folders, empty datasets) are reported before the initial
    weights are read. At the end, ``final_model/config.json`` records the prior the network was
    trained with (``align3r.priors.compatibility.prior_of_training_config``)."""
    config = train_config(cfg)
    check_data(cfg.get("data") or {})
    ctx = setup_distributed(config.device)
    torch.manual_seed(config.seed)  # same network initialisation on every rank
    net = build_network(cfg.get("model") or {})
    train_set, test_sets = build_datasets(cfg.get("data") or {}, config.seed)
    resuming = (Path(config.output_dir) / ckpt.LAST).is_file()
    init = None if resuming else initial_weights(cfg.get("model") or {}, net)
    if ctx.is_main:
        log.info("training set: %r", train_set.pairs)
        for name, ds in test_sets.items():
            log.info("test set %s: %r", name, ds.pairs)
    try:
        result = Trainer(config, net, train_set, test_sets, init_state_dict=init, ctx=ctx).fit()
        if ctx.is_main and result.status == "finished":
            record_training_prior(Path(config.output_dir) / ckpt.FINAL_MODEL_DIR, cfg)
        return result
    finally:
        teardown_distributed()


def record_training_prior(final_model: Path, cfg: dict[str, Any]) -> None:
    """Write the prior and prior representation of the training data into ``final_model/config.json``
    (so ``align3r infer model=<run>/final_model`` picks them), unless already recorded there."""
    from align3r.model.checkpoints.write import write_training_metadata
    from align3r.priors.compatibility import prior_of_training_config, read_training_entry

    metadata = prior_of_training_config(cfg)
    if not metadata or not (final_model / "config.json").is_file():
        return
    if read_training_entry(final_model) == metadata:
        return
    write_training_metadata(final_model, metadata)
