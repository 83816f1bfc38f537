"""`python -m tests.kill_switch TABLE.FORMAT <wallet-elt args>`: the `wallet-elt` CLI,
SIGKILLed right after the load job for TABLE in FORMAT (`parquet`: its rows, `sql`: the merge
that follows them) has written to the destination, before dlt marks the job done. That is the
window in which resuming the package runs a committed job again; a kill from outside lands in
it only by chance.

`python -m tests.kill_switch normalize.commit <wallet-elt args>`: SIGKILLed right after
normalize moved its package to the load folder, before it deleted the extracted copy (the
window dlt's log calls "Committing storage, do not kill this process")."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from dlt.common.destination.client import RunnableLoadJob
from dlt.common.storages import LoadStorage

from wallet_elt.pipelines.cli import main


def kill_after_job(table: str, file_format: str) -> None:
    release = RunnableLoadJob._release

    def _release(job: RunnableLoadJob, next_state: Any) -> None:
        info = job.job_file_info()
        if next_state == "completed" and (info.table_name, info.file_format) == (
                table, file_format):
            os.kill(os.getpid(), signal.SIGKILL)
        release(job, next_state)

    RunnableLoadJob._release = _release  # type: ignore[method-assign, assignment]


def kill_after_normalize_commit() -> None:
    commit = LoadStorage.commit_new_load_package

    def _commit(storage: LoadStorage, load_id: str) -> None:
        commit(storage, load_id)
        os.kill(os.getpid(), signal.SIGKILL)

    LoadStorage.commit_new_load_package = _commit  # type: ignore[method-assign]


if __name__ == "__main__":
    if sys.argv[1] == "normalize.commit":
        kill_after_normalize_commit()
    else:
        target, _, kind = sys.argv[1].rpartition(".")
        kill_after_job(target, kind)
    sys.exit(main(sys.argv[2:]))
