"""The preview video decodes with the right frame count, size and content."""

import av
import numpy as np

from align3r.export.video import fps_from_timestamps, pick_encoder, side_by_side, write_video


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, stream.codec_context.name, float(stream.average_rate)


def test_preview_video_has_every_frame_side_by_side(written):
    out, _, rgb, _ = written
    frames, codec, fps = decode(out / "preview.mp4")
    assert len(frames) == 6
    assert frames[0].shape == (48, 3 * 64, 3)
    assert codec == "h264" and round(fps) == 30
    # The left panel is the RGB frame (lossy codec: compare on average).
    assert np.abs(frames[2][:, :64].astype(int) - rgb[2]).mean() < 12
    # The right panel tints dynamic pixels red: the dynamic square is redder than the rest.
    right = frames[2][:, 128:].astype(int)
    redness = right[..., 0] - right[..., 1]
    assert redness[12:18, 17:23].mean() > redness[30:, :].mean() + 40


def test_encoder_fallback_and_odd_sizes(tmp_path):
    assert pick_encoder(["no-such-encoder", "mpeg4"]) == "mpeg4"
    panel = np.full((33, 21, 3), 200, np.uint8)
    frame = side_by_side(panel, panel)
    assert frame.shape == (34, 42, 3)  # padded to even sizes for 4:2:0
    path = tmp_path / "v.mp4"
    assert write_video(path, [frame] * 4, fps=12.0, encoder="mpeg4") == "mpeg4"
    frames, codec, fps = decode(path)
    assert len(frames) == 4 and frames[0].shape == (34, 42, 3) and codec == "mpeg4" and round(fps) == 12
    assert fps_from_timestamps(np.array([0.0, 0.04, 0.08])) == 25.0
    assert fps_from_timestamps(np.array([3.0])) == 10.0
