"""The one event type the library reports progress with (batches, videos, sheets, evaluation);
the CLI renders them. Leaf module."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Event:
    """What a run reports: an input finished ("done", "skipped", "failed"), or "progress" inside one."""

    status: str  # done | skipped | failed | progress
    index: int = 0  # of the input, 0-based, among ``total``
    total: int = 0
    input: str | None = None
    output: str | None = None
    seconds: float = 0.0
    size: tuple[int, int] | None = None  # (width, height) written
    error: str | None = None
    mode: str | None = None  # the DIN mode that ran
    record: dict | None = None  # what --json prints for this input (None: nothing)
    step: int = 0  # progress: frames, pairs or styles done ...
    steps: int | None = None  # ... of about this many
    rate: float | None = None  # ... per second
