"""Which depth prior, and which prior representation, a network wants.

A released network was fine-tuned with one prior (``ReleasedCheckpoint.prior``); a network written
by ``align3r train`` records its prior and representation in ``final_model/config.json``'s
``"training"`` entry (``align3r.model.checkpoints.write.write_training_metadata``), or, for a
``checkpoint-*.pth``, in the run's ``config.yaml``. ``prior="auto"`` and ``prior_input="auto"``
resolve to those; an explicit setting that contradicts them logs a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from align3r.model.registry import HUB_CONFIG, REGISTRY
from align3r.priors.registry import parse_prior_name

log = logging.getLogger(__name__)

#: Depth prior each released network was trained with (``prior="auto"``).
PRIOR_OF_MODEL = {name: entry.prior for name, entry in REGISTRY.items()}

#: the run configuration ``align3r train`` writes into its output folder
RUN_CONFIG = "config.yaml"
_TRAINING_CHECKPOINT = re.compile(r"^checkpoint-[\w.-]+\.pth$")


# --- what align3r train recorded ---------------------------------------------------------------
def read_training_entry(directory: str | Path) -> dict[str, Any] | None:
    """The ``"training"`` entry of ``directory/config.json`` (see
    ``align3r.model.checkpoints.write.write_checkpoint``), or None."""
    from align3r.model.checkpoints.format import TRAINING_KEY

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


def training_metadata(source: str | os.PathLike) -> dict[str, Any]:
    """How a local network written by ``align3r train`` was trained — ``{"prior": ...,
    "prior_input": ...}`` — read without loading weights: the ``"training"`` entry of a
    ``final_model/config.json``; for a ``checkpoint-*.pth`` (or a ``final_model/`` written before
    that entry existed), the run's ``config.yaml`` beside it. ``{}`` for released names, Hub ids,
    official files and anything else."""
    from align3r.model.checkpoints.format import FORMAT_KEY, TRAINING_KEY

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


# --- resolving the settings --------------------------------------------------------------------
def trained_settings(model: str) -> dict[str, str]:
    """What ``model`` was trained with, as far as known without loading it: ``{"prior": ...}`` for
    the released names, ``{"prior": ..., "prior_input": ...}`` for the outputs of ``align3r train``
    (:func:`training_metadata`); ``{}`` otherwise."""
    if not isinstance(model, str | os.PathLike):
        return {}
    if isinstance(model, str) and model in PRIOR_OF_MODEL:
        return {"prior": PRIOR_OF_MODEL[model]}
    return training_metadata(model)


def resolve_prior_name(model: str, prior: str, trained: Mapping[str, str] | None = None) -> str:
    """``prior``, or for ``"auto"`` the prior ``model`` was trained with (:func:`trained_settings`;
    Depth Pro when unknown)."""
    if prior != "auto":
        return prior
    trained = trained_settings(model) if trained is None else trained
    return trained.get("prior") or PRIOR_OF_MODEL.get(model, "depthpro")


def prior_family(prior: str) -> str | None:
    """``depthpro`` / ``depthanything`` for prior names that compute or read one of them (the
    shared parser, ``align3r.priors.registry.parse_prior_name``); None for any other name."""
    from align3r.errors import InputError

    try:
        return parse_prior_name(prior).family
    except InputError:
        return None


def resolve_prior_input(model: str, prior_input: str, prior: str = "auto", *, what: str = "model",
                        trained: Mapping[str, str] | None = None, keys: tuple[str, str] = ("prior", "prior_input"),
                        warn: bool = True) -> str:
    """The prior representation to feed ``model``: ``prior_input``, or for ``"auto"`` the one it was
    trained with (``"pointmap"`` when unknown). With ``warn``, logs a warning when an explicit
    ``prior_input`` or ``prior`` contradicts what ``align3r train`` recorded for ``model`` (not for
    the released names, whose other-prior runs are deliberate; ``keys``: the setting names to show)."""
    trained = trained_settings(model) if trained is None else trained
    recorded_input, recorded_prior = trained.get("prior_input"), trained.get("prior")
    resolved = (recorded_input or "pointmap") if prior_input == "auto" else prior_input
    if not warn or (isinstance(model, str) and model in PRIOR_OF_MODEL):
        return resolved
    if prior_input != "auto" and recorded_input and recorded_input != prior_input:
        log.warning("%s=%s, but %s %s was fine-tuned with %s priors (recorded with the checkpoint): its "
                    "predictions will be poor; leave %s unset (auto) to use %s", keys[1], prior_input, what,
                    model, recorded_input, keys[1], recorded_input)
    family = prior_family(prior) if prior != "auto" else None
    if recorded_prior and family and family != recorded_prior:
        log.warning("%s=%s, but %s %s was fine-tuned with %s priors (recorded with the checkpoint); %s=auto uses "
                    "%s", keys[0], prior, what, model, recorded_prior, keys[0], recorded_prior)
    return resolved


def effective_prior_input(model: str, prior_input: str) -> str:
    """``prior_input`` with ``"auto"`` resolved for ``model`` (:func:`resolve_prior_input`, no warnings)."""
    if prior_input != "auto":
        return prior_input
    return trained_settings(model).get("prior_input") or "pointmap"


def resolve_prior_settings(model: str, prior: str, prior_input: str, *, warn: bool = True) -> tuple[str, str]:
    """``(prior, prior_input)`` to run ``model`` with, ``"auto"`` resolved (:func:`resolve_prior_name`,
    :func:`resolve_prior_input`). With ``warn``, explicit settings that contradict what ``align3r
    train`` recorded log a warning, and ``prior="auto"`` on such a network logs which prior it chose."""
    trained = trained_settings(model)
    resolved_input = resolve_prior_input(model, prior_input, prior, trained=trained, warn=warn)
    name = resolve_prior_name(model, prior, trained)
    if warn and prior == "auto" and "prior" in trained and model not in PRIOR_OF_MODEL:
        log.info("prior=auto: %s was fine-tuned with %s priors", model, name)
    return name, resolved_input
