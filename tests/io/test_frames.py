"""Reading frames from videos and image folders: agreement, sampling, EXIF, rotation, bad input."""

from __future__ import annotations

import logging
import shutil

import av
import cv2
import numpy as np
import PIL.Image
import pytest

from align3r.bench.decode import synthetic_frame, write_synthetic_video
from align3r.errors import InputError
from align3r.io import iter_frames, probe, read_frames
from align3r.io.exif import focal_px_from_35mm


@pytest.fixture(scope="module")
def lady_video(lady_dir):
    return read_frames(lady_dir / "lady-running.mp4")


@pytest.fixture(scope="module")
def lady_folder(lady_dir):
    return read_frames(lady_dir / "lady-running")


def test_video_and_folder_give_the_same_frames(lady_video, lady_folder):
    assert len(lady_video) == len(lady_folder) == 65
    assert lady_video.original_size == lady_folder.original_size == (480, 854)
    np.testing.assert_array_equal(lady_video.indices, np.arange(65))
    np.testing.assert_array_equal(lady_folder.indices, np.arange(65))
    assert lady_folder.names[:3] == ["00000", "00001", "00002"] and lady_video.names[2] == "frame_000002"
    np.testing.assert_allclose(lady_video.timestamps, np.arange(65) / 30, atol=1e-9)
    assert lady_folder.timestamps is None and lady_video.fps == 30
    video, folder = lady_video.images, lady_folder.images
    errors = [cv2.absdiff(a, b).mean() for a, b in zip(video, folder)]
    assert max(errors) < 5  # MPEG-4 vs JPEG compression: ~3 grey levels on average
    # each decoded frame is closest to the JPEG of the same index (no off-by-one)
    for k in (1, 32, 63):
        neighbours = [cv2.absdiff(video[k], folder[k + d]).mean() for d in (-1, 0, 1)]
        assert np.argmin(neighbours) == 1 and neighbours[0] > 3 * neighbours[1]


def test_probe(lady_dir):
    info = probe(lady_dir / "lady-running.mp4")
    assert (info.kind, info.num_frames, info.fps, info.size) == ("video", 65, 30.0, (480, 854))
    info = probe(lady_dir / "lady-running", folder_fps=24)
    assert (info.kind, info.num_frames, info.fps, info.size) == ("images", 65, 24, (480, 854))


def test_stride_start_and_max_frames_select_the_same_decoded_frames(lady_video, lady_dir):
    seq = read_frames(lady_dir / "lady-running.mp4", start=40, stride=3)  # start seeks
    np.testing.assert_array_equal(seq.indices, np.arange(40, 65, 3))
    for image, index in zip(seq.images, seq.indices):
        np.testing.assert_array_equal(image, lady_video.images[index])
    seq = read_frames(lady_dir / "lady-running", start=5, stride=10, max_frames=3)
    np.testing.assert_array_equal(seq.indices, [5, 15, 25])
    assert seq.names == ["00005", "00015", "00025"]


def test_target_fps_keeps_one_frame_per_interval(lady_dir):
    seq = read_frames(lady_dir / "lady-running.mp4", fps=10)
    np.testing.assert_array_equal(seq.indices, np.arange(0, 65, 3))
    seq = read_frames(lady_dir / "lady-running.mp4", fps=7)
    assert np.all(np.diff(np.floor(seq.timestamps * 7 + 1e-6)) == 1)  # exactly one per 1/7 s slot
    seq = read_frames(lady_dir / "lady-running", fps=15, folder_fps=30)
    np.testing.assert_array_equal(seq.indices, np.arange(0, 65, 2))
    np.testing.assert_allclose(seq.timestamps, seq.indices / 30)


def test_seeking_in_a_video_with_many_key_frames(short_video):
    full = read_frames(short_video)
    assert len(full) == 40 and full.original_size == (64, 96)
    for start in (1, 8, 13, 39):
        part = read_frames(short_video, start=start, min_frames=1)
        np.testing.assert_array_equal(part.indices, np.arange(start, 40))
        for image, index in zip(part.images, part.indices):
            np.testing.assert_array_equal(image, full.images[index])
    # the decoded frames carry the frame number written into them (8 binary blocks)
    bits = [(full.images[k][2, 6 * np.arange(8) + 3, 0] > 127) for k in range(40)]
    assert [int(sum(int(b) << i for i, b in enumerate(row))) for row in bits] == list(range(40))


def test_streaming_yields_frames_one_by_one(short_video):
    frames = iter_frames(short_video, stride=5, max_frames=4)
    first = next(frames)
    assert first.index == 0 and first.image.shape == (64, 96, 3) and first.image.dtype == np.uint8
    assert [f.index for f in frames] == [5, 10, 15]


