"""``align3r view DIR``: browse a reconstruction (viser) or render a screenshot (no display needed)."""

from __future__ import annotations

import argparse

HELP = "show (or screenshot) a reconstruction directory"
DESCRIPTION = """Show a reconstruction written by `align3r infer`: the 4-D point cloud with camera frusta
on a frame timeline, in the browser (needs viser: pip install "align3r[viewer]").

With --screenshot FILE, render a static picture instead (software renderer, no display or GPU);
the extension picks the format (.png, .jpg, .webp, .bmp, .tif). Ctrl-C stops the viewer.

examples:
  align3r view outputs/lady-running
  align3r view outputs/lady-running --screenshot shot.png --frame 15
  align3r view outputs/lady-running --screenshot cam0.png --camera 0 --no-static"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from exc
    if w < 8 or h < 8 or w * h > 64_000_000:
        raise argparse.ArgumentTypeError(f"size {text} out of range (8x8 .. 64 megapixels)")
    return h, w


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _warn_if_no_points(content, args: argparse.Namespace) -> None:
    """Say so when the filters leave no point to draw (only camera frusta would be shown)."""
    import sys

    frame_points = sum(len(f) for f in content.frames)
    static_points = len(content.static)
    if frame_points:
        return
    why = [f"--max-points {args.max_points}"] if args.max_points == 0 else []
    if args.min_conf is not None:
        why.append(f"--min-conf {args.min_conf:g}")
    reason = " and ".join(why) or "the confidence threshold used at export"
    shown = "only the fused static scene and the camera frusta are drawn" if static_points and not args.no_static \
        else "only the camera frusta are drawn"
    print(f"align3r view: warning: no per-frame point passed the filter ({reason}); {shown} — lower --min-conf "
          "(confidence is > 1) or raise --max-points", file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="output directory of `align3r infer`")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="render a picture instead of starting the viewer (.png, .jpg, .webp, .bmp, .tif)")
    parser.add_argument("--frame", type=int, default=None, help="frame shown (default: the middle one)")
    parser.add_argument("--camera", type=int, default=None,
                        help="screenshot through input camera K (default: an overview behind the cameras)")
    parser.add_argument("--size", type=_size, default=(720, 1280), metavar="WxH", help="screenshot size (1280x720)")
    parser.add_argument("--no-static", action="store_true", help="screenshot without the fused static scene")
    parser.add_argument("--no-cameras", action="store_true", help="screenshot without camera frusta")
    parser.add_argument("--point-radius", type=int, default=None,
                        help="screenshot splat half-size in pixels (default: closes gaps between points)")
    parser.add_argument("--min-conf", type=float, default=None,
                        help="confidence threshold for points (default: the one used at export, else 3)")
    parser.add_argument("--max-points", type=_non_negative, default=100_000,
                        help="points per frame at most (100000)")
    parser.add_argument("--host", default="127.0.0.1", help="viewer host (0.0.0.0 to share on the network)")
    parser.add_argument("--port", type=int, default=8080, help="viewer port (8080)")


def run(args: argparse.Namespace) -> int:
    from align3r.errors import InputError
    from align3r.export.reader import load_reconstruction
    from align3r.viewer.content import build_content

    if args.screenshot:
        from align3r.viewer.screenshot import screenshot_format

        screenshot_format(args.screenshot)  # an extension we cannot write fails before any work
    saved = load_reconstruction(args.directory)
    content = build_content(saved, min_conf=args.min_conf, max_points_per_frame=args.max_points)
    n = content.num_frames
    for name, value in (("--frame", args.frame), ("--camera", args.camera)):
        if value is not None and not 0 <= value < n:
            raise InputError(f"{name} {value} is out of range: {args.directory} has {n} frames (0..{n - 1})")
    _warn_if_no_points(content, args)
    if args.screenshot:
        from align3r.viewer.screenshot import render_screenshot, save_screenshot

        image = render_screenshot(content, frame=args.frame, view="overview" if args.camera is None else args.camera,
                                  size_hw=args.size, show_static=not args.no_static,
                                  show_cameras=not args.no_cameras, point_radius=args.point_radius)
        print(save_screenshot(args.screenshot, image))
        return 0

    from align3r.viewer.server import serve, start

    session = start(content, host=args.host, port=args.port)
    if args.frame is not None:
        session.slider.value = args.frame
        session.show_frame(args.frame)
    print(f"viewer running at http://{args.host}:{session.server.get_port()} (Ctrl-C to stop)")
    try:
        serve(session)
    except KeyboardInterrupt:  # the documented way to stop the viewer: not an error
        pass
    return 0
