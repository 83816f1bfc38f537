"""What a failed `wallet-elt` command tells its user: one line with the cause and what to do,
and an exit code that says whose move it is.

Exit codes: 1 when the run started and something in it failed (rerun later), 2 when a setting,
a credential or the environment is wrong and nothing can load until it is fixed.
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Literal, get_args, get_origin
from collections.abc import Iterator
from pathlib import Path

from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationException,
    ConfigValueCannotBeCoercedException,
    LookupTraces,
)
from dlt.common.schema.exceptions import DataValidationError
from dlt.pipeline.exceptions import PipelineStepFailed

from wallet_elt.sources import wallet as wallet_package
from wallet_elt.sources.wallet.client import AuthRejected, BaseUrlWrong, WalletError

RUN_FAILED = 1
MISCONFIGURED = 2


class ConfigError(WalletError):
    """A setting is wrong; the message names it and says what to write instead."""


# Where each destination's credentials go, for a message that says what to set.
CREDENTIAL_HINTS = {
    "postgres": "set DESTINATION__POSTGRES__CREDENTIALS=postgresql://USER:PASSWORD@HOST:5432/"
                "DATABASE (or [destination.postgres.credentials] in .dlt/secrets.toml)",
    "bigquery": "set DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID, __CLIENT_EMAIL and "
                "__PRIVATE_KEY (or GOOGLE_APPLICATION_CREDENTIALS to a service-account file)",
}
SOURCE_HINTS = {
    "api_key": "no Wallet API key: set WALLET_API_KEY (or SOURCES__WALLET__API_KEY, or "
               "sources.wallet.api_key in .dlt/secrets.toml)",
    "base_url": "no Wallet API base URL: set sources.wallet.base_url in .dlt/config.toml "
                "(or SOURCES__WALLET__BASE_URL, or --base-url)",
}
# Environment variables whose values are secrets and must never be echoed back.
_SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|TOKEN|CREDENTIALS|SALT", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s]+@", re.IGNORECASE)
MAX_LINE = 400
SOURCE_DIR = Path(wallet_package.__file__).resolve().parent


def causes(err: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(err: BaseException) -> tuple[int, str] | None:
    """(exit code, one line) for a failure the operator can act on; None for anything else
    (a bug), which keeps its traceback."""
    chain = list(causes(err))
    for cause in chain:
        if isinstance(cause, (ConfigError, AuthRejected, BaseUrlWrong)):
            return MISCONFIGURED, redact(str(cause))
        if isinstance(cause, ConfigFieldMissingException):
            return MISCONFIGURED, _missing_setting(cause)  # names and hints: no values
        if isinstance(cause, ConfigValueCannotBeCoercedException):
            # The value is not echoed: it may be a secret.
            choices = get_args(cause.hint) if get_origin(cause.hint) is Literal else ()
            if choices:
                return MISCONFIGURED, (
                    f"the setting {cause.field_name} must be one of "
                    f"{', '.join(repr(choice) for choice in choices)}: fix it in "
                    ".dlt/config.toml or its environment variable")
            hint = getattr(cause.hint, "__name__", str(cause.hint))
            return MISCONFIGURED, (f"the setting {cause.field_name} cannot be read as {hint}: "
                                   "fix it in .dlt/config.toml or its environment variable")
    for cause in chain:
        if isinstance(cause, WalletError):
            return RUN_FAILED, redact(str(cause))
        if isinstance(cause, DataValidationError):
            # dlt names the table and column only here, deep in the chain it raises
            return RUN_FAILED, redact(
                f"the schema contract ({cause.schema_entity} = {cause.contract_mode}) stopped "
                f"the run: the API changed table {cause.table_name}, column "
                f"{cause.column_name}: update the pinned schema, or set schema_contract = "
                "\"evolve\" to load it")
    if isinstance(err, ValueError) and _raised_building_source(err):
        return MISCONFIGURED, redact(f"invalid setting: {_text(err)} (check the sources.wallet "
                                     "settings in .dlt/config.toml or SOURCES__WALLET__*)")
    step_failed = next((c for c in chain if isinstance(c, PipelineStepFailed)), None)
    if step_failed is None and not isinstance(err, (ConfigurationException, OSError)):
        return None
    # dlt's own message is a header ("failed at step=sync with exception:") and the cause's
    # text; the innermost cause with a message is what happened.
    inner = next((c for c in reversed(chain) if _text(c)), err)
    # Before extract (sync: restoring state, connecting) nothing ran: the destination or
    # its settings are wrong. Later steps failed in the middle of a run.
    code = MISCONFIGURED if step_failed is None or step_failed.step == "sync" else RUN_FAILED
    where = f" (at dlt's {step_failed.step} step)" if step_failed is not None else ""
    if isinstance(inner, OSError) and inner.filename:
        where += ": check that this path can be written (--pipelines-dir, or the working " \
                 "folder for the DuckDB file)"
    return code, redact(f"{type(inner).__name__}: {_text(inner)}{where}")


def _raised_building_source(err: ValueError) -> bool:
    """The source checks its arguments when it is built, outside dlt's steps (which wrap what
    they raise in PipelineStepFailed): a bare ValueError that passed through its code is a bad
    setting, not a bug of the run."""
    frames = traceback.extract_tb(err.__traceback__)
    return any(Path(frame.filename).resolve().is_relative_to(SOURCE_DIR) for frame in frames)


def _text(err: BaseException) -> str:
    if isinstance(err, PipelineStepFailed):
        return ""  # only a header around its cause
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return " ".join(str(err).split())


def _missing_setting(err: ConfigFieldMissingException) -> str:
    if err.spec_name.endswith("ClientConfiguration"):
        destination = err.spec_name.removesuffix("ClientConfiguration").lower()
        missing = sorted(_nested_fields(err))
        hint = CREDENTIAL_HINTS.get(
            destination, f"set destination.{destination}.credentials in .dlt/secrets.toml")
        return (f"the {destination} destination's credentials are incomplete (missing "
                f"{', '.join(missing) or 'credentials'}): {hint}")
    hints = [SOURCE_HINTS[name] for name in err.fields if name in SOURCE_HINTS]
    if hints:
        return "; ".join(hints)
    return (f"missing setting(s) {', '.join(err.fields)} of {err.spec_name}: put them in "
            ".dlt/config.toml (secrets in .dlt/secrets.toml) or the environment")


def _nested_fields(err: ConfigFieldMissingException) -> set[str]:
    names: set[str] = set()
    for field, traces in err.traces.items():
        nested = [trace for trace in traces if isinstance(trace, LookupTraces)]
        if not nested:
            names.add(field)
        for trace in nested[:1]:  # a union's first form: the one the hint describes
            names.update(trace.traces)
    return names


def redact(text: str) -> str:
    """One bounded line with passwords in URLs and secret environment values masked."""
    text = _URL_PASSWORD.sub(r"\1:***@", " ".join(text.split()))
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value) >= 6:
            text = text.replace(value, "***")
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 3] + "..."
