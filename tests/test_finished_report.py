"""The error a FATAL report raises: its error document summarised, fetched with a Restricted Data Token when the
report type is restricted (Amazon restricts getReportDocument by report type, error documents included)."""

from __future__ import annotations

import time

import pytest

from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.finished_report import fatal_error

INVOICING = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
SHIPMENTS = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL"


@pytest.mark.parametrize("report_type, token_calls", [(INVOICING, 1), (SHIPMENTS, 0)])
def test_a_fatal_reports_error_document_is_summarised(emulator, report_type, token_calls):
    emulator.config(outcomes={report_type: "FATAL"}, processing_seconds=0)
    credentials = Credentials(**emulator.credentials)
    with SellingPartnerClient(credentials, endpoint=emulator.base_url, lwa_endpoint=emulator.lwa_url) as client:
        report = client.get_report(client.create_report(report_type, ["ATVPDKIKX0DER"]))
        deadline = time.monotonic() + 10
        while report["processingStatus"] != "FATAL":
            assert time.monotonic() < deadline, report
            report = client.get_report(report["reportId"])
        message = str(fatal_error(client, report))
    assert message.startswith(f"report {report['reportId']} ({report_type}) ended FATAL: ")
    assert "could not be fetched" not in message and "no error document" not in message
    stats = emulator.stats()
    assert stats["calls"]["createRestrictedDataToken"] == token_calls
    assert stats["by_operation_status"]["getReportDocument"] == {"200": 1}
