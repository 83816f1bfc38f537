"""Every command the README shows, run the way a user types it: through the `wallet-elt`
console script, in a project folder of its own, against a sandbox started by the README's own
`wallet-elt sandbox --port P` on an explicit free port. Then the configuration mistakes a user
makes, each ending with one line that names the setting (exit 2, no traceback).

The README's bash blocks are parsed: a command added to them without a test here fails
`test_every_readme_command_is_run_here`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pendulum
import pytest

from wallet_elt.pipelines.cli import main
from wallet_elt.sandbox.server import DEFAULT_API_KEY
from wallet_elt.sources.wallet.catalog import ENTRIES
from tests.test_destinations import postgres_credentials  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[1]
README_PORT = "8765"
# Small and cheap: the README's commands with the world, the history and the resources they
# read cut down through documented settings (environment variables in dlt's convention). One
# resource per strategy, a child among them: a full catalog costs ~30 s of dlt's per-table
# normalize and load work per run here; tests/conftest.py's full_load covers every resource.
SCALE = "300"
SUBSET = ["countries", "members", "member_counts", "phone_numbers",
          "phone_number_outbound_sms_pages", "ledger_transactions",
          "analytics_membership_member_count", "analytics_campaigns_count_employee"]
CHEAP = {"SOURCES__WALLET__START_DATE": pendulum.now("UTC").subtract(days=40).to_iso8601_string(),
         "SOURCES__WALLET__SERIES_BACKFILL_DAYS": "7", "SOURCES__WALLET__SERIES_WINDOW_DAYS": "7",
         "SOURCES__WALLET__RESOURCES": json.dumps(SUBSET)}

# README command (continuation lines joined, comment dropped) -> the shell line run here.
# {port} is the sandbox's free port; {scale} the small world.
RUN_AS = {
    "python3 -m pip install -e \".[sandbox]\" && wallet-elt demo":
        "wallet-elt demo --scale {scale}",
    "cp .dlt/example.secrets.toml .dlt/secrets.toml": "cp .dlt/example.secrets.toml "
                                                     ".dlt/secrets.toml",
    "wallet-elt run": "wallet-elt run",
    "wallet-elt run --resources members,phone_numbers":
        "wallet-elt run --resources members,phone_numbers",
    "wallet-elt run --start-date 2025-01-01 --end-date 2025-02-01":
        "wallet-elt run --start-date 2025-01-01 --end-date 2025-02-01",
    "wallet-elt resources [--json]": "wallet-elt resources && wallet-elt resources --json",
    "wallet-elt run --full-refresh --resources members":
        "wallet-elt run --full-refresh --resources members",
    "wallet-elt run --pipeline-name shop_two": "wallet-elt run --pipeline-name shop_two",
    "wallet-elt check [--json]":
        "export SOURCES__WALLET__BASE_URL=http://127.0.0.1:{port} "
        "WALLET_API_KEY=sandbox-key-0123456789 && wallet-elt check --resources {check} && "
        "wallet-elt check --json --resources {check}",
    "wallet-elt run --destination postgres --dataset-name wallet":
        "wallet-elt run --destination postgres --dataset-name {dataset}",
    "wallet-elt sandbox --port 8765 --scale 100000 --seed 1 [--api-key KEY] [--latency-ms 100] "
    "[--rate-limit 20] [--faults \"503,route=GET /v2/payment/*,p=0.1\"] "
    "[--removed \"/v2/dashboard/*\"] [--removed-status 410]":
        "exec wallet-elt sandbox --port {port} --scale {scale} --seed 1",
    "SOURCES__WALLET__BASE_URL=http://127.0.0.1:8765 WALLET_API_KEY=sandbox-key-0123456789 "
    "wallet-elt run":
        "SOURCES__WALLET__BASE_URL=http://127.0.0.1:{port} "
        "WALLET_API_KEY=sandbox-key-0123456789 wallet-elt run",
}
NOT_RUN = {
    "python3 -m pip install -e \".[dev]\" && python3 -m pytest":
        "installs the package and runs this suite, which includes this module",
    "export WALLET_API_KEY=...": "the key comes from .dlt/secrets.toml here; the sandbox "
                                 "command line passes it in the environment",
    "export DESTINATION__POSTGRES__CREDENTIALS=postgresql://loader:secret@db.example.com:5432/"
    "analytics": "the local test server's URL is exported instead",
    "export DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID=my-project": "needs BigQuery",
    "export DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL=loader@my-project.iam."
    "gserviceaccount.com": "needs BigQuery",
    "export DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY=\"$(cat key.pem)\"": "needs BigQuery",
    "wallet-elt run --destination bigquery --dataset-name wallet":
        "needs BigQuery: tests/test_bigquery.py loads the same pipeline into the emulator; "
        "missing credentials are a case of test_configuration_mistakes_end_in_one_line",
}


def readme_commands() -> list[str]:
    """The commands of the README's bash blocks, as a user would type them."""
    text = (ROOT / "README.md").read_text()
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


