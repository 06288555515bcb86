"""Lake-relative paths and the zone layout (``raw/``, ``staging/``, ``tables/``)."""

from __future__ import annotations

from sp_reports.columns import selling_partner_id as _seller


def join_path(*parts: str) -> str:
    """Join parts into a normalised lake-relative path, rejecting anything that could escape the lake."""
    segments: list[str] = []
    for part in parts:
        if not isinstance(part, str) or not part:
            raise ValueError(f"empty or non-string path part: {part!r}")
        if "://" in part or part.startswith("/") or "\\" in part:
            raise ValueError(f"lake paths are relative to the lake root, got {part!r}")
        for segment in part.strip("/").split("/"):
            if segment in ("", ".", ".."):
                raise ValueError(f"invalid path segment {segment!r} in {part!r}")
            segments.append(segment)
    return "/".join(segments)


def raw_document_path(report_type: str, selling_partner_id: str, report_id: str, document_id: str) -> str:
    """``raw/{report_type}/{selling_partner_id}/{report_id}/{document_id}.bin``: the document exactly as
    downloaded (a reportId is unique only per seller)."""
    return join_path(
        "raw", _single(report_type), _seller(selling_partner_id), _single(report_id), f"{_single(document_id)}.bin"
    )


def raw_metadata_path(raw_path: str) -> str:
    """The JSON sidecar of a raw document: ``<raw_path>.json``."""
    return f"{join_path(raw_path)}.json"


def staging_dir(table_name: str, selling_partner_id: str, report_id: str) -> str:
    """``staging/{table_name}/{selling_partner_id}/{report_id}``: where a report's Parquet files wait for landing."""
    return join_path("staging", _single(table_name), _seller(selling_partner_id), _single(report_id))


def manifest_path(table_name: str, selling_partner_id: str, report_id: str) -> str:
    """``manifests/{table_name}/{selling_partner_id}/{report_id}.json``: what a landing committed."""
    return join_path("manifests", _single(table_name), _seller(selling_partner_id), f"{_single(report_id)}.json")


def _single(segment: str) -> str:
    if "/" in segment:
        raise ValueError(f"{segment!r} must be a single path segment")
    return segment
