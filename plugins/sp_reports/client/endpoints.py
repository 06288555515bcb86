"""Where requests go: SP-API regional endpoints, the LWA token endpoint, and our user agent."""

from __future__ import annotations

from urllib.parse import urlsplit

from sp_reports import __version__

REGION_ENDPOINTS: dict[str, str] = {
    "NA": "https://sellingpartnerapi-na.amazon.com",
    "EU": "https://sellingpartnerapi-eu.amazon.com",
    "FE": "https://sellingpartnerapi-fe.amazon.com",
}

DEFAULT_LWA_ENDPOINT = "https://api.amazon.com/auth/o2/token"

# Amazon asks integrators to identify themselves this way; it helps their support find our calls.
USER_AGENT = f"sp-reports/{__version__} (Language=Python)"


def resolve_endpoint(region: str, endpoint: str | None) -> str:
    """The SP-API base URL: an explicit ``endpoint`` (e.g. the local emulator) wins over ``region``."""
    if endpoint:
        return _check_base_url("endpoint", endpoint)
    key = (region or "").upper()
    if key not in REGION_ENDPOINTS:
        raise ValueError(f"region must be one of {sorted(REGION_ENDPOINTS)}, got {region!r}")
    return REGION_ENDPOINTS[key]


def check_lwa_endpoint(url: str) -> str:
    return _check_base_url("lwa_endpoint", url)


def _check_base_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {url!r}")
    return url.rstrip("/")
