"""Helpers shared by the benchmark targets: machine description, timing, peak memory."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable

import torch


def machine_description(device: torch.device | str = "cpu") -> str:
    device = torch.device(device)
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
