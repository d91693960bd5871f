"""``align3r bench align``: global-alignment speed (ms per iteration) and peak memory.

Cases, each run in a fresh process so its peak memory is its own:

- ``fixture``: the official optimizer's fixture problem (N=10 at 64x48, 48 edges) from
  ``$ALIGN3R_SHARED/fixtures/align`` (default ``../shared`` beside the project); the final loss
  is printed next to the reference's (0.124216 for the paper's settings).
- ``flat``: a synthetic video (exact geometry, 1 % noise, 2 % outliers, per-edge scales) of
  ``--frames`` frames at ``--size`` with one pair graph over all frames (``--graph``; the
  MonST3R default ``swinstride-5-noncyclic`` gives 250 edges for 30 frames).
- ``grouped``: the same video through the grouped keyframe mode (official grouped graph:
  keyframes, then clips fitted by a Sim(3)); time for the whole video.
- ``presets``: quality of the ``paper`` and ``fast`` presets on the fixture (loss, loss at
  iteration 10, ATE after Sim(3), focal error, median-scaled Abs Rel against the fixture's truth).

Figures are printed as a Markdown table with the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import time
from pathlib import Path

import roma
import torch

from align3r.bench._common import (
    machine_description,
    nonneg_int,
    peak_memory,
    positive_int,
    resolve,
    size_arg,
    synchronize,
)
from align3r.errors import InputError

HELP = "global alignment: ms/iteration and peak memory (fixture problem, synthetic flat and grouped videos)"
CASES = ("fixture", "flat", "grouped", "presets")
REFERENCE_FIXTURE_LOSS = {"paper": 0.124216, "demo": 0.124221}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", choices=(*CASES, "all"), default="all", help="which problem to time")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--iters", type=positive_int, default=None,
                        help="iterations per alignment (None: the preset's; 10 for flat/grouped on CPU); "
                             "not for --case presets")
    parser.add_argument("--size", type=size_arg, default="512x288", help="WIDTHxHEIGHT of the synthetic video")
    parser.add_argument("--frames", type=positive_int, default=30, help="frames of the synthetic video")
    parser.add_argument("--graph", default="swinstride-5-noncyclic", help="pair graph of the flat case")
    parser.add_argument("--preset", default=None,
                        help="alignment preset (paper, demo, fast, ...; None: paper); not for --case presets, "
                             "which compares paper and fast")
    parser.add_argument("--flow", action="store_true", help="include the flow term (exact synthetic flow)")
    parser.add_argument("--threads", type=nonneg_int, default=None, help="torch CPU threads (None: torch's)")


def _fixture_preds(device):
    import numpy as np

    from align3r.align import from_official_output

    shared = Path(os.environ.get("ALIGN3R_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
    folder = shared / "fixtures" / "align"
    if not (folder / "align_inputs.npz").is_file():
        return None
    d = np.load(folder / "align_inputs.npz")
    return from_official_output({"idx": d["view1_idx"]}, {"idx": d["view2_idx"]},
                                {"pts3d": d["pred1_pts3d"], "conf": d["pred1_conf"]},
                                {"pts3d_in_other_view": d["pred2_pts3d_in_other_view"],
                                 "conf": d["pred2_conf"]}).to(device)


def _ate(pred_cam2world: torch.Tensor, gt_cam2world) -> float:
    """RMSE of camera centres after a Sim(3) Umeyama fit (evo's ATE with scale correction)."""
    pred = pred_cam2world[:, :3, 3].double().cpu()
    gt = torch.as_tensor(gt_cam2world)[:, :3, 3].double()
    rot, trans, s = roma.rigid_points_registration(pred, gt, compute_scaling=True)
    return float((pred @ (s * rot).T + trans - gt).square().sum(-1).mean().sqrt())


def _absrel(pred_depth: torch.Tensor, gt_depth) -> float:
    """Abs Rel after one scale per sequence, the median of gt / pred (the fixture's metric)."""
    pred = pred_depth.double().cpu()
    gt = torch.as_tensor(gt_depth).double()
    scaled = pred * float((gt / pred).flatten().median())
    return float(((scaled - gt).abs() / gt).mean())


def _timed_align(preds, config, flow, device):
    """Initialisation and optimisation timed apart; returns (init_s, loop_s, final_loss)."""
    from align3r.align import Objective, build_scene, optimise, spanning_tree_init
    from align3r.align.optimize import FlowTerm

    synchronize(device)
    t0 = time.perf_counter()
    init = spanning_tree_init(preds, min_conf_thr=config.min_conf_thr, pnp_iterations=config.pnp_iterations)
    model = build_scene(preds, init, config)
    flow_term = None
    if flow is not None:
        static = torch.ones(preds.num_frames, *preds.image_size, dtype=torch.bool, device=device)
        flow_term = FlowTerm(preds.edges, flow.flow_ij, flow.flow_ji, static)
    objective = Objective(preds, config, flow_term)
    synchronize(device)
    t1 = time.perf_counter()
    history, _ = optimise(model, objective, config, progress=False)
    synchronize(device)
    return t1 - t0, time.perf_counter() - t1, (history[-1] if history else float("nan"))


def _run_case(case: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    from align3r.align import align, align_grouped, preset
    from align3r.align.grouped import window_keyframe_graph
    from align3r.align.synthetic import synthetic_scene
    from align3r.pairs import make_graph, make_grouped_graph

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    width, height = args.size
    rows: list[tuple[str, str]] = []
    if case == "presets":
        import numpy as np

        preds = _fixture_preds(device)
        if preds is None:
            return [("error", "the fixture is needed (set ALIGN3R_SHARED)")]
        shared = Path(os.environ.get("ALIGN3R_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
        gt = np.load(shared / "fixtures" / "align" / "align_inputs.npz")
        exact = synthetic_scene(8, 24, 32, loops=0.1)
        noisy = synthetic_scene(20, 24, 32, loops=0.2, seed=1)
        problems = [
            ("fixture", preds, gt["gt_cam2world"], gt["gt_depth"], float(gt["gt_focal"]), {}),
            ("exact point maps, 8 frames 32x24, no temporal term",
             exact.predictions(make_graph("swin-2-noncyclic", 8).edges, noise=0.0, device=device),
             exact.cam2world, exact.depth, exact.focal, {"temporal_weight": 0.0}),
            ("1 % noise + 2 % outliers, 20 frames 32x24",
             noisy.predictions(make_graph("swin-3-noncyclic", 20).edges, noise=0.01, outlier_fraction=0.02,
                               device=device), noisy.cam2world, noisy.depth, noisy.focal, {}),
        ]
        for label, problem, gt_pose, gt_depth, gt_focal, extra in problems:
            for name in ("paper", "fast"):
                config = preset(name, **extra)
                t0 = time.perf_counter()
                rec = align(problem, config, progress=False)
                total = time.perf_counter() - t0
                focal_err = abs(float(rec.focals[0]) - gt_focal) / gt_focal
                rows.append((f"{label}: {name}",
                             f"{config.iterations} it, {total:.2f} s; loss {rec.loss_history[0]:.6f} -> "
                             f"{rec.loss_history[10]:.4f} (it 10) -> {rec.loss_history[-1]:.6f}; ATE "
                             f"{_ate(rec.cam2world, gt_pose):.4f}; focal error {100 * focal_err:.3f} %; "
                             f"Abs Rel {_absrel(rec.depth, gt_depth):.5f}"))
        rows.append(("fixture: official optimizer, paper settings — reference figures, not measured here "
                     "(the fixture's recorded official run)",
                     "300 it; loss 0.185595 -> 0.8317 (it 10) -> 0.124216; ATE 0.0128; focal 54.974 (0.047 %); "
                     "Abs Rel 0.00291"))
    elif case == "fixture":
        preds = _fixture_preds(device)
        source = "official fixture"
        if preds is None:  # same size, synthetic
            scene = synthetic_scene(10, 48, 64)
            preds = scene.predictions(make_graph("swin-3-noncyclic", 10).edges, outlier_fraction=0.02, device=device)
            source = "synthetic stand-in (fixture not found)"
        config = preset(args.preset, **({"iterations": args.iters} if args.iters else {}))
        init_s, loop_s, loss = _timed_align(preds, config, None, device)
        official = source == "official fixture" and config.iterations == 300
        ref = REFERENCE_FIXTURE_LOSS.get(args.preset) if official else None
        rows += [("problem", f"{source}: N=10, 64x48, {preds.num_edges} edges, preset {args.preset}"),
                 ("initialisation", f"{init_s * 1000:.0f} ms"),
                 ("ms / iteration", f"{loop_s / max(config.iterations, 1) * 1000:.2f} ({config.iterations} iterations)"),
                 ("final loss", f"{loss:.6f}" + (f" (reference {ref})" if ref else ""))]
    else:
        iters = args.iters or (10 if device.type == "cpu" else None)
        config = preset(args.preset, **({"iterations": iters} if iters else {}))
        t0 = time.perf_counter()
        scene = synthetic_scene(args.frames, height, width, loops=args.frames / 240)
        if case == "flat":
            graph = make_graph(args.graph, args.frames)
            preds = scene.predictions(graph.edges, outlier_fraction=0.02, device=device)
            flow = scene.flow(graph.edges, device=device) if args.flow else None
            gen_s = time.perf_counter() - t0
            init_s, loop_s, loss = _timed_align(preds, config, flow, device)
            rows += [("problem", f"synthetic N={args.frames}, {width}x{height}, {args.graph} ({preds.num_edges} "
                                 f"edges), preset {args.preset}{', flow' if args.flow else ''}"),
                     ("data generation", f"{gen_s:.1f} s (not timed below)"),
                     ("initialisation", f"{init_s:.2f} s"),
                     ("ms / iteration", f"{loop_s / config.iterations * 1000:.1f} ({config.iterations} iterations)"),
                     ("final loss", f"{loss:.6f}")]
        else:
            graph = make_grouped_graph(args.frames, "official")
            gen_s = [0.0]

            def predict(g):
                t = time.perf_counter()
                out = scene.predictions(g.edges, outlier_fraction=0.02, device=device)
                gen_s[0] += time.perf_counter() - t
                return out

            flow_fn = (lambda g: scene.flow(g.edges, device=device)) if args.flow else None
            synchronize(device)
            t1 = time.perf_counter()
            rec = align_grouped(graph, predict, config, flow_fn=flow_fn, progress=False)
            synchronize(device)
            total = time.perf_counter() - t1 - gen_s[0]
            groups = 1 + len(graph.clips)
            gt_c = scene.cam2world[:, :3, 3].double()
            ate = _ate(rec.cam2world, scene.cam2world)
            key_edges = window_keyframe_graph(graph.keyframe_graph, graph.keyframe_ids, 10).num_edges
            clip_edges = sum(g.num_edges for g in graph.clip_graphs)
            rows += [("problem", f"synthetic N={args.frames}, {width}x{height}, grouped official "
                                 f"({groups - 1} clips of {graph.clip_size}; {key_edges} keyframe + {clip_edges} clip "
                                 f"edges), preset {args.preset}{', flow' if args.flow else ''}"),
                     ("alignment time", f"{total:.2f} s for {groups} alignments of {config.iterations} iterations "
                                        f"(prediction generation {gen_s[0]:.1f} s excluded)"),
                     ("ms / iteration", f"{total / (groups * config.iterations) * 1000:.1f} (incl. initialisations)"),
                     ("ATE vs truth", f"{ate:.4f} m (trajectory {float((gt_c - gt_c.mean(0)).norm(dim=1).max()):.2f} m)")]
    rows.append(("peak memory", peak_memory(device)))
    return rows


def _child(case, args, queue):
    try:
        queue.put(_run_case(case, args))
    except Exception as err:  # reported by the parent
        queue.put([("error", f"{type(err).__name__}: {err}")])


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


def _collect(proc, queue, poll_s: float = 0.5) -> list[tuple[str, str]]:
    """The rows the worker ``proc`` puts on ``queue``, or a ``died`` row if it exits without them
    (killed, out of memory, crashed): polls instead of waiting forever."""
    while True:
        try:
            rows = queue.get(timeout=poll_s)
            break
        except queue_module.Empty:
            if proc.is_alive():
                continue
            try:  # it may have put its rows just before exiting
                rows = queue.get(timeout=poll_s)
                break
            except queue_module.Empty:
                proc.join()
                return [("died", f"the worker process died without a result: {_exit_reason(proc.exitcode)}")]
    proc.join()
    return rows


def run(args: argparse.Namespace) -> int:
    device = resolve(args.device)
    cases = CASES if args.case == "all" else (args.case,)
    if args.case == "presets" and (args.preset is not None or args.iters is not None):
        raise InputError("--case presets compares the paper and fast presets at their own iterations: "
                         "drop --preset / --iters, or choose --case fixture, flat or grouped")
    ctx = multiprocessing.get_context("spawn")
    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if not k.startswith("_")})
    plain.device, plain.preset = str(device), args.preset or "paper"
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine_description(device)}")
    failed = []
    for case in cases:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(case, plain, queue))
        proc.start()
        rows = _collect(proc, queue)
        if any(name in ("error", "died") for name, _ in rows):
            failed.append(case)
        print(f"\n### {case}\n\n| figure | value |\n|---|---|")
        if case == "presets" and args.case == "all" and (args.preset is not None or args.iters is not None):
            print("| note | --preset / --iters do not apply: this case compares paper and fast at their own settings |")
        for name, value in rows:
            print(f"| {name} | {value} |", flush=True)
    if failed:
        print(f"\nalign3r bench align: {len(failed)} case(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
