"""Helpers shared by the benchmark targets: machine description, timing, peak memory."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable

import torch

from align3r.errors import InputError


def resolve(device: torch.device | str | None) -> torch.device:
    """The ``--device`` of a bench target, checked once before any work: an unknown device, or
    CUDA on a machine without it, raises :class:`InputError` in the bench flag's own words."""
    from align3r.device import resolve_device

    try:
        return resolve_device(device)
    except InputError as exc:
        raise InputError(str(exc).replace(f"device={device}", f"--device {device}")
                         .replace("device=", "--device ")) from None


def size_arg(text: str) -> tuple[int, int]:
    """argparse type of ``--size WxH`` → ``(width, height)``, both positive."""
    parts = str(text).lower().split("x")
    try:
        width, height = (int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 512x288") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be positive")
    return width, height


def _int_at_least(minimum: int):
    """argparse type: an integer ≥ ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {minimum}")
        return value

    return parse


positive_int = _int_at_least(1)
nonneg_int = _int_at_least(0)


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers ≥ 1 (``1,2,4``)."""
    try:
        values = [positive_int(v.strip()) for v in str(text).split(",") if v.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated positive integers, e.g. 1,2,4") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least one integer")
    return values


def machine_description(device: torch.device | str = "cpu") -> str:
    device = resolve(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")


def peak_rss_gib() -> float:
    """Peak resident memory of this process (GiB) since the last :func:`reset_peak_memory`, or since
    it started where the peak cannot be reset (Linux VmHWM; else ru_maxrss, KiB on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def reset_peak_memory(device: torch.device | str = "cpu") -> bool:
    """Start a new peak-memory window: CUDA's allocator statistics, or the process's VmHWM on Linux
    (writing 5 to /proc/self/clear_refs resets it), so that each benchmark row reports its own peak.
    Returns False where the peak could not be reset (it then stays cumulative)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:  # not Linux, or not permitted
        return False
    return True


def peak_memory(device: torch.device | str = "cpu") -> str:
    """The peak since :func:`reset_peak_memory`, with what it measures."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (CUDA allocated)"
    return f"{peak_rss_gib():.2f} GiB (process peak RSS)"


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device | str = "cpu", warmup: int = 1,
              repeat: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    if repeat < 1:
        raise InputError(f"repeat={repeat}: at least one timed call is needed (--repeat 1 or more)")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]
