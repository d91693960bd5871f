"""``align3r train``: fine-tune with a Hydra-composed config (one process, or many under torchrun)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

EXTRA_ARGS = "overrides"  # key=value overrides may also follow the options
HELP = "fine-tune on PointOdyssey / FlyingThings3D / ... (torchrun)"
DESCRIPTION = """\
Fine-tune Align3R with the paper's recipe (configs/train/align3r_depthpro.yaml by default).
Any config key can be overridden as key=value (Hydra syntax). The run resumes automatically
from <output_dir>/checkpoint-last.pth.

examples:
  align3r train --config align3r_depthpro data_root=/data output_dir=runs/dp
  torchrun --nproc_per_node 2 -m align3r.cli train --config align3r_depthpro data_root=/data
  torchrun --nproc_per_node 8 -m align3r.cli train --config align3r_depthanything train.accum_iter=1
  align3r train --config tiny data_root=/tmp/tiny_set output_dir=/tmp/run --print-config
"""

log = logging.getLogger("align3r.train")


def default_config_dir() -> Path:
    """The training configs shipped with the package (``configs/train``)."""
    from align3r.configs import config_dir

    return config_dir("train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="align3r_depthpro",
                        help="config name in --config-dir, or a path to a .yaml file (default: %(default)s)")
    parser.add_argument("--config-dir", default=None,
                        help="folder of the training configs (default: the repository's configs/train)")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. train.accum_iter=1")


def compose_config(name: str, config_dir: str | None, overrides: list[str]):
    """Compose ``name`` (+ overrides) with Hydra's compose API; returns an OmegaConf DictConfig."""
    from align3r.commands._hydra import compose_config
    from align3r.errors import InputError

    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        folder, name = path.resolve().parent, path.stem
    else:
        folder = Path(config_dir).resolve() if config_dir else default_config_dir()
    if not folder.is_dir():
        raise InputError(f"training config folder {folder} not found; pass --config-dir <repo>/configs/train")
    return compose_config(folder, name, overrides, f"cannot compose training config {name!r} from {folder}")


def run(args: argparse.Namespace) -> int:
    import os

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from align3r.errors import InputError
    from align3r.train.run import run_training

    cfg = compose_config(args.config, args.config_dir, args.overrides)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=False))
        return 0
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"incomplete training config: {exc}") from None
    from align3r.commands._logging import setup_logging

    setup_logging(logging.INFO, "%(asctime)s %(name)s: %(message)s")
    output_dir = Path(resolved["output_dir"])
    if int(os.environ.get("RANK", "0")) == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    result = run_training(resolved)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{result.status}: epoch {result.epoch}, {result.optimizer_steps} optimizer steps, "
              f"best median test loss {result.best_test_loss:.6g}; checkpoints in {output_dir}")
    return 0
