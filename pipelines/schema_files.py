"""Files generated from the catalog, each kept in sync by a test: the pinned schema (every
table's declared columns, in dlt's schema format), the data dictionary (every column with the
reference's description, each table's family, grain, key and strategy), the diagram of the
canonical tables, and the README's resource table and route count.

The pinned schema is the reviewable contract, not a dlt import schema: the same column hints
travel with each resource, so a run only carries the tables it loads. (Importing all 251
tables into every run made a two-resource run ten times slower: 1.2 s -> 12 s.)"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from dlt.common.schema import Schema
from dlt.common.schema.utils import to_pretty_yaml

from wallet_elt.sources.wallet import wallet_source
from wallet_elt.sources.wallet.catalog import (
    ENTRIES,
    EXCLUDED,
    Entry,
    Strategy,
    canonical_table,
    canonical_tables,
    entries_by_name,
    singular,
    snake,
)
from wallet_elt.sources.wallet.columns import column_name
from wallet_elt.sources.wallet.sensitive import PERSONAL_FIELDS, SECRET_FIELDS

# The repository these files live in (they are not installed, except a copy of the pinned
# schema as package data): pipelines/ is one of its top-level folders.
ROOT = Path(__file__).resolve().parents[1]
PINNED_SCHEMA = ROOT / "schemas" / "wallet.schema.yaml"
DICTIONARY = ROOT / "docs" / "tables.md"
README = ROOT / "README.md"
README_TABLE = re.compile(r"(<!-- resources:start -->\n)(.*?)(<!-- resources:end -->)", re.S)
ROUTE_COUNT = re.compile(r"\d+ read routes \(plus \d+ documented exclusions\)")
ERD = ROOT / "docs" / "erd.md"


@functools.cache
def catalog_schema() -> Schema:
    """The schema every catalog resource declares, before any data is seen."""
    # Building the source makes no request; the key and URL only satisfy its signature.
    source = wallet_source(api_key="schema-only", base_url="http://127.0.0.1:9")
    return source.discover_schema()


def pinned_schema_text() -> str:
    """The declared tables only: no processing hints (it has seen no data), and no normalizer
    state, which dlt fills in as it extracts in the same process."""
    stored = catalog_schema().to_dict(remove_defaults=True, remove_processing_hints=True)
    stored["normalizers"]["json"].pop("config", None)
    stored.pop("version_hash")
    stored.pop("previous_hashes", None)
    return to_pretty_yaml(stored)


def reference_descriptions(entry: Entry) -> dict[str, str]:
    """Column -> the reference's description of the record field it loads (where it has one)."""
    naming = catalog_schema().naming
    return {naming.normalize_identifier(name): " ".join(text.split())
            for name, field in entry.record_fields.items()
            if isinstance(field, dict) and (text := field.get("description"))}


def grain(entry: Entry) -> str:
    """What one row of the table is."""
    parent = f" per {singular(entry.parent)}" if entry.parent else ""
    strategy = entry.strategy
    if strategy is Strategy.DAILY:
        return f"one row per day{parent}"
    if strategy is Strategy.PER_WINDOW:
        by = f" and {snake(entry.dimension)}" if entry.dimension else ""
        return f"one row per calendar window{parent}{by}"
    if strategy is Strategy.COUNT:
        return f"one row per run{parent}"
    if not entry.primary_key:
        return f"the latest answer{parent}, replaced each run"
    return f"one row per `{entry.family}` record{parent} (`{', '.join(entry.primary_key)}`)"


def _role(entry: Entry) -> str:
    if entry.family is None:
        return f"aggregate of {entry.entity}"
    if entry.canonical:
        return f"**canonical** table of `{entry.family}`"
    return f"beside `{canonical_table(entry.family)}` (canonical `{entry.family}`): {entry.adds}"


def _column_rows(entry: Entry) -> tuple[list[str], int, int]:
    """The table's column rows (pinned columns, then record fields dlt types as it loads them),
    how many there are and how many have no description."""
    described = reference_descriptions(entry)
    naming = catalog_schema().naming
    pinned = catalog_schema().get_table_columns(entry.name)
    names = [*pinned, *(naming.normalize_identifier(f) for f in entry.record_fields)]
    personal = {column_name(field) for field in entry.record_fields if field in PERSONAL_FIELDS}
    rows, blank = [], 0
    for name in dict.fromkeys(names):
        if name.startswith("_dlt"):
            continue
        column = pinned.get(name, {})
        data_type = column.get("data_type", "inferred")
        if data_type == "decimal":
            data_type = f"decimal({column.get('precision')},{column.get('scale')})"
        text = described.get(name) or column.get("description") or ""
        blank += not text
        if name in personal:
            text = f"**personal** (follows `pii_policy`). {text}".rstrip()
        reference = entry.foreign_keys.get(name)
        note = f"→ `{reference}`" if reference else ""
        rows.append(f"| `{name}` | {data_type} | {note} | {text.replace('|', '/')} |")
    return rows, len(rows), blank


