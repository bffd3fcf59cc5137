"""schemathesis against the OpenAPI document of /api/v1, in-process (ASGI), on SQLite and
PostgreSQL: every operation, with valid and invalid input, answers only what the document
says (statuses, content types, bodies), never a server error."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from api.keys import SCOPES
from tests.support.api import new_key
from tests.support.app import app_for
from tests.support.cli import CLI
from tests.support.delivery import import_people

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = 12  # per operation and mode: the whole run stays well under a minute
# Not asserted: that every schema-valid body is accepted. JSON Schema cannot say everything the
# API checks (a deliverable address, an IANA zone name, consent to keep the symptoms sent), so
# such bodies are refused with a 422 problem, which the other checks hold to the document.
SKIPPED = [positive_data_acceptance]


def api_document(app: Any) -> dict[str, Any]:
    """The app's OpenAPI document, cut to /api/v1 (the rest is the signup form and pages)."""
    doc: dict[str, Any] = app.openapi()
    doc["paths"] = {p: v for p, v in doc["paths"].items() if p.startswith("/api/v1/")}
    return doc


@pytest.mark.slow
def test_every_operation_keeps_to_the_document(cli: CLI, tmp_path: Path) -> None:
    cli.env("CLINICMAIL_API_RATE_LIMIT", "100000")
    import_people(cli, tmp_path, ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    key = new_key(cli, "everything", *SCOPES)
    with app_for(cli) as (client, _ctx):
        doc = api_document(client.app)
        assert len(doc["paths"]) >= 8
        schema = schemathesis.openapi.from_dict(doc)
        schema.app = client.app
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # every operation of the document loads
            operations.append(result.ok())
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    case.call_and_validate(
                        headers={"Authorization": f"Bearer {key}"}, excluded_checks=SKIPPED
                    )

                check()
