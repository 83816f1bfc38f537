"""Where a full connector load spends its time, phase by phase.

    python -m bench.profile [--scale 200000] [--top 15]

Runs the benchmark subset (bench.common.SUBSET) from a sandbox process into DuckDB, calling
dlt's extract, normalize and load steps one at a time (as `pipelines.pipeline.run` does in
one `pipeline.run`), each under cProfile. cProfile only sees the calling thread; dlt runs
the resources (HTTP, page conversion) and the load jobs in thread pools, so the extract and
load steps are also sampled across all threads (stack samples every 5 ms). Prints wall seconds
per phase, then per phase the top functions by cumulative time and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any, Self

from bench.common import SUBSET, duckdb_pipeline, sandbox_process, temp_dir

SITE = str(Path(pstats.__file__).parent)


def short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.replace(SITE + "/", "stdlib/")


def top_lines(profile: cProfile.Profile, top: int, total: float) -> list[str]:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = [(ct, tt, nc, f"{short(file)}:{line}({func})")
            for (file, line, func), (_, nc, tt, ct, _) in stats.items()]
    # Wrappers that only pass the phase through (>= 97% of it) say nothing; skip them.
    inner = [r for r in rows if r[0] < 0.97 * total]
    out = ["  by cumulative time (s, % of phase, calls, function):"]
    for ct, _, nc, name in sorted(inner, reverse=True)[:top]:
        out.append(f"    {ct:7.2f} {100 * ct / total:5.1f}% {nc:>9} {name}")
    out.append("  by own time:")
    for _, tt, nc, name in sorted(rows, key=lambda r: r[1], reverse=True)[:top]:
        out.append(f"    {tt:7.2f} {100 * tt / total:5.1f}% {nc:>9} {name}")
    return out


WATCHED = (
    ("schema_storage.py", "_load_import_schema", "import schema loads (YAML parse)"),
    ("schema.py", "from_dict", "Schema.from_dict"),
    ("client.py", "request", "WalletClient.request (HTTP + decode)"),
    ("__init__.py", "_decorate", "connector row decoration"),
)


def watched(profile: cProfile.Profile, total: float) -> list[str]:
    """A few functions whose totals answer "where does the time go" directly."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    out = []
    for file_end, func, label in WATCHED:
        hits = [(nc, ct) for (file, _, name), (_, nc, _, ct, _) in stats.items()
                if name == func and file.endswith(file_end)
                and ("sources/wallet" in file or "dlt/" in file)]
        if hits:
            calls = sum(h[0] for h in hits)
            seconds = max(h[1] for h in hits)
            out.append(f"  watched: {label}: {calls} calls, {seconds:.2f} s "
                       f"({100 * seconds / total:.0f}%)")
    return out


class ThreadSampler:
    """Samples every thread's stack; counts frames seen anywhere (cumulative) and on top."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples = 0
        self.cumulative: Counter[str] = Counter()
        self.own: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                names = []
                f: FrameType | None = frame
                while f is not None:
                    code = f.f_code
                    names.append(f"{short(code.co_filename)}:{code.co_firstlineno}"
                                 f"({code.co_name})")
                    f = f.f_back
                if names[0].endswith(("(_worker)", "(wait)", "(_wait_for_tstate_lock)")):
                    continue  # idle: a pool worker on its queue, or a thread waiting
                self.samples += 1
                self.own[names[0]] += 1
                for name in set(names):
                    self.cumulative[name] += 1

    def lines(self, top: int) -> list[str]:
        n = max(1, self.samples)
        out = [f"  all threads, {self.samples} busy-thread samples (% of samples):",
               "  by cumulative:"]
        out += [f"    {100 * c / n:5.1f}% {name}" for name, c in self.cumulative.most_common(top)]
        out.append("  by own (top of stack):")
        out += [f"    {100 * c / n:5.1f}% {name}" for name, c in self.own.most_common(top)]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--scale", type=int, default=200_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    from wallet_elt.pipelines.pipeline import FILE_FORMATS, arrow_with_dlt_ids
    from wallet_elt.sources.wallet import wallet_source

    arrow_with_dlt_ids()  # as `wallet-elt` runs do: pages go as Arrow tables

    report: list[str] = []
    with sandbox_process(args.scale) as server, temp_dir("prof") as tmp:
        pipeline = duckdb_pipeline(tmp)
        source = wallet_source(**server.source_args(SUBSET))
        phases: list[tuple[str, Any]] = [
            ("extract", lambda: pipeline.extract(source,
                                                 loader_file_format=FILE_FORMATS["duckdb"])),
            ("normalize", pipeline.normalize),
            ("load", pipeline.load),
        ]
        for name, step in phases:
            profile = cProfile.Profile()
            sampler = ThreadSampler() if name in ("extract", "load") else None
            started = time.perf_counter()
            if sampler:
                sampler.__enter__()
            profile.enable()
            step()
            profile.disable()
            if sampler:
                sampler.__exit__(None, None, None)
            seconds = time.perf_counter() - started
            report.append(f"{name}: {seconds:.2f} s (under cProfile)")
            report += watched(profile, seconds)
            report += top_lines(profile, args.top, seconds)
            if sampler:
                report += sampler.lines(args.top)
        rows = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace \
            and pipeline.last_trace.last_normalize_info else {}
        report.insert(0, f"scale: {args.scale}; rows: "
                         f"{sum(n for t, n in rows.items() if not t.startswith('_dlt'))}")
    print("\n".join(report))


if __name__ == "__main__":
    main()
