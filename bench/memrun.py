"""One full connector load in a process of its own; prints a JSON line with its peak RSS
(VmHWM, see bench.common.peak_rss_mb).

    python -m bench.memrun BASE_URL API_KEY START_DATE RESOURCE [RESOURCE ...]
"""

from __future__ import annotations

import sys
import time

import orjson

from bench.common import duckdb_pipeline, peak_rss_mb, temp_dir


def main() -> None:
    base_url, api_key, start_date, *resources = sys.argv[1:]
    from pipelines.pipeline import run

    with temp_dir("mem") as tmp:
        started = time.perf_counter()
        summary = run(duckdb_pipeline(tmp), api_key=api_key, base_url=base_url,
                      start_date=start_date, resources=resources)
        seconds = time.perf_counter() - started
    sys.stdout.write(orjson.dumps({"peak_rss_mb": peak_rss_mb(),
                                   "rows": sum(summary.rows.values()),
                                   "requests": summary.requests,
                                   "seconds": seconds}).decode() + "\n")


if __name__ == "__main__":
    main()
