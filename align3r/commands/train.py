"""``align3r train``: fine-tune with a Hydra-composed config (one process, or many under torchrun)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

EXTRA_ARGS = "overrides"  # key=value overrides may also follow the options
HELP = "fine-tune on PointOdyssey / FlyingThings3D / ... (torchrun)"
DESCRIPTION = """\
Fine-tune Align3R with the paper's recipe (configs/train/align3r_depthpro.yaml by default).
Any config key can be overridden as key=value (Hydra syntax). The run resumes automatically
from <output_dir>/checkpoint-last.pth; settings that differ from the checkpoint's are listed in a
warning, and <output_dir>/config.yaml keeps the settings the run started with.

Your own config (a .yaml path or a name in --config-dir) can build on the shipped ones: they stay
on the search path after its own folder, e.g. `defaults: [align3r_depthpro, _self_]`.

examples:
  align3r train --config align3r_depthpro data_root=/data output_dir=runs/dp
  torchrun --nproc_per_node 2 -m align3r.cli train --config align3r_depthpro data_root=/data
  torchrun --nproc_per_node 8 -m align3r.cli train --config align3r_depthanything train.accum_iter=1
  align3r train --config tiny data_root=/tmp/tiny_set output_dir=/tmp/run --print-config
  align3r train --config my_configs/mine.yaml data_root=/data
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="align3r_depthpro",
                        help="config name (in --config-dir or the shipped configs/train), or a path to a .yaml "
                             "file (default: %(default)s)")
    parser.add_argument("--config-dir", default=None,
                        help="folder of your own training configs, searched before the shipped configs/train")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. train.accum_iter=1")


def compose_config(name: str, config_dir: str | None, overrides: list[str]):
    """Compose ``name`` (a ``.yaml`` path or a config name) + overrides; returns an OmegaConf
    DictConfig. Searched: the file's folder, then ``config_dir``, then the shipped
    ``configs/train``, so a user config can name shipped configs (``defaults: [align3r_depthpro,
    ...]``) and data groups (``override data: processed``); see ``align3r.configs.find_config``."""
    from align3r.commands._hydra import compose_command_config

    return compose_command_config(name, overrides, config_dir=config_dir, shipped="train", what="training config")


def _origin(cfg):
    """``key -> " (= ${x})"`` for values of the composed config that come from an interpolation."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=False)

    def origin(key: str) -> str:
        value: Any = raw
        for part in key.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return ""
        return f" (= {value})" if isinstance(value, str) and "${" in value else ""

    return origin


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from align3r.errors import InputError
    from align3r.train.resume import check_resume
    from align3r.train.run import check_data, run_training, train_config

    main = int(os.environ.get("RANK", "0")) == 0
    cfg = compose_config(args.config, args.config_dir, args.overrides)
    if args.print_config:
        if main:  # under torchrun every process composes; one prints
            print(OmegaConf.to_yaml(cfg, resolve=False))
        return 0
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"incomplete training config: {exc}") from None
    from align3r.commands._logging import setup_logging

    setup_logging(logging.INFO, "%(asctime)s %(name)s: %(message)s")
    train_config(resolved)  # bad keys or value types: before anything is written
    check_data(resolved.get("data") or {}, _origin(cfg))
    output_dir = Path(resolved["output_dir"])
    state = check_resume(output_dir, resolved, report=main)  # every process: all return if finished
    if state and state.get("finished"):
        if not main:
            return 0
        print(f"finished: epoch {state.get('epoch')}, {state.get('optimizer_steps')} optimizer steps, best median "
              f"test loss {float(state.get('best_test_loss', float('inf'))):.6g}; nothing to do (checkpoints in "
              f"{output_dir})")
        return 0
    if main and state is None:  # a fresh run: the settings it starts with
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    result = run_training(resolved)
    if main:
        print(f"{result.status}: epoch {result.epoch}, {result.optimizer_steps} optimizer steps, "
              f"best median test loss {result.best_test_loss:.6g}; checkpoints in {output_dir}")
    return 0
