"""wallet-elt: the Wallet Inc API into a SQL warehouse with dlt.

Installed, the subpackages sit in this folder: `wallet_elt.sources`, `wallet_elt.pipelines`,
`wallet_elt.sandbox` and the vendored API reference `wallet_elt.schemas` (pyproject.toml maps
them). In the source repository they are its top-level folders `sources/`, `pipelines/`,
`sandbox/` and `schemas/`, which the project's layout keeps; there this package's search path
reaches them, so the same `wallet_elt....` imports work from a checkout (tests, `python -m`)
as from the wheel.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
if not (_HERE / "sources").is_dir():  # a source checkout, not an installed wheel
    __path__.append(str(_HERE.parent))
