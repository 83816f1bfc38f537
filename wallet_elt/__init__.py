"""wallet-elt: the Wallet Inc API into a SQL warehouse with dlt.

Installed, the subpackages sit in this folder: `wallet_elt.sources`, `wallet_elt.pipelines`,
`wallet_elt.sandbox`, and the vendored API reference `wallet_elt.schemas` (pyproject.toml maps
them). In the source repository they are its top-level folders `sources/`, `pipelines/`,
`sandbox/` and `schemas/`, which the project's layout keeps; the symbolic links beside this
file point at them, so the same `wallet_elt....` imports work in a checkout (tests, type
checks, `python -m`) as in the wheel.
"""
