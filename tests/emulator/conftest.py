"""Shared fixtures: one emulator per session (reset before every test) and the official model."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import jsonschema
import pytest

from sp_reports.emulator.testing import RunningEmulator, running_emulator
from support import SPAPI_MODELS

# Test modules cannot import from conftest (importlib mode), so they repeat the constants they need.
REPORTS = "/reports/2021-06-30/reports"
DOCUMENTS = "/reports/2021-06-30/documents"
US = "ATVPDKIKX0DER"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"


MODEL_PATH = SPAPI_MODELS / "reports_2021-06-30.json"
NOTIFICATIONS_MODEL_PATH = MODEL_PATH.with_name("notifications.json")
TOKENS_MODEL_PATH = MODEL_PATH.with_name("tokens_2021-03-01.json")


class Model:
    """The official Reports 2021-06-30 model, used to check every emulator response."""

    def __init__(self, path: Path) -> None:
        self.raw = json.loads(path.read_text())
        self.operations: dict[str, dict[str, Any]] = {}
        for path_template, methods in self.raw["paths"].items():
            for method, operation in methods.items():
                if isinstance(operation, dict) and "operationId" in operation:
                    self.operations[operation["operationId"]] = {**operation, "path": path_template, "method": method}
        # Strict copy: undeclared properties (say, a 2020-09-04 style "payload" wrapper) must fail.
        self.definitions = copy.deepcopy(self.raw["definitions"])
        for definition in self.definitions.values():
            if definition.get("type") == "object" and "properties" in definition:
                definition["additionalProperties"] = False

    def schema(self, operation_id: str, status: int) -> dict[str, Any] | None:
        response = self.operations[operation_id]["responses"][str(status)]
        if "schema" not in response:
            return None
        return {**response["schema"], "definitions": self.definitions}

    def validate(self, operation_id: str, response: httpx.Response) -> Any:
        """Status is declared, body matches its schema, every declared header is present."""
        declared = self.operations[operation_id]["responses"]
        assert str(response.status_code) in declared, f"{operation_id} may not answer {response.status_code}"
        for header in declared[str(response.status_code)].get("headers", {}):
            assert header in response.headers, f"{operation_id} {response.status_code} lacks header {header}"
        schema = self.schema(operation_id, response.status_code)
        if schema is None:
            assert response.content == b"", f"{operation_id} {response.status_code} must have an empty body"
            return None
        body = response.json()
        jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(body)
        return body


@pytest.fixture(scope="session")
def model() -> Model:
    if not MODEL_PATH.is_file():
        pytest.fail(f"official model not found at {MODEL_PATH}")
    return Model(MODEL_PATH)


@pytest.fixture(scope="session")
def notifications_model() -> Model:
    """The official Notifications v1 model, checked the same way."""
    return Model(NOTIFICATIONS_MODEL_PATH)


@pytest.fixture(scope="session")
def tokens_model() -> Model:
    """The official Tokens 2021-03-01 model, checked the same way."""
    return Model(TOKENS_MODEL_PATH)


@pytest.fixture(scope="session")
def _session_emulator():
    with running_emulator() as emu:
        yield emu


@pytest.fixture
def emulator(_session_emulator: RunningEmulator) -> RunningEmulator:
    _session_emulator.reset(config=True)
    return _session_emulator


# Clients are shared across tests: building an httpx.Client (its SSL context) costs ~50 ms.
@pytest.fixture(scope="session")
def http():
    """A plain client, for URLs that need no SP-API headers (LWA, pre-signed document URLs)."""
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def _api_client(_session_emulator: RunningEmulator):
    with httpx.Client(base_url=_session_emulator.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def api(emulator: RunningEmulator, _api_client: httpx.Client) -> httpx.Client:
    """A client for SP-API calls that sends a valid access token."""
    _api_client.headers["x-amz-access-token"] = emulator.access_token()
    return _api_client


@pytest.fixture
def fast(emulator: RunningEmulator) -> RunningEmulator:
    """Quotas off and reports done in 0.1 s: for tests about something else."""
    emulator.config(enforce_quotas=False, processing_seconds=0.1)
    return emulator


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@pytest.fixture
def create_report(api: httpx.Client) -> Callable[..., str]:
    def create(report_type: str = ORDERS, marketplaces: list[str] | None = None, **fields: Any) -> str:
        body = {"reportType": report_type, "marketplaceIds": marketplaces or [US], **fields}
        response = api.post(REPORTS, json=body)
        assert response.status_code == 202, response.text
        return response.json()["reportId"]

    return create


@pytest.fixture
def finished_report(api: httpx.Client, create_report) -> Callable[..., dict[str, Any]]:
    """Create a report and poll getReport until it reaches a terminal status."""

    def finish(report_type: str = ORDERS, marketplaces: list[str] | None = None, **fields: Any) -> dict[str, Any]:
        report_id = create_report(report_type, marketplaces, **fields)

        def terminal():
            report = api.get(f"{REPORTS}/{report_id}").json()
            return report if report["processingStatus"] in ("DONE", "FATAL", "CANCELLED") else None

        return wait_for(terminal)

    return finish


@pytest.fixture
def download(api: httpx.Client, http: httpx.Client) -> Callable[[str], httpx.Response]:
    """getReportDocument, then GET the pre-signed URL without SP-API headers (as from S3)."""

    def fetch(document_id: str) -> httpx.Response:
        document = api.get(f"{DOCUMENTS}/{document_id}")
        assert document.status_code == 200, document.text
        return http.get(document.json()["url"])

    return fetch
