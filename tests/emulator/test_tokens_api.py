"""Tokens API 2021-03-01 and restricted report documents: createRestrictedDataToken checked against the model and
metered by its usage plan; a restricted report type's document only with a Restricted Data Token naming it, and
with the buyer's PII that unrestricted documents do not carry."""

from __future__ import annotations

import gzip

import httpx
import pytest

TOKENS = "/tokens/2021-03-01/restrictedDataToken"
DOCUMENTS = "/reports/2021-06-30/documents"
US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
INVOICING = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
SHIPMENTS = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL"
RANGE = {"dataStartTime": "2024-03-01T00:00:00Z", "dataEndTime": "2024-03-15T00:00:00Z"}
PII = ("buyer-email", "buyer-name", "recipient-name", "ship-address-1", "bill-address-1", "bill-city",
       "bill-postal-code")  # fmt: skip
DENIED = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""}]}


def resource(document_id: str) -> dict[str, str]:
    return {"method": "GET", "path": f"{DOCUMENTS}/{document_id}"}


@pytest.fixture
def done(fast, finished_report):
    """The reportDocumentId of a fresh DONE report of ``report_type``."""
    fast.config(processing_seconds=0)

    def run(report_type: str = INVOICING, marketplace: str = US) -> str:
        report = finished_report(report_type, [marketplace], **RANGE)
        assert report["processingStatus"] == "DONE", report
        return report["reportDocumentId"]

    return run


@pytest.fixture
def rdt(api, tokens_model):
    """createRestrictedDataToken for these document ids (with the seller's LWA token): the token."""

    def mint(*document_ids: str) -> str:
        response = api.post(TOKENS, json={"restrictedResources": [resource(d) for d in document_ids]})
        assert response.status_code == 200, response.text
        body = tokens_model.validate("createRestrictedDataToken", response)
        assert body["expiresIn"] == 3600
        return body["restrictedDataToken"]

    return mint


def get_document(api: httpx.Client, document_id: str, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"x-amz-access-token": token}
    return api.get(f"{DOCUMENTS}/{document_id}", headers=headers)


def table(http: httpx.Client, url: str) -> tuple[list[str], list[dict[str, str]]]:
    response = http.get(url)
    assert response.status_code == 200
    header, *lines = gzip.decompress(response.content).decode("utf-8").rstrip("\n").split("\n")
    columns = header.split("\t")
    return columns, [dict(zip(columns, line.split("\t"))) for line in lines]


def test_a_restricted_document_refuses_the_lwa_token_with_amazons_error(api, done, model):
    response = get_document(api, done())
    assert response.status_code == 403
    assert response.json() == DENIED
    model.validate("getReportDocument", response)


def test_a_token_for_the_exact_path_opens_the_document_with_the_buyers_pii(api, done, rdt, http, model, emulator):
    document_id = done()
    response = get_document(api, document_id, rdt(document_id))
    assert response.status_code == 200, response.text
    columns, rows = table(http, model.validate("getReportDocument", response)["url"])
    assert set(PII) <= set(columns)
    assert len(rows) == 50
    assert all(row["buyer-name"] and "@" in row["buyer-email"] and row["ship-address-1"] for row in rows)
    # Most buyers are billed where the goods went, some elsewhere.
    same = sum(row["bill-address-1"] == row["ship-address-1"] for row in rows)
    assert 0 < same < len(rows)
    stats = emulator.stats()
    assert stats["calls"]["createRestrictedDataToken"] == 1
    assert stats["calls_by_seller"]["A3EMULATORSELLER"]["createRestrictedDataToken"] == 1


def test_a_token_for_another_documents_path_is_refused(api, done, rdt):
    mine, other = done(), done()
    token = rdt(mine)
    response = get_document(api, other, token)
    assert (response.status_code, response.json()) == (403, DENIED)
    assert get_document(api, mine, token).status_code == 200


def test_the_token_opens_no_other_operation(api, done, rdt):
    document_id = done()
    response = api.get("/reports/2021-06-30/reports", params={"reportTypes": INVOICING},
                       headers={"x-amz-access-token": rdt(document_id)})  # fmt: skip
    assert response.status_code == 403


def test_unrestricted_documents_have_no_pii_and_take_either_token(api, done, rdt, http):
    document_id = done(SHIPMENTS)
    lwa = get_document(api, document_id)
    assert lwa.status_code == 200
    columns, rows = table(http, lwa.json()["url"])
    assert not set(PII) & set(columns)
    assert rows and all(row["ship-city"] for row in rows)
    assert get_document(api, document_id, rdt(document_id)).status_code == 200


def test_other_restricted_flat_files_carry_the_buyers_pii(api, done, rdt, http):
    document_id = done("GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING")
    columns, rows = table(http, get_document(api, document_id, rdt(document_id)).json()["url"])
    assert columns[:3] == ["date", "marketplace-id", "sku"] and set(PII) <= set(columns)
    assert all(row["buyer-name"] and row["ship-postal-code"] for row in rows)


