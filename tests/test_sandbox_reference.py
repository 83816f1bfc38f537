"""The sandbox stands on the API reference and its own world model: it imports nothing of the
connector, and its own reading of the reference finds every read route the connector's does."""

from __future__ import annotations

import ast
from pathlib import Path

from wallet_elt import sandbox
from wallet_elt.sandbox import causes, reference
from wallet_elt.sandbox.routes import build_routes
from wallet_elt.sources.wallet import spec

SANDBOX_DIR = Path(sandbox.__file__).resolve().parent


def imported_modules(path: Path, top_level: bool = True) -> set[str]:
    """Names of every module a source file imports (absolute imports), top-level packages
    only unless asked for the full dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {name.split(".")[0] for name in found} if top_level else found


def test_import_parser_sees_both_forms(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import sources.wallet.spec\nfrom sources.wallet import catalog\n"
                      "def f():\n    from sources import x\n")
    assert imported_modules(source) == {"sources"}
    assert imported_modules(source, top_level=False) == {"sources.wallet.spec",
                                                         "sources.wallet", "sources"}


def test_no_sandbox_module_imports_the_connector() -> None:
    modules = sorted(SANDBOX_DIR.glob("*.py"))
    assert len(modules) >= 5
    connector = ("sources", "pipelines", "wallet_elt.sources", "wallet_elt.pipelines")
    prefixes = tuple(f"{name}." for name in connector)
    offenders = {p.name: sorted(m for m in imported_modules(p, top_level=False)
                                if m in connector or m.startswith(prefixes))
                 for p in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_sandbox_reads_every_read_route_the_reference_lists() -> None:
    listed = {f"{row['method']} {row['path']}" for row in spec.endpoint_rows()
              if row["read_kind"] in reference.READ_KINDS}
    assert len(listed) == 303
    assert {op.key for op in reference.read_operations()} == listed
    assert {route.key for route in build_routes()} == listed


def test_the_sandbox_reads_parameters_as_the_reference_states_them() -> None:
    for op in reference.read_operations():
        theirs = spec.operation(op.key)
        assert op.query_params == theirs.query_params, op.key
        assert op.required_query_params == theirs.required_query_params, op.key
        assert op.path_params == theirs.path_params, op.key
        assert op.body_fields == theirs.body_fields, op.key
        assert op.page_params == theirs.page_params, op.key
        assert op.window_params == theirs.window_params, op.key
        assert op.envelope == theirs.envelope, op.key


def test_the_tests_truth_is_not_the_sandboxs_responder() -> None:
    """tests/truth.py computes expected rows from the world's records, not by calling the
    code that answers requests (a bug in it would then be in the truth too)."""
    truth = Path(__file__).with_name("truth.py")
    used = imported_modules(truth, top_level=False)
    responders = ("sandbox.routes", "sandbox.route_map")
    assert not {m for m in used if m.removeprefix("wallet_elt.") in responders}, used


def test_the_readme_lists_every_causal_rule() -> None:
    readme = (SANDBOX_DIR.parent / "README.md").read_text()
    missing = [rule.why for rule in causes.RULES if rule.why not in readme]
    assert not missing
