"""``align3r checkpoints``: list the released checkpoints, and check or fetch them."""

from __future__ import annotations

import argparse

HELP = "list the released checkpoints, check or fetch them"
DESCRIPTION = """List the released networks by short name with their Hub repo and official file name,
and whether a local copy exists (checkpoints/, $ALIGN3R_CHECKPOINTS, or the Hugging Face cache).

  align3r checkpoints                      # the table
  align3r checkpoints --fetch monst3r      # download into the Hugging Face cache (unless present locally)
  align3r checkpoints --check align3r-depthpro   # read it and verify every key and shape
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fetch", metavar="NAME", help="download a released checkpoint from the Hub")
    group.add_argument("--check", metavar="NAME_OR_PATH",
                       help="read a checkpoint and verify it strictly against its architecture")


def _location(name: str) -> str:
    from align3r.model.registry import REGISTRY, find_in_hub_cache, find_local

    entry = REGISTRY[name]
    local = find_local(entry)
    if local is not None:
        return str(local)
    cached = find_in_hub_cache(entry.repo_id)
    return f"HF cache: {cached}" if cached is not None else "missing"


def run(args: argparse.Namespace) -> int:
    from align3r.model.registry import REGISTRY, download_from_hub, released

    if args.fetch:
        from align3r.model.registry import find_local

        entry = released(args.fetch)
        local = find_local(entry)
        if local is not None:  # what load_model would use first: nothing to download
            print(f"{entry.name}: already present at {local} (used before the Hub cache); nothing fetched")
            return 0
        print(f"{entry.name}: {download_from_hub(entry.repo_id, entry)}")
        return 0
    if args.check:
        from align3r.model.checkpoints.read import read_checkpoint
        from align3r.model.config import describe
        from align3r.model.load import expected_shapes
        from align3r.model.state_dict import check_state_dict

        loaded = read_checkpoint(args.check)
        check_state_dict(expected_shapes(loaded.config), loaded.state_dict, str(loaded.path), describe(loaded.config))
        print(f"ok: {loaded.path} ({loaded.kind}) holds the {describe(loaded.config)}, "
              f"{len(loaded.state_dict)} tensors, all keys and shapes match")
        return 0
    print("| name | Hub repo | official file | local copy |")
    print("|---|---|---|---|")
    for name, entry in REGISTRY.items():
        print(f"| {name} | {entry.repo_id} | {entry.filename} | {_location(name)} |")
    print()
    print(_searched())
    return 0


def _searched() -> str:
    """Where the table's local copies were looked for, in order."""
    from align3r.model.registry import hub_cache_dir, local_dirs

    if hub_cache_dir() is not None:
        cache = hub_cache_dir()
    else:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    folders = ", ".join(str(d) for d in local_dirs())
    return (f"searched: {folders} (the official file name, or a folder named after the Hub repo), then the "
            f"Hugging Face cache {cache}; set ALIGN3R_CHECKPOINTS or HF_HUB_CACHE to look elsewhere")
