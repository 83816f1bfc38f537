"""One full connector load in a process of its own; prints a JSON line with its peak RSS
(VmHWM, see bench.common.peak_rss_mb). With --incremental, the sandbox then advances 1% of
the subset's records and the same pipeline runs again (its seconds and requests are added).

    python -m bench.memrun [--incremental] BASE_URL API_KEY START_DATE RESOURCE [RESOURCE ...]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson

from bench.common import (SUBSET_ENTITIES, advance_subset, duckdb_pipeline, peak_rss_mb,
                          temp_dir)


def main() -> None:
    args = sys.argv[1:]
    incremental = args[0] == "--incremental"
    base_url, api_key, start_date, *resources = args[1:] if incremental else args
    from wallet_elt.pipelines.pipeline import run

    source_args: dict[str, Any] = {"api_key": api_key, "base_url": base_url,
                                   "start_date": start_date, "resources": resources}
    with temp_dir("mem") as tmp:
        pipeline = duckdb_pipeline(tmp)
        started = time.perf_counter()
        summary = run(pipeline, **source_args)
        result = {"rows": sum(summary.rows.values()), "requests": summary.requests,
                  "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}
        if incremental:
            advance_subset(base_url, SUBSET_ENTITIES, 0.01)
            again = run(pipeline, **source_args)
            result.update(incremental_rows=sum(again.rows.values()),
                          incremental_requests=again.requests,
                          incremental_seconds=again.seconds)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
