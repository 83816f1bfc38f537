"""Files generated from the catalog, each kept in sync by a test: the pinned schema (every
table's declared columns, in dlt's schema format), the data dictionary, and the README's
resource table.

The pinned schema is the reviewable contract, not a dlt import schema: the same column hints
travel with each resource, so a run only carries the tables it loads. (Importing all 251
tables into every run made a two-resource run ten times slower: 1.2 s -> 12 s.)"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from dlt.common.schema import Schema
from dlt.common.schema.utils import to_pretty_yaml

from wallet_elt.sources.wallet import wallet_source
from wallet_elt.sources.wallet.catalog import ENTRIES, Entry
from wallet_elt.sources.wallet.columns import column_name
from wallet_elt.sources.wallet.sensitive import PERSONAL_FIELDS, SECRET_FIELDS

# The repository these files live in (they are not installed, except a copy of the pinned
# schema as package data): pipelines/ is one of its top-level folders.
ROOT = Path(__file__).resolve().parents[1]
PINNED_SCHEMA = ROOT / "schemas" / "wallet.schema.yaml"
DICTIONARY = ROOT / "docs" / "tables.md"
README = ROOT / "README.md"
README_TABLE = re.compile(r"(<!-- resources:start -->\n)(.*?)(<!-- resources:end -->)", re.S)


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


def dictionary_text() -> str:
    schema = catalog_schema()
    out = ["# Data dictionary", "",
           "Generated from the catalog by `wallet-elt schema --write`; a test keeps it in sync.",
           "Pinned columns are listed; other fields of a record load with the type dlt infers",
           "(see the exported schema for those). Money and points are integer cents/points",
           "as the API carries them (`decimal(19,0)`), `*_decimal` twins are currency units",
           "(`decimal(19,2)`). Columns marked **personal** follow `pii_policy`; the fields",
           "a table lists as never loaded are secrets, dropped from every record.", ""]
    for entry in ENTRIES:
        item = entry.describe()
        out += [f"## {entry.name}", "",
                f"- route: `{entry.route}`",
                f"- strategy: `{item['strategy']}`; cursor: `{item['cursor'] or '-'}`; "
                f"window parameters: `{', '.join(item['window_params']) or '-'}`",
                f"- primary key: `{', '.join(entry.primary_key) or '-'}`; disposition: "
                f"`{entry.write_disposition}`"
                + (f"; parent: `{entry.parent}` (key column `{entry.parent_key}`)"
                   if entry.parent else ""),
                *_sensitive_lines(entry),
                "", "| column | type | description |", "|---|---|---|"]
        personal = {column_name(field) for field in entry.record_fields
                    if field in PERSONAL_FIELDS}
        for name, column in schema.get_table_columns(entry.name).items():
            if name.startswith("_dlt"):
                continue
            data_type = column.get("data_type", "?")
            if data_type == "decimal":
                data_type = f"decimal({column.get('precision')},{column.get('scale')})"
            description = (column.get("description") or "").replace("|", "/").replace("\n", " ")
            if name in personal:
                description = f"**personal** (follows `pii_policy`). {description}".rstrip()
            out.append(f"| `{name}` | {data_type} | {description} |")
        out.append("")
    return "\n".join(out)


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
    rows = ["| resource | route | strategy | cursor | disposition |", "|---|---|---|---|---|"]
    for entry in ENTRIES:
        item = entry.describe()
        rows.append(f"| `{entry.name}` | `{entry.route}` | {item['strategy']} | "
                    f"{item['cursor'] or '-'} | {entry.write_disposition} |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str) -> str:
    if not README_TABLE.search(readme):
        raise ValueError("README.md has no <!-- resources:start/end --> markers")
    return README_TABLE.sub(lambda m: m.group(1) + resource_table_text() + m.group(3), readme)


def stale_files() -> list[Path]:
    """Generated files whose committed content differs from what the catalog gives."""
    expected = {PINNED_SCHEMA: pinned_schema_text(), DICTIONARY: dictionary_text(),
                README: readme_with_table(README.read_text())}
    return [path for path, text in expected.items()
            if not path.exists() or path.read_text() != text]


def write_all() -> list[Path]:
    written = []
    for path, text in ((PINNED_SCHEMA, pinned_schema_text()), (DICTIONARY, dictionary_text()),
                       (README, readme_with_table(README.read_text()))):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written
