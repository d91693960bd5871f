"""How a network written by ``align3r train`` was trained (prior, prior representation), read
without loading its weights.

Reading, writing and converting checkpoint files lives in ``align3r.model.checkpoints``; loading
a network in ``align3r.model.load``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from align3r.model.checkpoints.format import FORMAT_KEY, TRAINING_KEY
from align3r.model.registry import HUB_CONFIG, REGISTRY


def read_training_entry(directory: str | Path) -> dict[str, Any] | None:
    """The ``"training"`` entry of ``directory/config.json`` (see :func:`write_checkpoint`), or None."""
    try:
        values = json.loads((Path(directory) / HUB_CONFIG).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    entry = values.get(TRAINING_KEY) if isinstance(values, dict) else None
    return dict(entry) if isinstance(entry, dict) else None


def prior_of_training_config(cfg: Mapping[str, Any]) -> dict[str, str]:
    """``{"prior", "prior_input"}`` the training datasets of an ``align3r train`` config read
    (``data.train.common`` and each entry of ``data.train.datasets``, with the datasets' defaults
    ``depthpro`` / ``pointmap``); a key is left out when the entries disagree."""
    data = cfg.get("data") if isinstance(cfg.get("data"), Mapping) else {}
    train = data.get("train") if isinstance(data.get("train"), Mapping) else {}
    common = train.get("common") if isinstance(train.get("common"), Mapping) else {}
    names, inputs = set(), set()
    for entry in train.get("datasets") or []:
        if isinstance(entry, Mapping):
            options = {**common, **entry}
            names.add(str(options.get("prior_name", "depthpro")))
            inputs.add(str(options.get("prior_input", "pointmap")))
    out = {}
    if len(names) == 1:
        out["prior"] = names.pop()
    if len(inputs) == 1:
        out["prior_input"] = inputs.pop()
    return out


RUN_CONFIG = "config.yaml"
_TRAINING_CHECKPOINT = re.compile(r"^checkpoint-[\w.-]+\.pth$")


def training_metadata(source: str | os.PathLike) -> dict[str, Any]:
    """How a local network written by ``align3r train`` was trained — ``{"prior": ...,
    "prior_input": ...}`` — read without loading weights: the ``"training"`` entry of a
    ``final_model/config.json``; for a ``checkpoint-*.pth`` (or a ``final_model/`` written before
    that entry existed), the run's ``config.yaml`` beside it. ``{}`` for released names, Hub ids,
    official files and anything else."""
    text = str(source)
    if isinstance(source, str) and text in REGISTRY:
        return {}
    path = Path(text).expanduser()
    if not path.exists():
        return {}
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if path.is_dir():
        try:
            values = json.loads((path / HUB_CONFIG).read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        if not isinstance(values, dict) or FORMAT_KEY not in values:
            return {}  # an official Hub folder
        if isinstance(values.get(TRAINING_KEY), dict):
            return {k: v for k, v in values[TRAINING_KEY].items() if isinstance(v, str)}
        if path.name != "final_model":
            return {}
    elif not _TRAINING_CHECKPOINT.match(path.name):
        return {}
    return _run_config_prior(path.parent / RUN_CONFIG)


def _run_config_prior(path: Path) -> dict[str, Any]:
    """The prior of the ``align3r train`` run whose ``config.yaml`` is ``path`` ({} if none)."""
    import yaml

    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(values, dict) or not {"model", "train", "data"} <= set(values):
        return {}
    return prior_of_training_config(values)
