"""The ``selling_partner`` connection form, as plain data (no Airflow import: the provider manager reads it)."""

from sp_reports.client.endpoints import DEFAULT_LWA_ENDPOINT

# Declarative connection form: Airflow >= 3.2 reads "conn-fields" from the provider info.
CONN_FIELDS = {
    "selling_partner_id": {
        "label": "Selling partner id",
        "description": (
            "Required. The seller's id (Seller Central > Settings > Account Info > Merchant Token), e.g. "
            "A2EXAMPLE1234B. It keys every report this account lands; one seller in three regions is three "
            "connections with the same id."
        ),
        "schema": {"type": "string", "pattern": "^[A-Z0-9]{1,64}$"},
    },
    "refresh_token": {
        "label": "LWA refresh token",
        "description": "The seller's Login-with-Amazon refresh token (Atzr|...) for this region.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "region": {
        "label": "Region",
        "description": "SP-API region of this authorisation: NA, EU or FE (README: the marketplace table).",
        "schema": {"type": ["string", "null"], "enum": ["NA", "EU", "FE", None], "default": "NA"},
    },
    "endpoint": {
        "label": "Endpoint override",
        "description": "SP-API base URL instead of the region's (for the local emulator or a proxy).",
        "schema": {"type": ["string", "null"]},
    },
    "lwa_endpoint": {
        "label": "LWA token endpoint override",
        "description": f"Default {DEFAULT_LWA_ENDPOINT}.",
        "schema": {"type": ["string", "null"]},
    },
    "marketplace_ids": {
        "label": "Default marketplaces",
        "description": (
            "Comma-separated marketplace ids of this region, requested when a DAG run names none "
            "(e.g. ATVPDKIKX0DER,A2EUQ1WTGCTBG2)."
        ),
        "schema": {"type": ["string", "null"]},
    },
}
UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": "LWA client id", "password": "LWA client secret"},
    "placeholders": {"login": "amzn1.application-oa2-client....", "password": "LWA client secret"},
}
