"""Sizes and time caps of a suite run: full (``python -m benchmarks``) and quick (``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Scale"]


@dataclass(frozen=True)
class Scale:
    """Sizes and time caps of one suite run."""

    name: str
    realistic_images: int
    unthrottled_images: int
    memory_images: int
    """The memory scenario's file (about 100k rows at full scale)."""
    big_images: int
    """The memory scenario's big file, run with ``--big`` (about 5M rows at full scale)."""
    hostile_images: int
    realistic_cap: float
    unthrottled_cap: float
    hostile_cap: float
    ingest_cap: float
    """Safety cap for ingest itself (it is expected to finish well before)."""
    cpu_repeats: int
    """Unthrottled: runs of the floor and of each ingest client, interleaved."""


FULL = Scale(
    name="full",
    realistic_images=20_000,
    unthrottled_images=33_334,  # ~100k rows at 3 boxes per image on average
    memory_images=33_334,  # ~100k rows
    big_images=1_666_667,  # ~5M rows
    hostile_images=1_000,
    realistic_cap=60.0,
    unthrottled_cap=60.0,
    hostile_cap=30.0,
    ingest_cap=900.0,
    cpu_repeats=5,
)
QUICK = Scale(
    name="quick",
    realistic_images=1_500,
    unthrottled_images=6_667,  # ~20k rows
    memory_images=6_667,  # ~20k rows
    big_images=33_334,  # ~100k rows
    hostile_images=300,
    realistic_cap=8.0,
    unthrottled_cap=8.0,
    hostile_cap=8.0,
    ingest_cap=120.0,
    cpu_repeats=1,
)
