"""A calm progress line for long runs: one line per period, whatever dlt is doing.

dlt's LogCollector prints one line per table and counter (110-250 lines every 10 s for this
source); this collector folds them into what an operator watches: how far the run got
(requests, rows, resources done) and for how long it has been running.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from dlt.common.pipeline import SupportsPipeline
from dlt.common.runtime.collector_base import Collector
from dlt.pipeline.trace import PipelineTrace
from dlt.pipeline.typing import TPipelineStep


class Progress(Collector):
    def __init__(self, period: float = 10.0, out: TextIO | None = None) -> None:
        self.period = period
        self.out = out or sys.stdout
        self.requests: Callable[[], int] = lambda: 0
        self.resources_done: Callable[[], int] | None = None
        self._began: float | None = None
        self._last = 0.0
        self._rows = 0
        self._resources = (0, 0)
        self._jobs = (0, 0)
        self._source_extracted = False
        self.step = ""

    def watch(self, requests: Callable[[], int],
              resources_done: Callable[[], int] | None = None) -> None:
        """Where requests made (and, if known, resources finished) are counted: the client
        and the extraction, which dlt does not see."""
        self.requests = requests
        self.resources_done = resources_done

    def update(self, name: str, inc: int = 1, total: int | None = None,
               inc_total: int | None = None, message: str | None = None,
               label: str | None = None) -> None:
        extracting = self.step.startswith("Extract") and not self._source_extracted
        if name == "Jobs":
            done, known = self._jobs
            self._jobs = (done + inc, (total if total is not None else known) + (inc_total or 0))
        elif name == "Resources" and extracting:
            done, known = self._resources
            self._resources = (done + inc, total if total is not None else known)
        elif extracting and not label:
            self._rows += inc  # dlt counts items per table while extracting
        now = time.monotonic()
        if now - self._last >= self.period:
            self._last = now
            print(self.line(now), file=self.out, flush=True)

    def line(self, now: float) -> str:
        elapsed = int(now - (self._began or now))
        step = self.step.split(" ")[0].lower() or "run"
        done, total = self._resources
        if self.resources_done is not None:
            done = self.resources_done()
        parts = [f"[{elapsed // 60}:{elapsed % 60:02d}] {step}:",
                 f"{self.requests():,} requests", f"{self._rows:,} rows extracted",
                 f"{done}/{total} resources done"]
        if step == "load":
            parts.append("{}/{} load jobs".format(*self._jobs))
        return " ".join(parts[:1]) + " " + ", ".join(parts[1:])

    def on_start_trace(self, trace: PipelineTrace, step: TPipelineStep,
                       pipeline: SupportsPipeline) -> None:
        """A new run of the pipeline: its own clock and counts."""
        self._began = self._last = time.monotonic()  # first line after one period
        self._rows, self._resources, self._source_extracted = 0, (0, 0), False

    def _start(self, step: str) -> None:
        if self._began is None:  # a step run on its own, outside pipeline.run
            self._began = self._last = time.monotonic()
        self._jobs = (0, 0)

    def _stop(self) -> None:
        # The source's extract comes first; later ones only carry dlt's pipeline state.
        # No closing line: the run summary follows and would repeat it.
        self._source_extracted |= self.step.startswith("Extract")
