"""What gets installed: one `wallet_elt` package carrying the API reference and every default,
with the sandbox's dependencies in an extra. (.ci/wheel-smoke.sh installs the wheel in a clean
virtual environment and runs it; these tests check the same promises in seconds.)"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from wallet_elt.pipelines.cli import SANDBOX_REQUIRES
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import wallet_source

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Repository folder -> where it is installed.
INSTALLED_AS = {"sources": "wallet_elt/sources", "pipelines": "wallet_elt/pipelines",
                "sandbox": "wallet_elt/sandbox", "schemas": "wallet_elt/schemas"}
# Runs the CLI with numpy unimportable, as in an installation without the `sandbox` extra.
WITHOUT_NUMPY = ("import runpy, sys; sys.modules['numpy'] = None; sys.argv[0] = 'wallet-elt'; "
                 "runpy.run_module('wallet_elt.pipelines.cli', run_name='__main__')")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without any wallet setting, so only code defaults apply."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "WALLET_"))}
    return {**env, "PYTHONPATH": str(ROOT), "RUNTIME__DLTHUB_TELEMETRY": "false", **extra}


def test_config_toml_documents_the_defaults_of_the_code() -> None:
    """Every setting of .dlt/config.toml is the source's own default, so a run outside the
    repository (no .dlt folder) behaves the same as one inside it."""
    documented = tomllib.loads((ROOT / ".dlt" / "config.toml").read_text())["sources"]["wallet"]
    defaults = {name: param.default
                for name, param in inspect.signature(wallet_source).parameters.items()}
    assert documented, "config.toml documents the settings"
    for name, value in documented.items():
        assert defaults[name] == value, f"{name}: code {defaults[name]!r}, config {value!r}"


def test_source_builds_in_an_empty_folder_with_only_a_key(tmp_path: Path) -> None:
    code = (f"from {wallet_source.__module__} import wallet_source; "
            "print(len(wallet_source(api_key='k', resources=['members']).resources))")
    built = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env=_clean_env(DLT_DATA_DIR=str(tmp_path)))
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == "1"


@pytest.mark.parametrize("command", [["demo"], ["sandbox", "--port", "0"]],
                         ids=["demo", "sandbox"])
def test_sandbox_commands_without_the_extra_name_it(tmp_path: Path, command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_NUMPY, *command], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=_clean_env())
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "pip install 'wallet-elt[sandbox]'" in result.stderr
    assert not (tmp_path / "wallet_demo.duckdb").exists()


def test_loading_does_not_need_the_sandbox_extra(sandbox: Sandbox, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_NUMPY, "run", "--resources", "members",
         "--pipelines-dir", str(tmp_path / "pipelines")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=_clean_env(WALLET_API_KEY=sandbox.api_key, SOURCES__WALLET__BASE_URL=sandbox.base_url))
    assert result.returncode == 0, result.stderr
    assert f"members: {sandbox.world.entities['members'].count} rows" in result.stdout


def test_sandbox_requires_is_the_sandbox_extra() -> None:
    extra = PYPROJECT["project"]["optional-dependencies"]["sandbox"]
    assert [re.split(r"[\s<>=!~;\[]", req)[0] for req in extra] == list(SANDBOX_REQUIRES)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel built from a copy of the tree (setuptools' build/ folder in the checkout could
    hold files of modules that no longer exist)."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, work / "src", symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "__pycache__", "*.duckdb*", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(work / "dist"), str(work / "src")],
                   check=True, timeout=300, capture_output=True)
    (built,) = (work / "dist").glob("wallet_elt-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_installs_nothing_but_wallet_elt(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert {name for name in top if not name.endswith(".dist-info")} == {"wallet_elt"}
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "wallet-elt = wallet_elt.pipelines.cli:main" in wheel.read(entry_points).decode()


def test_wheel_carries_every_module_and_the_api_reference(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {f"{INSTALLED_AS[path.parts[0]]}/{'/'.join(path.parts[1:])}"
                for folder in ("sources", "pipelines", "sandbox")
                for path in (p.relative_to(ROOT) for p in (ROOT / folder).rglob("*.py"))}
    expected |= {"wallet_elt/__init__.py", "wallet_elt/schemas/wallet-api.openapi.json",
                 "wallet_elt/schemas/wallet-api.endpoints.tsv"}
    assert expected - names == set(), "listed in pyproject.toml [tool.setuptools] packages?"
