"""Hydra config files shipped with the package (``configs/`` at the repository root links here).

Hydra is used only at the edges (the CLI commands); library modules never import it. Finding a
config is plain path logic (:func:`find_config`, the one way every command finds its configs);
composing it is ``align3r.commands._hydra.compose_command_config``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from align3r.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parent


def config_dir(group: str | None = None) -> Path:
    """The folder holding the shipped configs, or one of its groups (e.g. ``"train"``)."""
    return CONFIG_DIR / group if group else CONFIG_DIR


@dataclass(frozen=True)
class ConfigLocation:
    """Where a config is: compose ``name`` from ``folder`` with ``search_path`` searched after it."""

    folder: Path
    name: str
    """The config's name inside ``folder`` without ``.yaml`` (``infer``, ``eval/table/supp_t3``)."""
    search_path: tuple[Path, ...] = ()
    """The other config folders (the shipped ones last), so the config's defaults can name their files."""


def config_names(folders: list[Path], group: str = "") -> list[str]:
    """The config names (file stems) in ``<folder>/<group>`` of every folder, sorted, once each."""
    return sorted({p.stem for folder in folders if (folder / group).is_dir() for p in (folder / group).glob("*.yaml")})


def config_folders(user_dir: str | Path | None = None, shipped: str | None = None) -> list[Path]:
    """The config folders a command searches: ``user_dir`` (``--config-dir``, checked to exist),
    then the shipped configs (``config_dir(shipped)``)."""
    folders = []
    if user_dir:
        folder = Path(user_dir).expanduser().resolve()
        if not folder.is_dir():
            raise InputError(f"--config-dir {user_dir}: folder {folder} not found")
        folders.append(folder)
    return [*folders, config_dir(shipped)]


def find_config(name: str, *, user_dir: str | Path | None = None, shipped: str | None = None, group: str = "",
                what: str = "config") -> ConfigLocation:
    """Where the config ``name`` is: the one way every command finds its configs.

    ``name`` is a config name in ``<folder>/<group>`` (``infer``; ``supp_t3`` in group
    ``eval/table``; ``align3r_depthpro`` in the shipped ``train`` folder) or a path to a ``.yaml``
    file. The folders are ``user_dir`` (``--config-dir``) then the shipped ``config_dir(shipped)``;
    a name is composed from the first folder holding it, a file from its own folder, and the other
    folders stay on the search path, so a user's config can build on the shipped ones
    (``defaults: [align3r_depthpro, _self_]``) and a user's folder overrides shipped files.
    Raises ``InputError`` naming the path looked at, or the available names (close matches first).
    """
    folders = config_folders(user_dir, shipped)
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in name or "/" in name:
        if not path.is_file():
            raise InputError(f"{what} file {name} not found (looked at {path.resolve()}); give a .yaml file or a "
                             f"config name ({', '.join(config_names(folders, group))})")
        if path.suffix not in (".yaml", ".yml"):
            raise InputError(f"{what} {name} is not a .yaml file")
        return ConfigLocation(path.resolve().parent, path.stem, tuple(folders))
    found = [f for f in folders if (f / group / f"{name}.yaml").is_file()]
    if not found:
        names = config_names(folders, group)
        close = difflib.get_close_matches(name, names, n=len(names), cutoff=0.5)
        ordered = close + [n for n in names if n not in close]
        where = " or ".join(str(f / group) for f in folders)
        raise InputError(f"no {what} {name!r} in {where}; available: {', '.join(ordered)}"
                         + (f" (did you mean {close[0]}?)" if close else "") + "; or give a path to a .yaml file")
    primary = found[0]
    return ConfigLocation(primary, f"{group}/{name}" if group else name, tuple(f for f in folders if f != primary))