def test_every_readme_command_is_run_here() -> None:
    commands = readme_commands()
    assert commands, "no bash blocks found in the README"
    missing = [command for command in commands if command not in RUN_AS | NOT_RUN]
    assert not missing, f"README commands without a test here: {missing}"


@dataclass
class Project:
    """A user's folder: the repository's .dlt/ settings, a sandbox and the console script."""

    folder: Path
    port: int
    env: dict[str, str]

    def shell(self, readme_command: str, env: dict[str, str] | None = None, **extra: str
              ) -> subprocess.CompletedProcess[str]:
        line = RUN_AS[readme_command].format(port=self.port, scale=SCALE, **extra)
        result = subprocess.run(["bash", "-c", line], cwd=self.folder,
                                env={**self.env, **(env or {})}, capture_output=True,
                                text=True, timeout=180, check=False)
        assert "Traceback" not in result.stderr, result.stderr
        return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    if shutil.which("wallet-elt") is None:
        pytest.fail("the wallet-elt console script is not installed (pip install -e .)")
    folder = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / ".dlt", folder / ".dlt")
    # The console script imports this checkout's code (CI installs it; a worktree does not).
    env = {**os.environ, "PYTHONPATH": str(ROOT), **CHEAP,
           "DLT_DATA_DIR": str(folder / "dlt-home")}
    env.pop("WALLET_API_KEY", None)
    env.pop("SOURCES__WALLET__API_KEY", None)
    box = Project(folder, _free_port(), env)
    server = subprocess.Popen(["bash", "-c", RUN_AS[SANDBOX].format(port=box.port, scale=SCALE)],
                              cwd=folder, env=env, stdout=subprocess.PIPE, text=True)
    try:
        _wait_for_sandbox(box.port, server)
        yield box
    finally:
        server.terminate()
        server.wait(timeout=30)


SANDBOX = next(command for command in RUN_AS if command.startswith("wallet-elt sandbox"))


def _wait_for_sandbox(port: int, server: subprocess.Popen[str]) -> None:
    """The README's sandbox command serves on the port it was given (it used to crash)."""
    for _ in range(600):
        assert server.poll() is None, f"wallet-elt sandbox exited with {server.returncode}"
        try:
            stats = httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=1)
            if stats.status_code == 200:
                assert stats.json()["requests"] == 0
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("the sandbox never answered")


def test_sandbox_command_serves_the_api_on_its_port(project: Project) -> None:
    members = httpx.get(f"http://127.0.0.1:{project.port}/v2/membership/member/count",
                        headers={"access-token": DEFAULT_API_KEY})
    assert members.status_code == 200, members.text


def test_resources_and_json(project: Project) -> None:
    result = project.shell("wallet-elt resources [--json]")
    assert result.returncode == 0, result.stderr
    text, _, listing = result.stdout.partition("[\n")
    assert len(text.splitlines()) == len(ENTRIES)
    assert [item["name"] for item in json.loads("[\n" + listing)] == [e.name for e in ENTRIES]


def test_check_against_the_sandbox(project: Project) -> None:
    result = project.shell("wallet-elt check [--json]", check="members,phone_numbers")
    assert result.returncode == 0, result.stderr
    table, _, listing = result.stdout.partition("{\n")
    assert table.splitlines()[-1].startswith("the key works at http://127.0.0.1:")
    assert "2 routes: 2 served;" in table
    verdicts = {probe["resource"]: probe["verdict"] for probe in
                json.loads("{\n" + listing)["routes"]}
    assert verdicts == {"members": "served", "phone_numbers": "served"}