def dictionary_text() -> str:
    sections, columns, blank = [], 0, 0
    for entry in ENTRIES:
        item = entry.describe()
        rows, count, missing = _column_rows(entry)
        columns, blank = columns + count, blank + missing
        sections += [f"## {entry.name}", "",
                     f"- {_role(entry)}; grain: {grain(entry)}",
                     f"- route: `{entry.route}`",
                     f"- strategy: `{item['strategy']}`; cursor: `{item['cursor'] or '-'}`; "
                     f"window parameters: `{', '.join(item['window_params']) or '-'}`",
                     f"- primary key: `{', '.join(entry.primary_key) or '-'}`; disposition: "
                     f"`{entry.write_disposition}`"
                     + (f"; parent: `{entry.parent}` (key column `{entry.parent_key}`)"
                        if entry.parent else ""),
                     *_sensitive_lines(entry),
                     "", "| column | type | references | description |", "|---|---|---|---|",
                     *rows, ""]
    families = ["| record family | canonical table | route |", "|---|---|---|"]
    by_name = entries_by_name()
    for family, table in sorted(canonical_tables().items()):
        families.append(f"| {family} | [`{table}`](#{table}) | `{by_name[table].route}` |")
    head = ["# Data dictionary", "",
            "Generated from the catalog and the API reference by `wallet-elt schema --write`; a",
            "test keeps it in sync. Pinned columns come first with their types; then the",
            "record's other fields, which dlt types from the data (`inferred`; nested lists",
            "become child tables). Money and points are integer cents/points as the API carries",
            "them (`decimal(19,0)`), `*_decimal` twins are currency units (`decimal(19,2)`).",
            "Columns marked **personal** follow `pii_policy`; the fields a table lists as never",
            "loaded are secrets, dropped from every record.", "",
            f"Descriptions come from the reference; {blank} of {columns} columns have none there",
            "and are left blank. Foreign keys (`references`) are declared in the catalog; the",
            "diagram of the canonical tables is in [erd.md](erd.md).", "",
            "## Canonical table per record family", "",
            "Join on these. A route that only repeats a family's records is excluded (see",
            "`EXCLUDED` in `sources/wallet/catalog.py`); a table kept beside the canonical one",
            "says what it adds.", "", *families, ""]
    return "\n".join(head + sections)


def erd_text() -> str:
    """A Mermaid diagram of the canonical tables: their keys and the references between them."""
    schema, canonical = catalog_schema(), set(canonical_tables().values())
    lines = ["# Canonical tables", "",
             "Generated from the catalog's foreign keys by `wallet-elt schema --write`. Each box",
             "is the canonical table of a record family that has a key or a reference, with",
             "those columns (a line: parent `||--o{` child, labelled with the child's column);",
             "every column, and the keyless tables, are in [tables.md](tables.md).", "",
             "```mermaid", "erDiagram"]
    links = []
    for entry in ENTRIES:
        if entry.name not in canonical or not (entry.primary_key or entry.foreign_keys):
            continue
        columns = schema.get_table_columns(entry.name)
        lines.append(f"    {entry.name} {{")
        for name in entry.primary_key:
            lines.append(f"        {_type(columns, name)} {name} PK")
        for name, target in entry.foreign_keys.items():
            if name not in entry.primary_key:
                lines.append(f"        {_type(columns, name)} {name} FK")
            table = target.split(".")[0]
            if table in canonical:
                links.append(f'    {table} ||--o{{ {entry.name} : "{name}"')
        lines.append("    }")
    return "\n".join(lines + links + ["```", ""])


def _type(columns: dict[str, Any], name: str) -> str:
    # A key that is not pinned loads as the text the API sends (ids are strings).
    return str(columns.get(name, {}).get("data_type", "text"))


def _sensitive_lines(entry: Entry) -> list[str]:
    """The record's personal fields (pinned or not) and its secret fields, which never load
    (sources/wallet/sensitive.py)."""
    lines = []
    for label, fields in (("personal (follow `pii_policy`)", PERSONAL_FIELDS),
                          ("never loaded (secrets)", SECRET_FIELDS)):
        found = sorted(field for field in entry.record_fields if field in fields)
        if found:
            lines.append(f"- {label}: " + ", ".join(f"`{field}`" for field in found))
    return lines


def resource_table_text() -> str:
    rows = ["| resource | route | strategy | cursor | disposition | family |",
            "|---|---|---|---|---|---|"]
    for entry in ENTRIES:
        item = entry.describe()
        family = (f"{entry.family} (canonical)" if entry.canonical else entry.family) \
            if entry.family else "-"
        rows.append(f"| `{entry.name}` | `{entry.route}` | {item['strategy']} | "
                    f"{item['cursor'] or '-'} | {entry.write_disposition} | {family} |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str) -> str:
    if not README_TABLE.search(readme):
        raise ValueError("README.md has no <!-- resources:start/end --> markers")
    readme = README_TABLE.sub(lambda m: m.group(1) + resource_table_text() + m.group(3), readme)
    return ROUTE_COUNT.sub(f"{len(ENTRIES)} read routes (plus {len(EXCLUDED)} documented "
                           "exclusions)", readme)


def stale_files() -> list[Path]:
    """Generated files whose committed content differs from what the catalog gives."""
    return [path for path, text in _expected().items()
            if not path.exists() or path.read_text() != text]


def _expected() -> dict[Path, str]:
    return {PINNED_SCHEMA: pinned_schema_text(), DICTIONARY: dictionary_text(), ERD: erd_text(),
            README: readme_with_table(README.read_text())}


def write_all() -> list[Path]:
    written = []
    for path, text in _expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written
