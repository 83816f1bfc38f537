"""How fast the sandbox serves records over loopback HTTP (it must not be what a benchmark
of the connector measures). Prints `name: value` lines.

    python -m bench.sandbox_speed [--scale 200000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import time

import httpx
import orjson

from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import World


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    world = World(scale=args.scale)
    print(f"world_build_seconds: {time.perf_counter() - started:.2f}")
    print(f"world_records: {world.total_records()}")
    sandbox = Sandbox(world)
    sandbox.start()
    phones = world.entities["phone_numbers"]
    ids = [r["id"] for r in phones.records(phones.select())]
    records = 0
    started = time.perf_counter()
    with httpx.Client(base_url=sandbox.base_url,
                      headers={"access-token": sandbox.api_key}) as client:
        for phone in ids:
            page = 1
            while True:
                body = client.get(f"/v2/sms/outbound/page/{phone}",
                                  params={"pageNum": page, "pageSize": args.page_size}).content
                batch = orjson.loads(body)["results"]
                records += len(batch)
                if len(batch) < args.page_size:
                    break
                page += 1
    seconds = time.perf_counter() - started
    sandbox.stop()
    print(f"sandbox_records_served: {records}")
    print(f"sandbox_records_per_second: {records / seconds:.0f}")


if __name__ == "__main__":
    main()