def test_iter_frames_decodes_only_up_to_the_frame_it_yields(short_video, tmp_path, monkeypatch):
    """Streaming: each frame is handed out as soon as it is decoded (a list built up front would
    have decoded all 40 frames before the first one comes out)."""
    import align3r.io.frames as frames_module
    import align3r.io.video as video_module

    decoded = 0

    def counted(generator):
        nonlocal decoded
        for item in generator:
            decoded += 1
            yield item

    raw = video_module._frames_from
    monkeypatch.setattr(video_module, "_frames_from", lambda *args: counted(raw(*args)))
    stream = iter_frames(short_video, stride=5)
    assert [(next(stream).index, decoded) for _ in range(3)] == [(0, 1), (5, 6), (10, 11)]
    stream.close()

    for k in range(6):
        _save(tmp_path / f"{k}.png", synthetic_frame(k, 16, 24))
    read = frames_module.read_image
    calls = []
    monkeypatch.setattr(frames_module, "read_image", lambda path: calls.append(path) or read(path))
    images = iter_frames(tmp_path)
    assert next(images).name == "0" and len(calls) == 1


# tiny clips of every container the docs list (encoders of the av wheel), and a WebP folder
_CONTAINERS = [(".mov", "mpeg4"), (".avi", "mpeg4"), (".webm", "libvpx"), (".mkv", "ffv1"), (".webp", None)]


@pytest.mark.parametrize(("suffix", "codec"), _CONTAINERS)
def test_containers_and_webp_frames_sampled_by_stride_and_fps(tmp_path, suffix, codec):
    count, height, width = 30, 48, 64
    source = [synthetic_frame(k, height, width) for k in range(count)]
    if codec is None:
        path, rate = tmp_path / "frames", {"folder_fps": 30}
        path.mkdir()
        for k, image in enumerate(source):
            _save(path / f"{k}{suffix}", image, quality=90)
    else:
        path, rate = tmp_path / f"clip{suffix}", {}
        write_synthetic_video(path, count, height, width, codec=codec, gop=8, bit_rate=4_000_000)
        assert probe(path).num_frames == count
    for seq, expected in ((read_frames(path, stride=4, start=1, **rate), np.arange(1, count, 4)),
                          (read_frames(path, fps=10, **rate), np.arange(0, count, 3))):
        np.testing.assert_array_equal(seq.indices, expected)
        assert seq.original_size == (height, width)
        np.testing.assert_allclose(seq.timestamps, expected / 30, atol=1e-3)
        for image, k in zip(seq.images, expected):
            errors = [np.abs(image.astype(np.int16) - source[j]).mean() for j in (k - 1, k, k + 1) if 0 <= j < count]
            own = np.abs(image.astype(np.int16) - source[k]).mean()
            # ~7 grey levels: 4:2:0 chroma of a noisy texture; the neighbours are 2x further
            assert own < 10 and own == min(errors) and sorted(errors)[1] > 2 * own


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "libx264"), (".webm", "libvpx")])
def test_truncated_matroska_and_webm_are_detected_from_their_duration(tmp_path, caplog, suffix, codec):
    """Matroska / WebM headers hold no frame count: the duration × rate estimate stands in for it,
    for the truncation check and for the memory check before decoding."""
    full = write_synthetic_video(tmp_path / f"full{suffix}", 30, 48, 64, codec=codec)
    with caplog.at_level(logging.WARNING, logger="align3r"):
        assert probe(full).num_frames == 30 and len(read_frames(full)) == 30
    assert not caplog.records  # an estimate that holds raises no false alarm
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert probe(cut).num_frames == 30  # the duration survives: it is in the header
    with pytest.raises(InputError, match=r"ended after \d+ of the 30 frames its duration implies.*truncated"):
        read_frames(cut)
    with pytest.raises(InputError, match=r"30 frames of 64x48 would take"):  # refused before decoding
        read_frames(cut, max_memory_gib=1e-5)


def test_video_rotation_is_applied(tmp_path):
    path = write_synthetic_video(tmp_path / "rot.mp4", 3, 48, 64, rotation=-90)  # phone portrait
    plain = write_synthetic_video(tmp_path / "plain.mp4", 3, 48, 64)
    info = probe(path)
    assert info.size == (64, 48)
    rotated, upright = read_frames(path), read_frames(plain)
    assert rotated.original_size == (64, 48)
    # displayed = stored frame turned 90° clockwise
    np.testing.assert_array_equal(rotated.images[1], np.rot90(upright.images[1], k=-1))


def _save(path, image, **kwargs):
    PIL.Image.fromarray(image).save(path, **kwargs)
    return path


