"""The ``align3r`` command.

Each subcommand lives in its own module under ``align3r.commands`` exposing
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their subcommand runs, so ``align3r --help`` stays fast and a broken optional dependency of
one subcommand never breaks the others.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

# name -> (module, one-line help). The help is repeated here so --help needs no imports.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "infer": ("align3r.commands.infer", "video or image folder -> depth, poses, intrinsics, masks, point clouds"),
    "view": ("align3r.commands.view", "show (or screenshot) a reconstruction directory"),
    "prior": ("align3r.commands.prior", "compute depth priors for frames or a processed dataset"),
    "eval": ("align3r.commands.eval", "evaluate video depth / camera pose, reproduce the paper's tables"),
    "train": ("align3r.commands.train", "fine-tune on PointOdyssey / FlyingThings3D / ... (torchrun)"),
    "bench": ("align3r.commands.bench", "print speed and memory figures (align, decode, e2e, flow, model, prior, train)"),
    "checkpoints": ("align3r.commands.checkpoints", "list the released checkpoints, check or fetch them"),
    "export": ("align3r.commands.export", "(re)write output formats (ply, glb, colmap, nerfstudio, rerun, ...) of a reconstruction directory"),
    "convert": ("align3r.commands.convert", "convert an official .pth checkpoint to config.json + model.safetensors"),
}


def _available() -> dict[str, tuple[str, str]]:
    out = {}
    for name, (module, text) in SUBCOMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = (module, text)
    return out


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align3r",
        description="Align3R: aligned monocular depth estimation for dynamic videos.",
    )
    from align3r import __version__

    parser.add_argument("--version", action="version", version=f"align3r {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, text) in _available().items():
        # Only import the module whose help/arguments are actually needed.
        if argv and argv[0] == name:
            mod = importlib.import_module(module)
            p = sub.add_parser(name, help=text, description=getattr(mod, "DESCRIPTION", text),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            mod.add_arguments(p)
            p.set_defaults(_module=mod)
        else:
            sub.add_parser(name, help=text)
    return parser


def _innermost_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)subcommand that ``args`` selected: its usage line is the one to show."""
    while True:
        action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = None if action is None else getattr(args, action.dest, None)
        if chosen not in getattr(action, "choices", {}):
            return parser
        parser = action.choices[chosen]


def _stdout_closed() -> bool:
    """Whether the reader of stdout went away (``align3r ... | head``)."""
    try:
        import select

        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() or no real stdout: assume it was stdout
        return True


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        if not _stdout_closed():  # another pipe (a subprocess's): a real error
            raise
        # the standard idiom: point stdout at devnull so that the flush at exit cannot fail again
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    # Subcommands taking Hydra overrides accept them anywhere (before or after --options).
    target = getattr(getattr(args, "_module", None), "EXTRA_ARGS", None)
    if extra and target and not any(e.startswith("-") for e in extra):
        setattr(args, target, [*getattr(args, target), *extra])
    elif extra:  # reported by the subcommand's parser, with its usage line
        _innermost_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    mod = getattr(args, "_module", None)
    if mod is None:  # parse again with the module loaded (argv did not start with the name)
        mod = importlib.import_module(_available()[args.command][0])
    try:
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # user-facing errors: one clear line, no traceback
        from align3r.errors import Align3RError

        if isinstance(exc, Align3RError):
            print(f"align3r {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
