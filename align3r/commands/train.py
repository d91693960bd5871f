"""``align3r train``: fine-tune with a Hydra-composed config (one process, or many under torchrun)."""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import time
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

log = logging.getLogger(__name__)

#: Changing these on resume does not change what is learned: listed at info level, not warned about.
RUN_CONTROL_KEYS = ("train.max_steps", "train.save_every_steps", "train.num_workers", "train.progress",
                    "train.print_freq", "train.device")
#: Differences between the run's settings and the command's, one JSON line per resume.
CHANGES_LOG = "config-changes.jsonl"


def default_config_dir() -> Path:
    """The training configs shipped with the package (``configs/train``)."""
    from align3r.configs import config_dir

    return config_dir("train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="align3r_depthpro",
                        help="config name (in --config-dir or the shipped configs/train), or a path to a .yaml "
                             "file (default: %(default)s)")
    parser.add_argument("--config-dir", default=None,
                        help="folder of your own training configs, searched before the shipped configs/train")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. train.accum_iter=1")


def _config_names(folders: list[Path]) -> list[str]:
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def compose_config(name: str, config_dir: str | None, overrides: list[str]):
    """Compose ``name`` (+ overrides) with Hydra's compose API; returns an OmegaConf DictConfig.

    ``name`` is a ``.yaml`` path or a config name. The search path is the config file's folder,
    then ``config_dir``, then the shipped ``configs/train``, so a user config can name shipped
    configs (``defaults: [align3r_depthpro, ...]``) and data groups (``override data: processed``).
    A name found only among the shipped configs is composed from there, ``config_dir`` then comes
    second."""
    from align3r.commands._hydra import compose_config
    from align3r.errors import InputError

    shipped = default_config_dir()
    user_dir = None
    if config_dir:
        user_dir = Path(config_dir).expanduser().resolve()
        if not user_dir.is_dir():
            raise InputError(f"--config-dir {config_dir}: folder {user_dir} not found")
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in name or "/" in name:
        if not path.is_file():
            raise InputError(f"training config file {name} not found (looked at {path.resolve()}); give a .yaml "
                             f"file or a config name ({', '.join(_config_names([d for d in (user_dir, shipped) if d]))})")
        if path.suffix not in (".yaml", ".yml"):
            raise InputError(f"training config {name} is not a .yaml file")
        primary, name = path.resolve().parent, path.stem
        rest = [d for d in (user_dir, shipped) if d is not None]
    else:
        candidates = [d for d in (user_dir, shipped) if d is not None]
        found = [d for d in candidates if (d / f"{name}.yaml").is_file()]
        if not found:
            names = _config_names(candidates)
            close = difflib.get_close_matches(name, names, n=len(names), cutoff=0.5)
            ordered = close + [n for n in names if n not in close]
            where = " or ".join(str(d) for d in candidates)
            raise InputError(f"no training config {name!r} in {where}; available: {', '.join(ordered)}"
                             + (f" (did you mean {close[0]}?)" if close else "")
                             + "; or give a path to a .yaml file")
        primary = found[0]
        rest = [d for d in candidates if d != primary]
    return compose_config(primary, name, overrides, f"cannot compose training config {name!r} from {primary}",
                          search_path=rest)


# ------------------------------------------------------------------------------ resume checks


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict):
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    if isinstance(values, (list, tuple)) and any(isinstance(v, dict) for v in values):
        out = {}
        for i, value in enumerate(values):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out
    if isinstance(values, tuple):
        values = list(values)
    return {prefix[:-1]: json.loads(json.dumps(values, default=str))}


def _train_config_dict(resolved: dict[str, Any]) -> dict[str, Any] | None:
    """The command's ``TrainConfig`` as the Trainer stores it (``train_config``), or None if invalid
    (the training then reports why)."""
    from align3r.errors import InputError
    from align3r.train.run import train_config

    try:
        return train_config(resolved).to_dict()
    except InputError:
        return None