def test_folder_natural_order_and_exif(tmp_path):
    image = synthetic_frame(0, 40, 60)
    for stem in ("10", "2", "1"):
        _save(tmp_path / f"{stem}.png", image)
    (tmp_path / "notes.txt").write_text("not an image")
    seq = read_frames(tmp_path)
    assert seq.names == ["1", "2", "10"]
    assert seq.focal_px == [None, None, None]
    listed = read_frames([tmp_path / "10.png", tmp_path / "1.png"])  # a list keeps its own order
    assert listed.names == ["10", "1"] and listed.source == tmp_path

    exif_dir = tmp_path / "exif"
    exif_dir.mkdir()
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise for display
    exif.get_ifd(0x8769)[0xA405] = 26  # FocalLengthIn35mmFilm
    for k in range(2):
        _save(exif_dir / f"{k}.jpg", synthetic_frame(k, 40, 60), exif=exif.tobytes(), quality=95)
    seq = read_frames(exif_dir)
    assert seq.original_size == (60, 40)  # transposed as displayed
    assert seq.images[0].shape == (60, 40, 3)
    assert seq.focal_px[0] == pytest.approx(26 * np.hypot(40, 60) / np.hypot(36, 24))
    assert focal_px_from_35mm(26, 60, 40) == pytest.approx(seq.focal_px[0])


# ---- bad input ---------------------------------------------------------------------------------


def _bad_video_files(tmp_path, lady_dir):
    data = (lady_dir / "lady-running.mp4").read_bytes()
    files = {
        "empty.mp4": b"",
        "notes.mp4": b"these are not video frames\n" * 20,
        "truncated.mp4": data[: len(data) // 2],  # header (moov) at the end: lost
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return [tmp_path / name for name in files]


def test_unreadable_videos_give_clear_errors(tmp_path, lady_dir):
    for path in _bad_video_files(tmp_path, lady_dir):
        with pytest.raises(InputError, match=r"(empty|cannot be read as a video).*re-encode"):
            read_frames(path)
        with pytest.raises(InputError):
            probe(path)
        with pytest.raises(InputError, match="re-encode"):
            iter_frames(path)  # at the call, before any next()


def test_truncated_streamable_video_is_detected(tmp_path, lady_dir):
    # "faststart" layout (header first): a truncated file still opens and decodes its first half
    fast = tmp_path / "fast.mp4"
    with av.open(str(lady_dir / "lady-running.mp4")) as src, \
            av.open(str(fast), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"ended after \d+ of the 65 frames.*truncated"):
        read_frames(cut)
    assert len(read_frames(cut, max_frames=10)) == 10  # the readable part is usable on purpose


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no images in folder.*empty"):
        read_frames(empty)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"no images in folder.*\.txt"):
        read_frames(texts)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _save(mixed / "0.png", synthetic_frame(0, 40, 60))
    _save(mixed / "1.png", synthetic_frame(1, 40, 60))
    _save(mixed / "2.png", synthetic_frame(2, 48, 60))
    with pytest.raises(InputError, match=r"different sizes: 0.png is 60x40 but 2.png is 60x48"):
        read_frames(mixed)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    _save(corrupt / "0.png", synthetic_frame(0, 40, 60))
    (corrupt / "1.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match=r"1\.png"):
        read_frames(corrupt)


def test_one_frame_cannot_be_aligned(tmp_path, short_video):
    single = tmp_path / "single"
    single.mkdir()
    _save(single / "0.png", synthetic_frame(0, 40, 60))
    with pytest.raises(InputError, match="one frame cannot be aligned"):
        read_frames(single)
    with pytest.raises(InputError, match="one frame cannot be aligned"):
        read_frames(single / "0.png")
    one = write_synthetic_video(tmp_path / "one.mp4", 1, 48, 64)
    with pytest.raises(InputError, match="one frame cannot be aligned"):
        read_frames(one)
    with pytest.raises(InputError, match="no frame at or after start=100"):
        read_frames(short_video, start=100)
    assert len(read_frames(single, min_frames=1)) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"stride": 0}, "stride"),
    ({"stride": 2, "fps": 10}, "either stride or fps"),
    ({"fps": -1}, "fps"),
    ({"start": -3}, "start"),
    ({"max_frames": 1}, "below"),
])
def test_bad_sampling_arguments(lady_dir, kwargs, message):
    with pytest.raises(InputError, match=message):
        read_frames(lady_dir / "lady-running.mp4", **kwargs)
    with pytest.raises(InputError, match=message):
        iter_frames(lady_dir / "lady-running", **kwargs)  # raised at the call, not at next()


def test_missing_source_and_folder_fps(tmp_path, lady_dir):
    with pytest.raises(InputError, match="no such file or folder"):
        read_frames(tmp_path / "nothing.mp4")
    with pytest.raises(InputError, match="folder_fps"):
        read_frames(lady_dir / "lady-running", fps=10)


def test_memory_limit_refuses_before_decoding(lady_dir, tmp_path):
    with pytest.raises(InputError, match=r"65 frames of 854x480 would take.*max_memory_gib"):
        read_frames(lady_dir / "lady-running.mp4", max_memory_gib=0.05)
    assert len(read_frames(lady_dir / "lady-running.mp4", max_memory_gib=0.05, stride=8)) == 9
    copy = tmp_path / "copy"
    shutil.copytree(lady_dir / "lady-running", copy)
    with pytest.raises(InputError, match="max_memory_gib"):
        read_frames(copy, max_memory_gib=0.01)
