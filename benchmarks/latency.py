"""Per-call latency for the benchmarks: time each call, report p50 and p95 in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def time_each(call: Callable[[T], object], items: Iterable[T]) -> list[float]:
    """Milliseconds of `call(item)` for each item, in order."""
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


def p50_p95(times_ms: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (nearest rank below) of a list of milliseconds."""
    ordered = sorted(times_ms)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]