def settings_changes(resolved: dict[str, Any], state: dict[str, Any], original: dict[str, Any] | None
                     ) -> dict[str, tuple[Any, Any]]:
    """``{key: (the run's value, this command's)}`` for every setting that differs: the training
    options against the checkpoint's ``train_config``, everything else against the run's
    ``config.yaml`` (``original``, when there is one). ``output_dir`` is not compared."""
    changes: dict[str, tuple[Any, Any]] = {}
    new_flat = _flatten(resolved)
    if original is not None:
        old_flat = _flatten(original)
        for key in sorted(set(old_flat) | set(new_flat)):
            if key != "output_dir" and old_flat.get(key) != new_flat.get(key):
                changes[key] = (old_flat.get(key), new_flat.get(key))
    stored, current = state.get("train_config"), _train_config_dict(resolved)
    if isinstance(stored, dict) and current is not None:
        old_train, new_train = _flatten(stored), _flatten(current)
        for key in sorted(set(old_train) | set(new_train)):
            shown = "seed" if key == "seed" and "seed" not in (resolved.get("train") or {}) else f"train.{key}"
            changes.pop(f"train.{key}", None)  # the checkpoint's value is what the run last used
            if key != "output_dir" and old_train.get(key) != new_train.get(key):
                changes[shown] = (old_train.get(key), new_train.get(key))
    return dict(sorted(changes.items()))


def _read_state(path: Path) -> dict[str, Any] | None:
    """The resume checkpoint's small entries (position, train config), memory-mapped; None if it
    cannot be read (the training then says why)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    keep = ("epoch", "step", "optimizer_steps", "best_test_loss", "train_config")
    return {k: state[k] for k in keep if k in state} if isinstance(state, dict) else None


def _read_yaml(path: Path) -> dict[str, Any] | None:
    import yaml

    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return values if isinstance(values, dict) else None


def _show(value: Any) -> str:
    from align3r.commands._settings import show_value

    return "(unset)" if value is None else show_value(value)


def check_resume(output_dir: Path, resolved: dict[str, Any], report: bool = True) -> dict[str, Any] | None:
    """Before a run that resumes (``checkpoint-last.pth`` exists): compare the command's settings
    with the run's, warn listing those that differ, and log them to ``config-changes.jsonl``
    when they will be used. Returns the checkpoint's small entries (None for a fresh run), with
    ``"finished": True`` when the run has already trained every epoch and a final checkpoint
    exists (nothing to do). ``report``: warn and log (the main process only)."""
    from align3r.train import checkpoint as ckpt

    last = output_dir / ckpt.LAST
    if not last.is_file():
        return None
    state = _read_state(last)
    if state is None:
        return {}
    epochs = ((resolved.get("train") or {}).get("optim") or {}).get("epochs")
    epoch, step = int(state.get("epoch", 0)), int(state.get("step", 0))
    finished = (isinstance(epochs, int) and epoch >= epochs and step == 0 and (output_dir / ckpt.FINAL).is_file())
    state["finished"] = finished
    if not report:
        return state
    changes = settings_changes(resolved, state, _read_yaml(output_dir / "config.yaml"))
    shown = [f"{k}: {_show(old)} -> {_show(new)}" for k, (old, new) in changes.items()]
    control = [s for s, k in zip(shown, changes) if k in RUN_CONTROL_KEYS]
    learning = [s for s, k in zip(shown, changes) if k not in RUN_CONTROL_KEYS]
    if finished:
        if changes:
            log.warning("%s has finished (epoch %d of %d): nothing is trained, and these settings that differ from "
                        "the run's are not used: %s. To train with them, pass a new output_dir (or raise "
                        "train.optim.epochs to continue this run)", output_dir, epoch, epochs, "; ".join(shown))
        return state
    where = f"resuming {last} at epoch {epoch}, batch {step}"
    if learning:
        log.warning("%s with settings that differ from the run's: %s. They apply from here on (model.pretrained "
                    "is not read when resuming); %s keeps the settings the run started with, the changes are "
                    "logged in %s. To train with them from the start, pass a new output_dir",
                    where, "; ".join(learning), output_dir / "config.yaml", output_dir / CHANGES_LOG)
    if control:
        log.info("%s; run-control settings changed: %s", where, "; ".join(control))
    if changes:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": epoch, "step": step,
                  "optimizer_steps": state.get("optimizer_steps"),
                  "changes": {k: [old, new] for k, (old, new) in changes.items()}}
        with open(output_dir / CHANGES_LOG, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
    return state


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
