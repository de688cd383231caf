"""A periodic progress line with rate and ETA (logging, so it lands in job logs as well as the terminal)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("data_recipes")


class Progress:
    def __init__(self, what: str, total_bytes: int | None, every_s: float = 5.0):
        self.what = what
        self.total = total_bytes
        self.every = every_s
        self.start = self.last = time.monotonic()
        self.bytes = 0
        self.docs = 0

    def update(self, n_bytes: int, n_docs: int, force: bool = False) -> None:
        self.bytes += n_bytes
        self.docs += n_docs
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            log.info(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.bytes / elapsed
        text = f"{self.what}: {self.docs} docs, {self.bytes / 1e6:.1f} MB, {rate / 1e6:.2f} MB/s, {self.docs / elapsed:.0f} docs/s"
        if self.total:
            left = max(self.total - self.bytes, 0)
            text += f", {100 * min(self.bytes / self.total, 1):.0f}% of ~{self.total / 1e6:.0f} MB, ETA {left / max(rate, 1e-9):.0f}s"
        return text
