"""``align3r bench TARGET``: print speed and memory figures.

Each target is a module ``align3r.bench.<target>`` exposing ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Benchmarks print figures; they never assert timings.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import align3r.bench

HELP = "print speed and memory figures (align, decode, e2e, flow, model, prior, train)"
DESCRIPTION = "Benchmarks: each target prints its figures (and the machine) as a Markdown table."


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help; the target's description (module doc) kept as written."""


def _targets() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(align3r.bench.__path__) if not m.name.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name in _targets():
        mod = importlib.import_module(f"align3r.bench.{name}")
        p = sub.add_parser(name, help=getattr(mod, "HELP", name), description=(mod.__doc__ or "").strip(),
                           formatter_class=_HelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_bench=mod)


def run(args: argparse.Namespace) -> int:
    return int(args._bench.run(args) or 0)
