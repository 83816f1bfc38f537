"""One run of a pipeline at a time: a second run refuses instead of corrupting state.

An OS file lock (flock) is held for the whole run; the kernel drops it when the process
ends, however it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wallet_elt.sources.wallet.client import WalletError


class RunInProgress(WalletError):
    """Another process is running the same pipeline."""


@contextmanager
def exclusive_run(working_dir: str, pipeline_name: str) -> Iterator[None]:
    path = Path(working_dir).parent / f"{pipeline_name}.run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInProgress(
                f"another run of pipeline '{pipeline_name}' is in progress (pid {holder}); "
                "wait for it to finish: two runs at once would race on the same state") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
