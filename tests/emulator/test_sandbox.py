"""Replay the model's `x-amzn-api-sandbox` static examples against the emulator.

The examples' own ids ("ID323", "ReportId1") mean nothing to the emulator, so examples that only
work with them have only their response checked against the model; every other example must give the status the sandbox gives, and every
example response must itself match the model (which checks the validator).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from support import SPAPI_MODELS

# (operationId, status) pairs whose request only makes sense with the sandbox's invented ids.
SANDBOX_ID_EXAMPLES = {
    ("cancelReport", "200"),  # reportId "ID"
    ("cancelReport", "400"),  # no reportId at all: not a routable URL
    ("getReport", "200"),  # reportId "ID323"
    ("getReportSchedule", "200"),  # reportScheduleId "ID323"
    ("cancelReportSchedule", "200"),  # reportScheduleId "ID"
    ("cancelReportSchedule", "400"),  # no reportScheduleId
    ("getReportDocument", "200"),  # a document the emulator never made
}


def _model_path() -> Path:
    return SPAPI_MODELS / "reports_2021-06-30.json"


def _examples():
    model = json.loads(_model_path().read_text())
    for path, methods in model["paths"].items():
        for method, operation in methods.items():
            if not isinstance(operation, dict):
                continue
            for status, response in operation["responses"].items():
                for example in response.get("x-amzn-api-sandbox", {}).get("static", []):
                    yield pytest.param(
                        operation["operationId"], path, method, operation["parameters"], status, example,
                        id=f"{operation['operationId']}-{status}",
                    )  # fmt: skip


EXAMPLES = list(_examples())


def test_model_has_sandbox_examples():
    assert len(EXAMPLES) == 18


@pytest.mark.parametrize("operation_id, path, method, parameters, status, example", EXAMPLES)
def test_sandbox_example(fast, api, model, operation_id, path, method, parameters, status, example):
    if "response" in example:
        schema = model.schema(operation_id, int(status))
        jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(example["response"])
    if (operation_id, status) in SANDBOX_ID_EXAMPLES:
        return  # its request names the sandbox's invented ids: only the response shape above applies

    locations = {p["name"]: p["in"] for p in parameters}
    url, query, body = path, {}, None
    for name, value in example["request"]["parameters"].items():
        value = value["value"]
        if locations[name] == "path":
            url = url.replace("{" + name + "}", value)
        elif locations[name] == "query":
            query[name] = ",".join(value) if isinstance(value, list) else value
        else:
            body = value
    response = api.request(method.upper(), url, params=query, json=body)
    assert str(response.status_code) == status, response.text
    model.validate(operation_id, response)
