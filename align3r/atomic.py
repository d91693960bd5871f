"""Atomic writes: a reader sees the old content or the complete new one, never a half-written one.

One module for every writer of the package (caches, checkpoints, logs, outputs), in three parts:

- **single files** (:func:`atomic_path`, :func:`write_bytes`, :func:`write_text`): written to a
  temporary name beside the target (``.NAME.tmp-<pid>.SUFFIX``), then ``os.replace``'d onto it,
  so whatever kills the writer leaves the old file or the new one.
- **folders** (:func:`check_output_folder`, :func:`ensure_folder`): "<file> is a file, not a
  folder" instead of the ``NotADirectoryError`` of writing below a file.
- **whole directories** (:func:`staged_directory`, :func:`check_destination`,
  :func:`recover_interrupted_swap`, :func:`output_error`): an output directory is staged as a
  sibling ``DIR.tmp-<pid>`` and swapped in as a whole at the end. What ``docs/outputs.md``
  promises users:

  - An existing output directory is either left exactly as it was (any failure, including a
    full disk or a crash) or replaced as a whole by the complete new one. Never half-overwritten.
  - Files are replaced, never rewritten in place, so a staging directory may share inodes with
    the old output (hard links, used by ``align3r export``) without touching it.
  - ENOSPC / EDQUOT / EACCES / EPERM / EROFS become :class:`~align3r.errors.OutputError` with a
    message saying what to do; the staging directory is removed.

  The swap uses Linux's ``renameat2(RENAME_EXCHANGE)`` (one atomic step) where available, else
  two renames (old aside, new in). If a crash hits between those two renames, the next write to
  the same directory puts the old one back first (:func:`recover_interrupted_swap`).

**Durability.** Every write is atomic; ``durable=True`` adds an fsync before the rename, so that
the new content also survives a power loss. The default is ``durable=False``: most writers here
are caches, logs and results that a rerun recomputes, where an fsync per file costs time for
nothing, and a default that fsyncs would silently slow down every new cache. Writers whose files
cannot be recomputed cheaply opt in explicitly: the output writer (``align3r.export.writer``,
its ``durable`` option, on by default), screenshots, model checkpoints
(``align3r.model.checkpoints.write``), training checkpoints (``align3r.train.checkpoint``) and
the prior cache (``align3r.priors.cache``). :func:`staged_directory` is the exception: an output
directory is durable unless told otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from align3r.errors import OutputError

#: Infix of the temporary beside a file being written (``.NAME.tmp-<pid>.SUFFIX``).
TEMP_TAG = ".tmp-"
#: Infix of the staging directory beside an output directory (``DIR.tmp-<pid>``).
STAGING_TAG = ".tmp-"
#: Infix of the previous output moved aside during a two-rename swap (``DIR.old-<pid>``).
ASIDE_TAG = ".old-"
_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


# ------------------------------------------------------------------------------- single files
def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path`` (a file or a directory) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Makes renames and new entries in the directory durable; not possible on every platform.
    with contextlib.suppress(OSError):
        fsync_file(path)


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


# ------------------------------------------------------------------------------------ folders
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


# ------------------------------------------------------------------------- whole directories
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _siblings(target: Path, tag: str) -> list[tuple[Path, int]]:
    """``target<tag><pid>`` siblings with their pid."""
    out = []
    if not target.parent.is_dir():
        return out
    prefix = target.name + tag
    for p in target.parent.iterdir():
        if p.name.startswith(prefix) and p.name[len(prefix):].isdigit():
            out.append((p, int(p.name[len(prefix):])))
    return out


def recover_interrupted_swap(target: Path) -> None:
    """Repair what a crash (power loss, SIGKILL) of an earlier writer may have left behind.

    - ``DIR`` missing but ``DIR.old-<pid>`` present (crash between the two renames of the
      fallback swap): the old output is renamed back to ``DIR``.
    - ``DIR.tmp-<pid>`` / ``DIR.old-<pid>`` of processes that no longer run: removed (they are an
      unfinished new output, or an old output already replaced).

    Directories of live processes are left alone (another writer may be running).
    """
    target = Path(target)
    aside = [(p, pid) for p, pid in _siblings(target, ASIDE_TAG) if not _pid_alive(pid)]
    if not target.exists() and aside:
        newest = max(aside, key=lambda item: item[0].stat().st_mtime)[0]
        os.rename(newest, target)
        aside = [item for item in aside if item[0] != newest]
    for p, _ in aside + [(p, pid) for p, pid in _siblings(target, STAGING_TAG) if not _pid_alive(pid)]:
        shutil.rmtree(p, ignore_errors=True)


def _is_replaceable(target: Path, marker: str) -> bool:
    """An existing directory may be replaced only if it is empty or one of our outputs."""
    return target.is_dir() and (not any(target.iterdir()) or (target / marker).is_file())


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # filesystem without exchange support: caller falls back to two renames
    raise OSError(err, os.strerror(err), str(a))


def _swap_into_place(stage: Path, target: Path) -> None:
    """Make ``stage`` appear at ``target``; the previous ``target`` (if any) is deleted."""
    if not target.exists():
        os.rename(stage, target)
        _fsync_dir(target.parent)
        return
    if _exchange(stage, target):
        _fsync_dir(target.parent)
        shutil.rmtree(stage, ignore_errors=True)  # now holds the previous output
        return
    aside = target.with_name(f"{target.name}{ASIDE_TAG}{os.getpid()}")
    os.rename(target, aside)
    try:
        os.rename(stage, target)
    except BaseException:
        os.rename(aside, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def output_error(exc: OSError, target: Path, *, written: int | None = None,
                 expected: int | None = None) -> OutputError | None:
    """An :class:`OutputError` explaining ``exc`` (full disk, no permission), or None."""
    code = getattr(exc, "errno", None)
    where = getattr(exc, "filename", None) or target
    if code in _SPACE_ERRNOS:
        free = None
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(target.parent if target.parent.exists() else Path.cwd()).free
        parts = [f"disk full while writing {where}"]
        if written is not None:
            parts.append(f"{_mb(written)} of new outputs were written before space ran out")
        if expected:
            parts.append(f"the complete outputs need about {_mb(expected)}")
        if free is not None:
            parts.append(f"{_mb(free)} are free now")
        hint = ("free some space (the new outputs are staged beside the old ones until they are "
                "complete, so the old and the new must fit together) or write elsewhere, then run again")
        prior = f"; the previous outputs in {target} are intact" if target.exists() else ""
        return OutputError("; ".join(parts) + f" — {hint}{prior}")
    if code in _PERMISSION_ERRNOS:
        prior = f"; the previous outputs in {target} are intact" if target.exists() else ""
        return OutputError(
            f"cannot write {where}: {os.strerror(code)} — choose a writable output directory "
            f"or fix its permissions{prior}"
        )
    return None


def absolute_path(path: str | os.PathLike) -> Path:
    """``path`` made absolute and normalised (``.``, ``..`` and ``a/./b`` collapsed; symlinks kept),
    so that it always has a name to put sibling directories beside."""
    return Path(os.path.abspath(os.fspath(path)))


def check_destination(target: str | os.PathLike, *, overwrite: bool, marker: str,
                      seed_from: str | os.PathLike | None = None) -> Path:
    """Raise :class:`OutputError` unless ``target`` may become (or be replaced by) an output directory.

    The rules of :func:`staged_directory`, callable before any work is done (``align3r infer``
    checks its ``--out`` before loading weights): ``target`` must not be an existing file; an
    existing directory is replaced only with ``overwrite`` (or when it is ``seed_from`` itself) and
    only if it is empty or holds ``marker`` (one of our outputs); and it must not be the current
    working directory or one of its parents (the directory is replaced as a whole, which would
    leave the shell in a deleted folder). Returns the absolute target.
    """
    target = absolute_path(target)
    if target.is_file() or (target.exists() and not target.is_dir()):
        raise OutputError(f"{target} exists and is not a directory; choose another output path")
    try:
        cwd = Path.cwd()
    except OSError:  # the cwd was deleted: then it cannot be the target
        cwd = None
    real = Path(os.path.realpath(target))  # the cwd is a physical path: compare symlinks resolved
    if cwd is not None and (real == cwd or real in cwd.parents):
        where = "is the current directory" if real == cwd else f"contains the current directory {cwd}"
        raise OutputError(f"{target} {where}; an output directory is replaced as a whole, which would leave "
                          "the shell in a deleted folder — choose a new folder, e.g. --out ./reconstruction")
    if target.exists():
        if not overwrite and (seed_from is None or absolute_path(seed_from) != target):
            raise OutputError(f"{target} already exists; allow replacing it (align3r infer: overwrite=true, "
                              "align3r export: --overwrite, Python: overwrite=True), or choose another output "
                              "directory")
        if not _is_replaceable(target, marker):
            raise OutputError(f"{target} is a non-empty directory that is not an align3r output "
                              f"(no {marker}); refusing to replace it — choose another output directory")
    return target


@contextlib.contextmanager
def staged_directory(target: Path, *, overwrite: bool, marker: str, seed_from: Path | None = None,
                     durable: bool = True, expected_bytes: int | None = None) -> Iterator[Path]:
    """Stage a complete output directory beside ``target`` and swap it in on success.

    Args:
        target: the output directory to create or replace.
        overwrite: replace an existing ``target``; otherwise an existing one is an error.
        marker: a file every output directory of ours contains (the manifest); a non-empty
            existing directory without it is never replaced (it is not ours to delete).
        seed_from: an existing output directory whose files the staging directory starts from
            (hard links where possible, else copies), to add or rewrite some formats.
        durable: fsync directories before the swap (files are fsync'ed as they are written).
        expected_bytes: rough size of the new outputs, quoted when the disk fills up.
    Yields:
        The staging directory ``target.tmp-<pid>``, empty or seeded.
    Raises:
        OutputError: ``target`` exists and may not be replaced, the disk is full, no permission.
    """
    target = absolute_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_interrupted_swap(target)
    except OSError as exc:
        raise (output_error(exc, target) or exc) from exc
    check_destination(target, overwrite=overwrite, marker=marker, seed_from=seed_from)

    stage = target.with_name(f"{target.name}{STAGING_TAG}{os.getpid()}")
    try:
        if stage.exists():
            shutil.rmtree(stage)
        if seed_from is not None:
            _link_tree(Path(seed_from), stage)
        else:
            stage.mkdir()
        yield stage
        if durable:
            for root, dirs, _ in os.walk(stage):
                for d in dirs:
                    _fsync_dir(Path(root) / d)
            _fsync_dir(stage)
        _swap_into_place(stage, target)
    except BaseException as exc:
        written = _dir_bytes(stage) if stage.exists() else None
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            err = output_error(exc, target, written=written, expected=expected_bytes)
            if err is not None:
                raise err from exc
        raise


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a directory tree using hard links (falls back to real copies across devices)."""

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link_or_copy)
