"""`/_emulator/*`: runtime knobs, reset, stats, and seeding reports Amazon creates on its own."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import validation as v
from .errors import ApiError

if TYPE_CHECKING:
    from .runtime import Emulator

router = APIRouter(prefix="/_emulator")


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


@router.get("/config")
async def get_config(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.emulator.config.to_dict())


@router.post("/config")
async def post_config(request: Request) -> JSONResponse:
    emu: Emulator = request.app.state.emulator
    try:
        config = emu.update_config(await _json(request))
    except ValueError as error:
        return _bad_request(str(error))
    return JSONResponse(config.to_dict())


@router.post("/reset")
async def reset(request: Request) -> JSONResponse:
    """Body `{"config": true}` also restores the config the emulator started with."""
    emu: Emulator = request.app.state.emulator
    try:
        options = await _json(request)
    except ValueError as error:
        return _bad_request(str(error))
    with emu.lock:
        emu.reset(restore_config=bool(options.get("config")))
        return JSONResponse({"reset": True, "config": emu.config.to_dict()})


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    emu: Emulator = request.app.state.emulator
    with emu.lock:
        return JSONResponse(emu.stats.to_json())


@router.post("/reports")
async def seed_report(request: Request) -> JSONResponse:
    """Create a report the way Amazon does by itself (settlement reports, schedules): no quota, no stats.

    Body: CreateReportSpecification fields, settlement report types allowed.
    """
    emu: Emulator = request.app.state.emulator
    try:
        spec = await _json(request)
        config, now = emu.config, emu.clock()
        s = v.report_spec(spec, config, now, requestable=False)
    except ApiError as error:
        return _bad_request(error.message)
    except ValueError as error:
        return _bad_request(str(error))
    with emu.lock:
        report = emu.store.create_report(config, now, s.report_type, s.marketplace_ids, s.start, s.end, s.options)
        return JSONResponse(report.to_json(now), status_code=201)
