"""Many inputs at once: what ``align3r infer SOURCE...`` expands to, and each source's name.

A SOURCE is a video file, an image folder (one source), a folder of videos (each video one
source, in natural order), a glob (``clips/*.mp4``, each match as above) or a text file listing
sources (``.txt`` / ``.lst``, one per line, ``#`` comments, relative paths from the list's folder).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

from natsort import natsorted

from align3r.errors import InputError
from align3r.io.folder import is_image_file, list_images
from align3r.io.video import VIDEO_EXTENSIONS

LIST_SUFFIXES = (".txt", ".lst")
_GLOB_CHARS = re.compile(r"[*?\[]")


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def read_source_list(path: Path) -> list[str]:
    """The entries of a list file: one per line, blank lines and ``#`` comments skipped, relative
    paths taken from the list's folder."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entry = Path(line).expanduser()
            entries.append(str(entry if entry.is_absolute() else path.parent / entry))
    return entries


def _expand_one(item: str, *, in_list: bool) -> list[Path]:
    path = Path(item).expanduser()
    if not path.exists() and _GLOB_CHARS.search(item):
        matches = natsorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise InputError(f"{item}: the pattern matches nothing")
        return [p for m in matches for p in _expand_one(m, in_list=True)]
    if path.is_dir():
        entries = [p for p in path.iterdir() if p.is_file()]
        if any(is_image_file(p) for p in entries):
            return [path]  # an image folder: one source
        videos = natsorted((p for p in entries if is_video_file(p)), key=lambda p: p.name)
        if not videos:
            list_images(path)  # raises: no images in the folder (saying what it holds instead)
        return videos
    if path.suffix.lower() in LIST_SUFFIXES and path.is_file():
        if in_list:
            raise InputError(f"{path}: a source list may not name another list")
        entries = read_source_list(path)
        if not entries:
            raise InputError(f"{path}: the source list names no source")
        return [p for e in entries for p in _expand_one(e, in_list=True)]
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    return [path]  # a video (an unreadable one fails when its turn comes, recorded in the summary)


def expand_sources(items: Sequence[str | Path]) -> list[Path]:
    """Every source ``items`` name, in the order given (globs and folders in natural order), each
    once (the first mention of a path counts).

    Raises:
        InputError: a path that does not exist, a pattern matching nothing, a folder with neither
            images nor videos, an empty list.
    """
    if isinstance(items, (str, Path)):
        items = [items]
    seen: set[Path] = set()
    sources = []
    for item in items:
        for path in _expand_one(str(item), in_list=False):
            key = Path(os.path.abspath(path))  # links under other names stay separate sources
            if key not in seen:
                seen.add(key)
                sources.append(path)
    if not sources:
        raise InputError("no source given")
    return sources


def source_names(sources: Sequence[Path]) -> tuple[list[str], list[str]]:
    """A unique output-folder name per source: the video's stem or the folder's name (characters
    other than letters, digits, ``._-`` become ``_``); a clash gets ``-2``, ``-3``, ... in the
    order given, so the same list always gives the same names.

    Returns:
        (names, one message per renamed source).
    """
    names: list[str] = []
    renamed: list[str] = []
    taken: set[str] = set()
    for path in sources:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", path.resolve().name if path.is_dir() else path.stem) or "source"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name)
        names.append(name)
        if name != base:
            renamed.append(f"{path} -> {name} ({base!r} was taken)")
    return names, renamed
