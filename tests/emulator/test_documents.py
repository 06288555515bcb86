"""getReportDocument, pre-signed URLs and the document download."""

from __future__ import annotations

import gzip
import time
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from sp_reports.emulator.testing import running_emulator

DOCUMENTS = "/reports/2021-06-30/documents"
REPORTS = "/reports/2021-06-30/reports"
US = "ATVPDKIKX0DER"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"


@pytest.fixture
def document_id(fast, finished_report) -> str:
    report = finished_report(ORDERS, dataStartTime="2024-03-01T00:00:00Z", dataEndTime="2024-03-08T00:00:00Z")
    assert report["processingStatus"] == "DONE"
    return report["reportDocumentId"]


def test_get_report_document(api, model, document_id):
    response = api.get(f"{DOCUMENTS}/{document_id}")
    body = model.validate("getReportDocument", response)
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    assert body["reportDocumentId"] == document_id
    assert body["compressionAlgorithm"] == "GZIP"
    url = urlsplit(body["url"])
    assert url.path == f"/_documents/{document_id}"
    params = parse_qs(url.query)
    assert params["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert params["X-Amz-Expires"] == ["300"]
    assert {"X-Amz-Date", "X-Amz-Signature", "X-Amz-Credential"} <= set(params)


def test_download_serves_gzip_with_charset(http, api, document_id):
    url = api.get(f"{DOCUMENTS}/{document_id}").json()["url"]
    response = http.get(url)  # no access token: pre-signed URLs carry their own authorization
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain;charset=UTF-8"
    assert "content-encoding" not in response.headers  # Amazon's default is identity
    assert response.content[:2] == b"\x1f\x8b"
    assert int(response.headers["content-length"]) == len(response.content)
    text = gzip.decompress(response.content).decode("utf-8")
    assert text.startswith("amazon-order-id\tmerchant-order-id\tpurchase-date\t")
    assert len(text.splitlines()) == 51  # header + rows_per_report


def test_download_streams_in_chunks(fast, http, api, finished_report):
    fast.config(rows_per_report=1000, download_chunk_size=4096)
    document_id = finished_report(ORDERS)["reportDocumentId"]
    url = api.get(f"{DOCUMENTS}/{document_id}").json()["url"]
    with http.stream("GET", url) as response:
        assert response.status_code == 200
        chunks = list(response.iter_raw())
    data = b"".join(chunks)
    assert len(data) == int(response.headers["content-length"]) > 4096
    assert len(gzip.decompress(data).splitlines()) == 1001


def test_downloads_are_identical(download, document_id):
    assert download(document_id).content == download(document_id).content


def test_content_encoding_header_on_request(http, api, model, document_id):
    response = api.get(f"{DOCUMENTS}/{document_id}", params={"enableContentEncodingUrlHeader": "true"})
    url = model.validate("getReportDocument", response)["url"]
    served = http.get(url)
    assert served.headers["content-encoding"] == "gzip"
    assert served.text.startswith("amazon-order-id\t")  # httpx decoded it
    response = api.get(f"{DOCUMENTS}/{document_id}", params={"enableContentEncodingUrlHeader": "yes"})
    assert (response.status_code, model.validate("getReportDocument", response)["errors"][0]["code"]) == (400, "InvalidInput")


def test_uncompressed_documents(fast, api, model, finished_report, download):
    fast.config(gzip_documents=False)
    document_id = finished_report(ORDERS)["reportDocumentId"]
    body = model.validate("getReportDocument", api.get(f"{DOCUMENTS}/{document_id}"))
    assert "compressionAlgorithm" not in body
    assert download(document_id).text.startswith("amazon-order-id\t")


def test_url_expires(emulator, http, api, document_id):
    emulator.config(url_ttl_seconds=300, speed=500)  # 0.6 s
    url = api.get(f"{DOCUMENTS}/{document_id}").json()["url"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["0.6"]
    assert http.get(url).status_code == 200
    time.sleep(0.65)
    response = http.get(url)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>" in response.text
    assert emulator.stats()["by_operation_status"]["downloadDocument"] == {"200": 1, "403": 1}


def test_tampered_url_is_rejected(http, api, document_id):
    url = urlsplit(api.get(f"{DOCUMENTS}/{document_id}").json()["url"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    longer = {**params, "X-Amz-Expires": "999999"}
    response = http.get(urlunsplit(url._replace(query=urlencode(longer))))
    assert response.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in response.text
    other_document = url._replace(path="/_documents/amzn1.spdoc.1.4.na.00000000-0000-4000-8000-000000000000")
    assert http.get(urlunsplit(other_document)).status_code == 403
    unsigned = {k: v for k, v in params.items() if k != "X-Amz-Signature"}
    response = http.get(urlunsplit(url._replace(query=urlencode(unsigned))))
    assert response.status_code == 403 and "<Code>AccessDenied</Code>" in response.text


def test_truncated_document_is_corrupt(fast, download, finished_report):
    fast.config(truncate_rate=1.0, rows_per_report=500)
    response = download(finished_report(ORDERS)["reportDocumentId"])
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises((EOFError, zlib.error, gzip.BadGzipFile)):
        gzip.decompress(response.content)


def test_unknown_and_malformed_document_ids(api, model):
    response = api.get(f"{DOCUMENTS}/amzn1.spdoc.1.4.na.00000000-0000-4000-8000-000000000000")
    assert (response.status_code, model.validate("getReportDocument", response)["errors"][0]["code"]) == (404, "NotFound")
    response = api.get(f"{DOCUMENTS}/badDocumentId1")
    assert (response.status_code, model.validate("getReportDocument", response)["errors"][0]["code"]) == (400, "InvalidInput")


def test_document_id_is_hidden_until_done(emulator, api, create_report):
    """Ids are deterministic per seed: a twin emulator finishes the same report and reveals its id."""
    emulator.config(processing_seconds=5)
    report_id = create_report()
    with running_emulator(processing_seconds=0) as twin, httpx.Client(base_url=twin.base_url) as client:
        client.headers["x-amz-access-token"] = twin.access_token()
        twin_id = client.post(REPORTS, json={"reportType": ORDERS, "marketplaceIds": [US]}).json()["reportId"]
        document_id = client.get(f"{REPORTS}/{twin_id}").json()["reportDocumentId"]
    assert twin_id == report_id
    assert "reportDocumentId" not in api.get(f"{REPORTS}/{report_id}").json()
    assert api.get(f"{DOCUMENTS}/{document_id}").status_code == 404
