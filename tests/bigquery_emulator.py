"""A local BigQuery emulator (bqemulator 1.4.0) for the BigQuery tests.

Two roles in one file, stdlib-only at import time:

* run as a script by the emulator's own venv (``build/bq-venv``, made by
  ``.ci/bigquery-emulator.sh``), it disables DuckDB's ``spatial`` extension (it cannot be
  downloaded here; we load no GEOGRAPHY) and hands its arguments to the emulator's CLI;
* imported by the tests, ``start_emulator()`` runs that script on free loopback ports and
  waits until the emulator answers ``/readyz``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
# Made by .ci/bigquery-emulator.sh; a relative override is relative to the project root.
VENV = ROOT / os.environ.get("WALLET_BQ_EMULATOR_VENV", "build/bq-venv")
PROJECT = "test-project"
START_TIMEOUT_S = 60.0


class EmulatorUnavailable(RuntimeError):
    """The emulator is not installed or did not come up."""


@dataclass
class Emulator:
    process: subprocess.Popen[bytes]
    rest_port: int
    grpc_port: int
    log: IO[bytes]
    startup_seconds: float = 0.0
    project: str = PROJECT
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log_tail(self, chars: int = 3000) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_emulator(timeout: float = START_TIMEOUT_S) -> Emulator:
    """Start the emulator on free ports; raises `EmulatorUnavailable` with the reason."""
    python = VENV / "bin" / "python"
    if not python.exists():
        raise EmulatorUnavailable(
            f"no emulator venv at {VENV} (run .ci/bigquery-emulator.sh to create it)")
    rest_port, grpc_port = _free_port(), _free_port()
    while grpc_port == rest_port:
        grpc_port = _free_port()
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed by Emulator.stop)
        prefix="bqemulator-", suffix=".log", delete=False)
    started = time.monotonic()
    process = subprocess.Popen(
        [str(python), str(Path(__file__).resolve()), "start", "--rest-port", str(rest_port),
         "--grpc-port", str(grpc_port), "--project", PROJECT, "--ephemeral",
         "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    emulator = Emulator(process, rest_port, grpc_port, log)
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            tail = emulator.log_tail()
            emulator.stop()
            raise EmulatorUnavailable(
                f"emulator exited with code {process.returncode} during start-up:\n{tail}")
        if _ready(emulator.url):
            emulator.startup_seconds = time.monotonic() - started
            return emulator
        time.sleep(0.1)
    tail = emulator.log_tail()
    emulator.stop()
    raise EmulatorUnavailable(f"emulator not ready after {timeout:.0f} s:\n{tail}")


def _serve() -> None:  # runs inside the emulator venv
    from bqemulator.cli import main
    from bqemulator.storage.engine import DuckDBEngine

    def _no_spatial(self: object) -> None:
        """DuckDB's spatial extension cannot be downloaded here; GEOGRAPHY stays unsupported."""

    DuckDBEngine._load_spatial = _no_spatial  # type: ignore[method-assign]

    # Never outlive the test session that started us (e.g. a killed pytest).
    parent = os.getppid()

    def _watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=_watch_parent, daemon=True).start()
    sys.argv[0] = "bqemulator"
    main()


if __name__ == "__main__":
    _serve()
