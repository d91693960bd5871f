"""Many sources on the command line: globs, folders of videos, list files, unique names."""

from __future__ import annotations

from pathlib import Path

import pytest

from align3r.errors import InputError
from align3r.io.sources import expand_sources, source_names


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "videos").mkdir()
    for name in ("clip10.mp4", "clip2.mp4", "notes.md"):
        (tmp_path / "videos" / name).write_bytes(b"x")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "0001.jpg").write_bytes(b"x")
    (tmp_path / "frames" / "clip2.mp4").write_bytes(b"x")  # an image folder stays one source
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "clip2.mp4").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_folders_of_videos_globs_and_lists_expand_in_natural_order_each_once(tree):
    videos = tree / "videos"
    assert expand_sources([videos]) == [videos / "clip2.mp4", videos / "clip10.mp4"]
    assert expand_sources(str(tree / "*" / "clip2.mp4")) == [tree / "frames" / "clip2.mp4",
                                                             tree / "other" / "clip2.mp4", videos / "clip2.mp4"]
    assert expand_sources(str(tree / "[fv]*")) == [tree / "frames", videos / "clip2.mp4", videos / "clip10.mp4"]
    assert expand_sources([tree / "frames", videos / "clip2.mp4", videos]) == [
        tree / "frames", videos / "clip2.mp4", videos / "clip10.mp4"]  # the first mention counts
    listing = tree / "list.txt"
    listing.write_text("# my sources\nvideos/clip10.mp4  # the long one\n\n" + str(tree / "frames") + "\n")
    assert expand_sources([listing]) == [videos / "clip10.mp4", tree / "frames"]


@pytest.mark.parametrize("item, message", [
    ("missing.mp4", "no such file or folder"),
    ("nothing*.mp4", "matches nothing"),
    ("empty", "no images in folder"),
])
def test_bad_sources_are_one_line_errors(tree, item, message):
    with pytest.raises(InputError, match=message):
        expand_sources([tree / item if "*" not in item else str(tree / item)])


def test_a_list_naming_a_list_or_nothing_is_refused(tree):
    (tree / "inner.txt").write_text("videos\n")
    (tree / "outer.txt").write_text("inner.txt\n")
    with pytest.raises(InputError, match="may not name another list"):
        expand_sources([tree / "outer.txt"])
    (tree / "none.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="names no source"):
        expand_sources([tree / "none.txt"])


def test_names_are_unique_and_deterministic(tree):
    paths = [tree / "videos" / "clip2.mp4", tree / "other" / "clip2.mp4", tree / "frames",
             tree / "other" / "clip2.mp4", Path("my clip!.mp4")]
    names, renamed = source_names(paths)
    assert names == ["clip2", "clip2-2", "frames", "clip2-3", "my_clip_"]
    assert len(renamed) == 2 and "clip2-2" in renamed[0]
    assert source_names(paths) == (names, renamed)
