"""Per-frame file stems exactly as docs/outputs.md states them."""

from align3r.export.layout import frame_stems


def test_stems_replace_runs_of_other_characters_and_strip_dots_and_underscores():
    assert frame_stems(["été.JPG", "my frame (2).png", "._x.y_.webp", "frame_000012"]) == [
        "t", "my_frame_2", "x.y", "frame_000012"]


def test_an_empty_or_repeated_stem_names_every_frame_by_its_index():
    assert frame_stems(["日本.png", "a.png"]) == ["00000", "00001"]
    assert frame_stems(["a/1.png", "b/1.png"]) == ["00000", "00001"]
