"""`/_emulator/*`: runtime knobs, reset, stats, and seeding reports Amazon creates on its own."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import validation as v
from .config import AccountKey, EmulatorConfig
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

    Body: CreateReportSpecification fields, settlement report types allowed; optional `sellerId` and
    `region` name the configured seller it is for (default: the first authorisation's).
    """
    emu: Emulator = request.app.state.emulator
    try:
        spec = await _json(request)
        seller_id, region = spec.pop("sellerId", None), spec.pop("region", None)
        config, now = emu.config, emu.clock()
        s = v.report_spec(spec, config, now, requestable=False)
        key = _account_key(config, seller_id, region)
    except ApiError as error:
        return _bad_request(error.message)
    except ValueError as error:
        return _bad_request(str(error))
    with emu.lock:
        store = emu.account(key).store
        report = store.create_report(config, now, s.report_type, s.marketplace_ids, s.start, s.end, s.options)
        return JSONResponse(report.to_json(now), status_code=201)


def _account_key(config: EmulatorConfig, seller_id: Any, region: Any) -> AccountKey:
    authorisations = config.authorisations()
    if seller_id is None and region is None:
        return authorisations[0].key
    matches = [
        a for a in authorisations
        if (seller_id is None or a.seller_id == seller_id) and (region is None or a.region in (None, region))
    ]  # fmt: skip
    if len(matches) != 1:
        raise ValueError(f"sellerId {seller_id!r} / region {region!r} must name exactly one configured authorisation")
    return matches[0].key
