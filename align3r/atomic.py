"""Atomic file writes: write beside the target, then rename over it.

A reader (or a resumed run) therefore sees either the old file or the complete new one, never a
truncated one, whatever kills the writer. Used by every cache, checkpoint and output writer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from align3r.errors import OutputError

TEMP_TAG = ".tmp-"


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False, hint: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, rename it onto ``path``.

    Args:
        durable: fsync the file before the rename (survives a power loss, costs time).
        hint: when given, an ``OSError`` (full disk, permissions) becomes an ``OutputError``
            "cannot write <path>: <error>; <hint>"; when None it propagates unchanged (for callers
            that build their own message).

    On any exception the temporary file is removed and ``path`` is untouched. A folder on the way
    to ``path`` that is an existing file raises ``OutputError`` "... is a file, not a folder"
    (whatever ``hint``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TEMP_TAG}{os.getpid()}{path.suffix}")
    try:
        ensure_folder(path.parent)
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if hint is None or isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {exc}; {hint}") from exc
    finally:
        with contextlib.suppress(OSError):  # absent, or its folder never existed: nothing to remove
            tmp.unlink()


def file_in_the_way(folder: str | os.PathLike) -> Path | None:
    """The first of ``folder`` and its ancestors that exists and is not a folder, or None."""
    folder = Path(folder)
    for candidate in (*reversed(folder.parents), folder):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def check_output_folder(folder: str | os.PathLike, what: str = "output folder") -> None:
    """Raise ``OutputError`` "<what> <folder>: <file> is a file, not a folder" when ``folder`` (or
    one of its ancestors) is an existing file, so that nothing can be written there. For commands
    that check their output folder before doing any work."""
    blocker = file_in_the_way(folder)
    if blocker is None:
        return
    if blocker == Path(folder):
        raise OutputError(f"{what} {folder} is a file, not a folder; choose another folder")
    raise OutputError(f"{what} {folder}: {blocker} is a file, not a folder; choose another folder")


def ensure_folder(folder: str | os.PathLike, what: str = "output folder") -> None:
    """``mkdir -p folder``, with the "is a file, not a folder" error of :func:`check_output_folder`."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        check_output_folder(folder, what)
        raise OutputError(f"cannot create {what} {folder}: {exc}") from exc


def new_file_mode() -> int:
    """The permissions ``open()`` gives a new file under the current umask (0o666 & ~umask): for
    writers that create their files more restrictively (safetensors: 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False, hint: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, durable=durable, hint=hint) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str, *, durable: bool = False, hint: str | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), durable=durable, hint=hint)
