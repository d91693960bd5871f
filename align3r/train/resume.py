"""Resuming a training run: compare the command's settings with the run's, say what changed.

A run resumes from ``<output_dir>/checkpoint-last.pth``; ``<output_dir>/config.yaml`` keeps the
settings it started with and the checkpoint's ``train_config`` the training options it last
used. :func:`check_resume` lists the settings that differ (a warning; run-control keys at info
level) and appends them to ``config-changes.jsonl``, once per resume.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from align3r.errors import InputError
from align3r.train import checkpoint as ckpt
from align3r.typed_values import show_value

log = logging.getLogger(__name__)

#: Changing these on resume does not change what is learned: listed at info level, not warned about.
RUN_CONTROL_KEYS = ("train.max_steps", "train.save_every_steps", "train.num_workers", "train.progress",
                    "train.print_freq", "train.device")
#: Differences between the run's settings and the command's, one JSON line per resume.
CHANGES_LOG = "config-changes.jsonl"


def flatten_settings(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"a.b.c": value}`` (lists of mappings by index; values as JSON sees them)."""
    if isinstance(values, dict):
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(flatten_settings(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    if isinstance(values, (list, tuple)) and any(isinstance(v, dict) for v in values):
        out = {}
        for i, value in enumerate(values):
            out.update(flatten_settings(value, f"{prefix}{i}."))
        return out
    if isinstance(values, tuple):
        values = list(values)
    return {prefix[:-1]: json.loads(json.dumps(values, default=str))}


def _train_config_dict(resolved: dict[str, Any]) -> dict[str, Any] | None:
    """The command's ``TrainConfig`` as the Trainer stores it (``train_config``), or None if invalid
    (the training then reports why)."""
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
    new_flat = flatten_settings(resolved)
    if original is not None:
        old_flat = flatten_settings(original)
        for key in sorted(set(old_flat) | set(new_flat)):
            if key != "output_dir" and old_flat.get(key) != new_flat.get(key):
                changes[key] = (old_flat.get(key), new_flat.get(key))
    stored, current = state.get("train_config"), _train_config_dict(resolved)
    if isinstance(stored, dict) and current is not None:
        old_train, new_train = flatten_settings(stored), flatten_settings(current)
        for key in sorted(set(old_train) | set(new_train)):
            shown = "seed" if key == "seed" and "seed" not in (resolved.get("train") or {}) else f"train.{key}"
            changes.pop(f"train.{key}", None)  # the checkpoint's value is what the run last used
            if key != "output_dir" and old_train.get(key) != new_train.get(key):
                changes[shown] = (old_train.get(key), new_train.get(key))
    return dict(sorted(changes.items()))


def read_resume_state(path: Path) -> dict[str, Any] | None:
    """The resume checkpoint's small entries (position, train config), memory-mapped; None if it
    cannot be read (the training then says why)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    keep = ("epoch", "step", "optimizer_steps", "best_test_loss", "train_config")
    return {k: state[k] for k in keep if k in state} if isinstance(state, dict) else None


def read_run_config(path: Path) -> dict[str, Any] | None:
    """The run's ``config.yaml`` as a mapping; None when missing or unreadable."""
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return values if isinstance(values, dict) else None


def _show(value: Any) -> str:
    return "(unset)" if value is None else show_value(value)


def check_resume(output_dir: Path, resolved: dict[str, Any], report: bool = True) -> dict[str, Any] | None:
    """Before a run that resumes (``checkpoint-last.pth`` exists): compare the command's settings
    with the run's, warn listing those that differ, and log them to ``config-changes.jsonl``
    when they will be used. Returns the checkpoint's small entries (None for a fresh run), with
    ``"finished": True`` when the run has already trained every epoch and a final checkpoint
    exists (nothing to do). ``report``: warn and log (the main process only)."""
    last = output_dir / ckpt.LAST
    if not last.is_file():
        return None
    state = read_resume_state(last)
    if state is None:
        return {}
    epochs = ((resolved.get("train") or {}).get("optim") or {}).get("epochs")
    epoch, step = int(state.get("epoch", 0)), int(state.get("step", 0))
    finished = (isinstance(epochs, int) and epoch >= epochs and step == 0 and (output_dir / ckpt.FINAL).is_file())
    state["finished"] = finished
    if not report:
        return state
    changes = settings_changes(resolved, state, read_run_config(output_dir / "config.yaml"))
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
