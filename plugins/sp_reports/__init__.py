"""Amazon Selling Partner API reports into a data lake: client, emulator, lake landing and Airflow provider."""

from sp_reports.memory import prefer_jemalloc

__version__ = "0.1.0"

prefer_jemalloc()  # before anything imports pyarrow (see memory.py)


def get_provider_info() -> dict:
    """Airflow provider metadata, registered through the ``apache_airflow_provider`` entry point.

    It makes the ``selling_partner`` connection type (and its form fields) appear in the Airflow UI.
    """
    # Plain data, kept beside the hook; importing it must not import Airflow (the provider manager
    # reads this before any hook is loaded).
    from sp_reports.hooks.connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    return {
        "package-name": "sp-reports",
        "name": "Amazon Selling Partner API reports",
        "description": "Request, wait for, fetch and land Amazon SP-API reports.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "selling_partner",
                "hook-class-name": "sp_reports.hooks.selling_partner.SellingPartnerHook",
                "hook-name": "Amazon Selling Partner API",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon Selling Partner API",
                "python-modules": ["sp_reports.hooks.selling_partner"],
            }
        ],
        "operators": [
            {"integration-name": "Amazon Selling Partner API", "python-modules": ["sp_reports.operators.reports"]}
        ],
        "sensors": [
            {"integration-name": "Amazon Selling Partner API", "python-modules": ["sp_reports.sensors.reports"]}
        ],
        "triggers": [
            {
                "integration-name": "Amazon Selling Partner API",
                "python-modules": ["sp_reports.triggers.reports", "sp_reports.triggers.notifications"],
            }
        ],
    }
