"""Hydra at the edge: composing a config with command-line overrides (compose API).

Every command finds and composes its configs one way, :func:`compose_command_config`: the config
is located by ``align3r.configs.find_config`` (the user's ``--config-dir``, then the shipped
configs), then composed here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from align3r.errors import InputError

# ``~key.path.<index>``: delete a list item. Hydra's own deletion only handles mapping keys (a list
# index fails deep inside OmegaConf with a TypeError), so these are applied after composing.
_LIST_ITEM_DELETION = re.compile(r"^~((?:[A-Za-z_]\w*\.)+)(\d+)$")


def _searchpath_override(folders: Sequence[Path]) -> str:
    quoted = ("'file://" + str(Path(f).resolve()).replace("\\", "\\\\").replace("'", "\\'") + "'" for f in folders)
    return f"hydra.searchpath=[{','.join(quoted)}]"


def compose_command_config(name: str, overrides: list[str], *, config_dir: str | Path | None = None,
                           shipped: str | None = None, group: str = "", what: str = "config"):
    """The config ``name`` of a command composed with its command-line ``overrides``.

    ``config_dir`` is the command's ``--config-dir`` (searched before the shipped
    ``align3r/configs/<shipped>``), ``group`` the subfolder holding the names (``eval/table``),
    ``what`` names the config in errors; see ``align3r.configs.find_config``."""
    from align3r.configs import find_config

    where = find_config(name, user_dir=config_dir, shipped=shipped, group=group, what=what)
    return compose_config(where.folder, where.name, overrides, f"cannot compose {what} {name!r} from {where.folder}",
                          search_path=where.search_path)


def compose_config(folder: str | Path, name: str, overrides: list[str], error: str, *,
                   search_path: Sequence[str | Path] = ()):
    """``folder/name.yaml`` composed with ``overrides``; any Hydra/OmegaConf error (or any other
    failure while composing) becomes an ``InputError`` "<error>: <details>" (one line for the CLI).

    ``search_path``: more config folders searched after ``folder`` (e.g. the shipped configs under a
    user's own folder, so a user config can name them in its ``defaults``).
    ``~a.b.<index>`` deletes item ``<index>`` of the list ``a.b`` (indices of the composed list,
    several may be given)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    deletions: list[tuple[str, int, str]] = []
    passed = []
    for text in overrides:
        match = _LIST_ITEM_DELETION.match(text.strip())
        if match:
            deletions.append((match.group(1)[:-1], int(match.group(2)), text))
        else:
            passed.append(text)
    extra = [Path(p) for p in search_path if Path(p).resolve() != Path(folder).resolve()]
    if extra:
        passed.append(_searchpath_override(extra))
    try:
        with initialize_config_dir(config_dir=str(Path(folder).resolve()), version_base=None):
            cfg = compose(config_name=name, overrides=passed)
    except (HydraException, OmegaConfBaseException) as exc:
        raise InputError(f"{error}: {exc}") from None
    except Exception as exc:  # Hydra/OmegaConf bugs surface as TypeError, ValueError, ...
        raise InputError(f"{error}: {type(exc).__name__}: {_one_line(exc)}") from None
    # largest index first, so several deletions from one list refer to the composed list's indices
    for key, index, text in sorted(deletions, key=lambda d: (d[0], -d[1])):
        node = OmegaConf.select(cfg, key, default=None)
        if isinstance(node, DictConfig) and str(index) in node:  # a mapping with a numeric key
            with open_dict(node):
                del node[str(index)]
            continue
        if not isinstance(node, ListConfig):
            raise InputError(f"{error}: cannot delete {text!r}: {key} is not a list in the config"
                             + ("" if node is not None else " (no such key)"))
        if index >= len(node):
            raise InputError(f"{error}: cannot delete {text!r}: {key} has {len(node)} item(s) "
                             f"(indices 0 to {len(node) - 1})")
        del node[index]
    return cfg


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
