"""Fixtures for lake tests: a local lake and an S3 lake on the session's moto server (tests/conftest.py);
``s3_lake`` gives each test a fresh bucket.
"""

from __future__ import annotations

import uuid

import pytest

from sp_reports.lake import Lake

S3_REGION = "us-east-1"
S3_KEY = S3_SECRET = "testing"


@pytest.fixture
def s3_storage_options(moto_server) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": S3_REGION,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ALLOW_HTTP": "true",
    }


@pytest.fixture
def s3_client(moto_server):
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=moto_server,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    )


@pytest.fixture
def s3_bucket(s3_client) -> str:
    bucket = f"lake-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_lake(s3_bucket, s3_storage_options) -> Lake:
    """A lake at s3://<fresh bucket>/lake on the moto server."""
    return Lake(f"s3://{s3_bucket}/lake", storage_options=s3_storage_options)


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))
