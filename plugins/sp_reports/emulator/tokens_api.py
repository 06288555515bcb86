"""Tokens API 2021-03-01: createRestrictedDataToken, for the selling partner whose LWA token calls it.

The request is checked as Amazon's model (tokens_2021-03-01.json) defines it: 1 to 50 restrictedResources,
each a method of the enum and a path. getReportDocument is restricted per document, so Amazon refuses a generic
documents path (``/reports/2021-06-30/documents/{reportDocumentId}``): the token must name real documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from . import validation as v
from .api import BASE as REPORTS_BASE
from .api import _operation, caller
from .errors import invalid_input
from .tokens import TTL_SECONDS, Resource

if TYPE_CHECKING:
    from .runtime import Emulator

router = APIRouter()
BASE = "/tokens/2021-03-01"
MAX_RESOURCES = 50
METHODS = ("GET", "PUT", "POST", "DELETE")
DOCUMENTS_PATH = REPORTS_BASE + "/documents/"


@router.post(BASE + "/restrictedDataToken")
async def create_restricted_data_token(request: Request) -> Response:
    return await _operation(request, "createRestrictedDataToken", _create_restricted_data_token)


def _create_restricted_data_token(emu: Emulator, request: Request, body: bytes) -> Response:
    spec = v.json_body(body, request.headers.get("content-type"))
    target = spec.get("targetApplication")
    if target is not None and not isinstance(target, str):
        raise invalid_input("Invalid input in targetApplication.", "targetApplication must be a string.")
    resources = restricted_resources(spec.get("restrictedResources"))
    granted = caller(request).authorisation
    assert granted is not None, "a seller operation always has an authorisation"
    token = emu.restricted_tokens.issue(emu.clock(), granted, resources)
    return JSONResponse({"restrictedDataToken": token, "expiresIn": TTL_SECONDS})


def restricted_resources(value: Any) -> frozenset[Resource]:
    if value is None:
        raise invalid_input("restrictedResources is required.")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RESOURCES:
        raise invalid_input(
            "Invalid input in restrictedResources.", f"restrictedResources must list 1 to {MAX_RESOURCES} resources."
        )
    resources: set[Resource] = set()
    for index, resource in enumerate(value):
        where = f"restrictedResources[{index}]"
        if not isinstance(resource, dict):
            raise invalid_input(f"Invalid input in {where}.", "A restricted resource is an object.")
        method, path, elements = resource.get("method"), resource.get("path"), resource.get("dataElements")
        if method not in METHODS:
            raise invalid_input(f"Invalid input in {where}.method.", f"method must be one of {', '.join(METHODS)}.")
        if not isinstance(path, str) or not path.startswith("/"):
            raise invalid_input(f"Invalid input in {where}.path.", "path must be a resource path.")
        if elements is not None and not (isinstance(elements, list) and all(isinstance(e, str) for e in elements)):
            raise invalid_input(f"Invalid input in {where}.dataElements.", "dataElements must be a list of strings.")
        if path.startswith(DOCUMENTS_PATH) and ("{" in path or "}" in path):
            raise invalid_input(
                f"Invalid input in {where}.path.",
                f"getReportDocument needs a specific path ({DOCUMENTS_PATH}<reportDocumentId>), not a generic one.",
            )
        resources.add((method, path))
    return frozenset(resources)
