"""Hydra config files shipped with the package (``configs/`` at the repository root links here).

Hydra is used only at the edges (the CLI commands); library modules never import it.
"""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def config_dir(group: str | None = None) -> Path:
    """The folder holding the shipped configs, or one of its groups (e.g. ``"train"``)."""
    return CONFIG_DIR / group if group else CONFIG_DIR
