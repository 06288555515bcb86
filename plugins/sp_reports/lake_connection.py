"""Where the lake is, from Airflow's point of view: a local folder, or S3 through an AWS connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sp_reports.settings import settings

if TYPE_CHECKING:  # the lake loads pyarrow and deltalake: not at DAG parse time
    from sp_reports.lake import Lake


def lake_from_airflow(root: str | None = None, aws_conn_id: str | None = None) -> Lake:
    """A ``Lake`` for ``root``; an ``s3://`` root takes its credentials and endpoint from the amazon
    provider's AWS connection (``$SP_REPORTS_AWS_CONN_ID``, default ``aws_default``), so secrets stay
    in Airflow's connection store. ``root`` defaults to ``$SP_REPORTS_LAKE`` (``sp_reports.settings``)."""
    from sp_reports.lake import Lake

    root = root or settings().lake
    if not root.startswith("s3://"):
        return Lake(root)
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=aws_conn_id or settings().aws_conn_id, client_type="s3")
    credentials = hook.get_credentials()
    options = {
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_REGION": hook.conn_region_name or "us-east-1",
    }
    if credentials.token:
        options["AWS_SESSION_TOKEN"] = credentials.token
    if endpoint := hook.conn_config.get_service_endpoint_url("s3"):
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return Lake(root, storage_options=options)
