"""LWA token endpoint and the access-token check on SP-API calls."""

from __future__ import annotations

import time

from sp_reports.emulator.testing import running_emulator

REPORT_PATH = "/reports/2021-06-30/reports/50000000001"


def _token(http, emulator, **form):
    return http.post(emulator.lwa_url, data=form)


def test_refresh_token_grant_returns_bearer_token(emulator, http):
    response = _token(http, emulator, grant_type="refresh_token", **emulator.credentials)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["access_token"].startswith("Atza|")
    assert body["refresh_token"] == "Atzr|emulator-refresh-token"
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert "x-amzn-RequestId" in response.headers


def test_client_credentials_grant_has_no_refresh_token(emulator, http):
    creds = emulator.credentials
    response = _token(
        http, emulator,
        grant_type="client_credentials",
        scope="sellingpartnerapi::notifications",
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
    )
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "token_type", "expires_in"}


def test_wrong_client_secret_is_invalid_client(emulator, http):
    response = _token(http, emulator, **{**emulator.credentials, "client_secret": "nope"}, grant_type="refresh_token")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


def test_wrong_client_id_is_invalid_client(emulator, http):
    response = _token(http, emulator, **{**emulator.credentials, "client_id": "other"}, grant_type="refresh_token")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_bad_refresh_token_is_invalid_grant(emulator, http):
    response = _token(http, emulator, **{**emulator.credentials, "refresh_token": "Atzr|revoked"}, grant_type="refresh_token")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_request_errors(emulator, http):
    creds = emulator.credentials
    assert _token(http, emulator, **creds).json()["error"] == "invalid_request"  # no grant_type
    assert _token(http, emulator, grant_type="password", **creds).json()["error"] == "unsupported_grant_type"
    response = _token(
        http, emulator, grant_type="client_credentials", client_id=creds["client_id"], client_secret=creds["client_secret"]
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    response = _token(
        http, emulator, grant_type="client_credentials", scope="sellingpartnerapi::everything", client_id=creds["client_id"],
        client_secret=creds["client_secret"],
    )  # fmt: skip
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")


def test_configured_credentials_replace_defaults(http):
    with running_emulator(client_id="cid", client_secret="sec", refresh_token="Atzr|r") as emu:
        assert _token(http, emu, grant_type="refresh_token", client_id="cid", client_secret="sec", refresh_token="Atzr|r").status_code == 200
        defaults = {"client_id": "emulator-client-id", "client_secret": "emulator-client-secret", "refresh_token": "Atzr|r"}
        assert _token(http, emu, grant_type="refresh_token", **defaults).status_code == 401


def test_missing_or_unknown_access_token_is_denied(emulator, model, http):
    for headers in ({}, {"x-amz-access-token": "Atza|forged"}):
        response = http.get(emulator.base_url + REPORT_PATH, headers=headers)
        body = model.validate("getReport", response)
        assert response.status_code == 403
        assert body["errors"][0]["code"] == "Unauthorized"
        assert body["errors"][0]["message"] == "Access to requested resource is denied."


def test_grantless_token_does_not_open_reports(emulator, model, http):
    creds = emulator.credentials
    token = _token(
        http, emulator, grant_type="client_credentials", scope="sellingpartnerapi::notifications",
        client_id=creds["client_id"], client_secret=creds["client_secret"],
    ).json()["access_token"]  # fmt: skip
    response = http.get(emulator.base_url + REPORT_PATH, headers={"x-amz-access-token": token})
    assert model.validate("getReport", response)["errors"][0]["code"] == "Unauthorized"


def test_expired_access_token(http, emulator, model):
    emulator.config(token_ttl_seconds=0.6)
    body = _token(http, emulator, grant_type="refresh_token", **emulator.credentials).json()
    assert body["expires_in"] == 0.6
    headers = {"x-amz-access-token": body["access_token"]}
    assert http.get(emulator.base_url + REPORT_PATH, headers=headers).status_code == 404  # valid token, unknown report
    time.sleep(0.65)
    response = http.get(emulator.base_url + REPORT_PATH, headers=headers)
    error = model.validate("getReport", response)["errors"][0]
    assert response.status_code == 403
    assert (error["code"], error["message"]) == ("Unauthorized", "The access token you provided has expired.")
    # A fresh token works again.
    headers = {"x-amz-access-token": emulator.access_token()}
    assert http.get(emulator.base_url + REPORT_PATH, headers=headers).status_code == 404


def test_lwa_calls_are_counted(emulator, http):
    emulator.access_token()
    _token(http, emulator, grant_type="refresh_token", **{**emulator.credentials, "client_secret": "x"})
    stats = emulator.stats()
    assert stats["calls"]["lwaToken"] == 2
    assert stats["by_operation_status"]["lwaToken"] == {"200": 1, "401": 1}
