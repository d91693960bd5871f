"""`align3r view`: screenshot formats by extension, a warning when no point passes the filters,
Ctrl-C stops the viewer quietly."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from PIL import Image

from align3r.cli import main
from align3r.errors import InputError


@pytest.mark.parametrize(("name", "fmt", "magic"), [("shot.jpg", "JPEG", b"\xff\xd8\xff"),
                                                    ("shot.JPEG", "JPEG", b"\xff\xd8\xff"),
                                                    ("shot.webp", "WEBP", b"RIFF"),
                                                    ("shot.png", "PNG", b"\x89PNG")])
def test_the_screenshot_is_written_in_the_format_its_extension_names(written, tmp_path, capsys, name, fmt, magic):
    out = tmp_path / name
    assert main(["view", str(written[0]), "--screenshot", str(out), "--size", "64x48"]) == 0
    data = out.read_bytes()
    assert data.startswith(magic)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt and image.size == (64, 48)
    assert capsys.readouterr().err == ""


def test_an_unknown_screenshot_extension_is_refused_before_any_work(tmp_path, capsys):
    from align3r.viewer.screenshot import save_screenshot

    # the directory does not even exist: the extension is checked first
    assert main(["view", str(tmp_path / "missing"), "--screenshot", str(tmp_path / "shot.gif")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("align3r view: error: cannot write a screenshot as 'shot.gif': use one of .png, .jpg, .jpeg, "
                   ".webp, .bmp, .tif, .tiff (the extension picks the format)")
    with pytest.raises(InputError, match="cannot write a screenshot"):
        save_screenshot(tmp_path / "shot", None)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("options", "reason", "shown"), [
    (["--min-conf", "100"], "--min-conf 100", "only the camera frusta are drawn"),
    (["--max-points", "0"], "--max-points 0", "only the fused static scene and the camera frusta are drawn"),
])
def test_no_point_passing_the_filters_is_a_warning(written, tmp_path, capsys, options, reason, shown):
    out = tmp_path / "shot.png"
    assert main(["view", str(written[0]), "--screenshot", str(out), "--size", "64x48", *options]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"align3r view: warning: no per-frame point passed the filter ({reason}); {shown}"), err
    assert out.is_file()


def test_ctrl_c_stops_the_viewer_quietly(written, capsys, monkeypatch):
    from align3r.viewer import server

    session = SimpleNamespace(server=SimpleNamespace(get_port=lambda: 8080))

    def serve(_session):
        assert _session is session
        raise KeyboardInterrupt

    monkeypatch.setattr(server, "start", lambda content, host, port: session)
    monkeypatch.setattr(server, "serve", serve)
    assert main(["view", str(written[0])]) == 0
    captured = capsys.readouterr()
    assert "Ctrl-C to stop" in captured.out and captured.err == ""
