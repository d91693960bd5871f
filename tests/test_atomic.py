import errno

import pytest

from align3r.atomic import atomic_path, write_text
from align3r.errors import OutputError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_disk_errors_become_output_errors_with_the_hint(tmp_path):
    target = tmp_path / "cache.bin"
    with pytest.raises(OutputError, match=r"cannot write .*cache\.bin: .*No space left.*; free some space"):
        with atomic_path(target, hint="free some space") as tmp:
            tmp.write_bytes(b"x")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists() and not list(tmp_path.iterdir())
    with pytest.raises(OSError), atomic_path(target) as tmp:  # no hint: the OSError itself
        raise OSError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize("hint", [None, "free some space"])
def test_a_file_where_a_folder_should_be_is_named(tmp_path, hint):
    """Not the NotADirectoryError of removing a temporary inside a file (which hid the real error)."""
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for target in (blocker / "out.json", blocker / "sub" / "out.json"):
        with pytest.raises(OutputError, match=rf"{blocker} is a file, not a folder; choose another folder"):
            write_text(target, "new", hint=hint)
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