def test_run_against_the_sandbox_then_dlt_cli(project: Project) -> None:
    command = next(c for c in RUN_AS if c.startswith("SOURCES__WALLET__BASE_URL"))
    result = project.shell(command)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert re.search(r"^\d+ rows in \d+ tables", result.stdout, re.MULTILINE)
    database = project.folder / "wallet.duckdb"
    assert f"Data is in duckdb ({database}), dataset wallet_data" in result.stdout
    try_line = next(line for line in result.stdout.splitlines() if line.startswith("Try: "))
    tried = subprocess.run(["bash", "-c", try_line.removeprefix("Try: ")],
                           cwd=project.folder, env=project.env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert tried.returncode == 0 and "count_star()" in tried.stdout, tried.stderr
    for dlt_command in ("info", "trace", "schema"):  # "dlt pipeline wallet info", ...
        dlt_cli = subprocess.run(["dlt", "pipeline", "wallet", dlt_command],
                                 cwd=project.folder, env=project.env, capture_output=True,
                                 text=True, timeout=120, check=False)
        assert dlt_cli.returncode == 0 and "members" in dlt_cli.stdout, dlt_cli.stderr


def test_key_from_secrets_toml_run_subset_and_bounded_backfill(project: Project) -> None:
    copied = project.shell("cp .dlt/example.secrets.toml .dlt/secrets.toml")
    assert copied.returncode == 0, copied.stderr
    secrets = project.folder / ".dlt" / "secrets.toml"
    # "put your API key in it"
    secrets.write_text(secrets.read_text().replace(
        "your Wallet API key (header access-token)", DEFAULT_API_KEY))
    project.env["SOURCES__WALLET__BASE_URL"] = f"http://127.0.0.1:{project.port}"
    assert "WALLET_API_KEY" not in project.env  # the key can only come from secrets.toml
    everything = project.shell("wallet-elt run")
    assert everything.returncode == 0, everything.stdout[-2000:] + everything.stderr
    # A rerun: the count series gains its row, the lists found nothing new.
    assert re.search(r"^member_counts: 1 rows$", everything.stdout, re.MULTILINE)
    subset = project.shell("wallet-elt run --resources members,phone_numbers")
    # Incremental after the full run: their two lists are read again, nothing else (members
    # is a bare list: a first page shorter than asked is followed by one more request, which
    # tells the end of the list from a server that caps its pages).
    assert subset.returncode == 0, subset.stderr
    assert re.search(r"^0 rows .*; 3 requests \(0 retried\)", subset.stdout,
                     re.MULTILINE), subset.stdout
    bounded = project.shell("wallet-elt run --start-date 2025-01-01 --end-date 2025-02-01")
    assert bounded.returncode == 0, bounded.stderr
    with duckdb.connect(str(project.folder / "wallet.duckdb"), read_only=True) as con:
        window = con.execute("SELECT min(created_at), max(created_at) FROM "
                             "wallet_data.ledger_transactions WHERE created_at < "
                             "'2025-03-01'").fetchone()
    assert window and window[0] is not None and window[0].year == 2025, window


def test_full_refresh_and_a_second_pipeline(project: Project) -> None:
    sandbox_env = {"SOURCES__WALLET__BASE_URL": f"http://127.0.0.1:{project.port}",
                   "WALLET_API_KEY": DEFAULT_API_KEY}
    assert project.shell("wallet-elt run --resources members,phone_numbers",
                         env=sandbox_env).returncode == 0
    database = str(project.folder / "wallet.duckdb")
    with duckdb.connect(database) as con:
        loaded = con.execute("SELECT count(*) FROM wallet_data.members").fetchone()
        con.execute("DELETE FROM wallet_data.members WHERE id IN "
                    "(SELECT id FROM wallet_data.members LIMIT 10)")
    refresh = project.shell("wallet-elt run --full-refresh --resources members", env=sandbox_env)
    assert refresh.returncode == 0, refresh.stderr
    assert "full refresh" in refresh.stdout
    with duckdb.connect(database, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wallet_data.members").fetchone() == loaded
    second = project.shell("wallet-elt run --pipeline-name shop_two", env=sandbox_env)
    assert second.returncode == 0, second.stderr
    assert "pipeline 'shop_two'" in second.stdout
    assert list(project.folder.glob("dlt-home/**/shop_two/state.json")), "no state of its own"


def test_run_into_postgres(project: Project, postgres_credentials: str) -> None:  # noqa: F811
    dataset = f"wallet_readme_{os.getpid()}"
    env = {"DESTINATION__POSTGRES__CREDENTIALS": postgres_credentials,
           "SOURCES__WALLET__BASE_URL": f"http://127.0.0.1:{project.port}",
           "WALLET_API_KEY": DEFAULT_API_KEY}
    try:
        result = project.shell("wallet-elt run --destination postgres --dataset-name wallet",
                               env=env, dataset=dataset)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        assert f"Data is in postgres, dataset {dataset}" in result.stdout
        assert f"Try: SELECT count(*) FROM {dataset}.members;" in result.stdout
    finally:
        import psycopg2

        with psycopg2.connect(postgres_credentials) as con, con.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
            cur.execute(f"DROP SCHEMA IF EXISTS {dataset}_staging CASCADE")


def test_demo(project: Project) -> None:
    result = project.shell("python3 -m pip install -e \".[sandbox]\" && wallet-elt demo")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "An example query" in result.stdout
    assert (project.folder / "wallet_demo.duckdb").exists()


# setting, command line, environment, words the one line must contain
MISTAKES = [
    ("resources", ["--resources", "members,nope"], {}, ["unknown resources: nope",
                                                        "--resources"]),
    ("start date", ["--start-date", "nope"], {}, ["--start-date 'nope' is not a date",
                                                  "YYYY-MM-DD"]),
    ("empty span", ["--start-date", "2025-02-01", "--end-date", "2025-01-01"], {},
     ["--end-date 2025-01-01 is not after --start-date 2025-02-01"]),
    ("configured start date", [], {"SOURCES__WALLET__START_DATE": "yesterday"},
     ["sources.wallet.start_date 'yesterday' is not a date"]),
    ("page size", [], {"SOURCES__WALLET__PAGE_SIZE": "lots"},
     ["the setting page_size cannot be read as int"]),
    ("a choice it does not know", [], {"SOURCES__WALLET__SCHEMA_CONTRACT": "strict"},
     ["the setting schema_contract must be one of 'evolve', 'freeze'"]),
    ("a setting the source rejects", [], {"SOURCES__WALLET__PAGE_SIZE": "0"},
     ["invalid setting", "page_size", "SOURCES__WALLET__"]),
    ("destination", ["--destination", "snowflake"], {},
     ["unknown destination 'snowflake'", "duckdb, postgres, bigquery"]),
    ("api key", [], {"WALLET_API_KEY": ""}, ["no Wallet API key", "WALLET_API_KEY"]),
    ("postgres password", ["--destination", "postgres"],
     {"DESTINATION__POSTGRES__CREDENTIALS": "postgresql://loader@127.0.0.1:5432/test"},
     ["postgres destination's credentials are incomplete (missing password)",
      "DESTINATION__POSTGRES__CREDENTIALS"]),
    ("postgres down", ["--destination", "postgres"],
     {"DESTINATION__POSTGRES__CREDENTIALS": "postgresql://loader:hunter22@127.0.0.1:{closed}/x"},
     ["Connection refused", "(at dlt's sync step)"]),
    ("bigquery credentials", ["--destination", "bigquery"], {},
     ["bigquery destination's credentials are incomplete", "project_id",
      "GOOGLE_APPLICATION_CREDENTIALS"]),
    ("unwritable folder", ["--pipelines-dir", "{file}/pipelines"], {},
     ["Not a directory", "check that this path can be written"]),
    ("pipeline name", ["--pipeline-name", "../other"], {}, ["pipeline name '../other'"]),
    ("base url", [], {"SOURCES__WALLET__BASE_URL": "http://127.0.0.1:{closed}"},
     ["cannot reach the Wallet API at http://127.0.0.1:", "SOURCES__WALLET__BASE_URL"]),
]


@pytest.mark.parametrize(("setting", "argv", "env", "words"), MISTAKES,
                         ids=[case[0] for case in MISTAKES])
def test_configuration_mistakes_end_in_one_line(setting: str, argv: list[str],
                                                env: dict[str, str], words: list[str],
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """In this process (the start-up of 13 more subprocesses would cost a minute); `main`
    is what the console script calls, and a traceback here would be an exception."""
    (tmp_path / "a-file").write_text("")
    closed = str(_free_port())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOURCES__WALLET__API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    defaults = {"WALLET_API_KEY": "a-key-that-is-never-sent",
                "SOURCES__WALLET__BASE_URL": f"http://127.0.0.1:{closed}"}
    for name, value in {**defaults, **env}.items():
        monkeypatch.setenv(name, value.format(closed=closed))
    args = [arg.format(file=tmp_path / "a-file") for arg in argv]
    code = main(["run", *args] if "--pipelines-dir" in argv else
                ["run", "--pipelines-dir", str(tmp_path / "pipelines"), *args])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, out + err
    assert len(lines) == 1 and lines[0].startswith("wallet-elt: "), err
    for word in words:
        assert word in lines[0], lines[0]
    assert "hunter22" not in out + err and "a-key-that-is-never-sent" not in out + err


def test_a_mistake_in_a_subprocess_prints_no_traceback(project: Project) -> None:
    result = subprocess.run(["wallet-elt", "run", "--start-date", "nope"], cwd=project.folder,
                            env=project.env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(
        "wallet-elt: --start-date 'nope' is not a date: write it as YYYY-MM-DD or an ISO 8601 "
        "timestamp such as 2025-01-01T00:00:00Z")]


def test_resources_json_into_a_closed_pipe(project: Project) -> None:
    result = subprocess.run(["bash", "-o", "pipefail", "-c",
                             "wallet-elt resources --json | head -1"], cwd=project.folder,
                            env=project.env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.stdout == "[\n"
    assert "BrokenPipeError" not in result.stderr and result.returncode == 0, result.stderr