@pytest.mark.parametrize(
    "body",
    [
        {"restrictedResources": [{"method": "GET", "path": f"{DOCUMENTS}/{{reportDocumentId}}"}]},
        {"restrictedResources": [{"method": "GET", "path": f"{DOCUMENTS}/{{documentId}}"}]},
        {"restrictedResources": [resource(f"DOC{i}") for i in range(51)]},
        {"restrictedResources": []},
        {},
        {"restrictedResources": [{"method": "PATCH", "path": f"{DOCUMENTS}/DOC1"}]},
        {"restrictedResources": [{"method": "GET"}]},
        {"restrictedResources": ["GET /reports"]},
    ],
    ids=["generic-path", "any-placeholder", "51-resources", "no-resource", "no-resources", "bad-method", "no-path",
         "not-an-object"],  # fmt: skip
)
def test_invalid_requests_are_refused_with_the_models_error_list(api, tokens_model, body, emulator):
    response = api.post(TOKENS, json=body)
    assert response.status_code == 400
    error = tokens_model.validate("createRestrictedDataToken", response)["errors"][0]
    assert error["code"] == "InvalidInput"
    assert emulator.stats()["by_operation_status"]["createRestrictedDataToken"] == {"400": 1}


def test_fifty_resources_are_one_token(api, done, rdt):
    documents = [done() for _ in range(2)]
    token = rdt(*documents, *(f"amzn1.spdoc.1.4.na.{i}" for i in range(48)))
    assert all(get_document(api, d, token).status_code == 200 for d in documents)


def test_the_tokens_api_is_metered_by_its_usage_plan(emulator, api, tokens_model):
    emulator.config(enforce_quotas=True)
    body = {"restrictedResources": [resource("amzn1.spdoc.1.4.na.1")]}
    statuses = [api.post(TOKENS, json=body).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]  # burst 10, then 1 per second
    throttled = api.post(TOKENS, json=body)
    tokens_model.validate("createRestrictedDataToken", throttled)
    ok = api.post(TOKENS, json=body)
    if ok.status_code == 200:  # a second passed meanwhile on a slow machine
        assert ok.headers["x-amzn-RateLimit-Limit"] == "1"


def test_a_token_serves_only_its_own_seller_and_region(emulator, http):
    sellers = [
        {"seller_id": "A1SELLER", "region": "NA", "refresh_token": "Atzr|a-na", "marketplace_ids": [US]},
        {"seller_id": "A1SELLER", "region": "EU", "refresh_token": "Atzr|a-eu", "marketplace_ids": [DE]},
        {"seller_id": "A2SELLER", "region": "NA", "refresh_token": "Atzr|b-na", "marketplace_ids": [US]},
    ]
    emulator.config(sellers=sellers, enforce_quotas=False, processing_seconds=0)

    def call(method: str, path: str, token: str, region: str = "NA", **kwargs) -> httpx.Response:
        return http.request(method, emulator.endpoint(region) + path, headers={"x-amz-access-token": token}, **kwargs)

    def lwa_token(seller: str, region: str) -> str:
        # The sellers were configured at run time: emulator.access_token knows the starting config only.
        (granted,) = [s for s in sellers if (s["seller_id"], s["region"]) == (seller, region)]
        form = {**emulator.credentials, "grant_type": "refresh_token", "refresh_token": granted["refresh_token"]}
        return http.post(emulator.lwa_url, data=form).json()["access_token"]

    a_na = lwa_token("A1SELLER", "NA")
    report_id = call("POST", "/reports/2021-06-30/reports", a_na, json={"reportType": INVOICING, "marketplaceIds": [US]}).json()["reportId"]  # fmt: skip
    document_id = call("GET", f"/reports/2021-06-30/reports/{report_id}", a_na).json()["reportDocumentId"]
    body = {"restrictedResources": [resource(document_id)]}

    def token_of(seller: str, region: str) -> str:
        response = call("POST", TOKENS, lwa_token(seller, region), region, json=body)
        assert response.status_code == 200, response.text
        return response.json()["restrictedDataToken"]

    own = token_of("A1SELLER", "NA")
    assert call("GET", f"{DOCUMENTS}/{document_id}", own).status_code == 200
    # The same seller's token at another region's endpoint, or minted there; another seller's token.
    assert call("GET", f"{DOCUMENTS}/{document_id}", own, "EU").status_code == 403
    assert call("GET", f"{DOCUMENTS}/{document_id}", token_of("A1SELLER", "EU"), "EU").status_code == 403
    other = call("GET", f"{DOCUMENTS}/{document_id}", token_of("A2SELLER", "NA"))
    assert (other.status_code, other.json()) == (403, DENIED)
