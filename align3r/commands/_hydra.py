"""Hydra at the edge: composing a shipped config with command-line overrides (compose API)."""

from __future__ import annotations

from pathlib import Path

from align3r.errors import InputError


def compose_config(folder: str | Path, name: str, overrides: list[str], error: str):
    """``folder/name.yaml`` composed with ``overrides``; any Hydra/OmegaConf error becomes an
    ``InputError`` "<error>: <details>" (one line for the CLI)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(Path(folder).resolve()), version_base=None):
            return compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise InputError(f"{error}: {exc}") from None
