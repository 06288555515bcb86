"""Document quirks (EmulatorConfig): BOM, CRLF, trailing tabs, mislabelled charset and compression,
empty and header-only documents, column drift, undecodable bytes."""

from __future__ import annotations

import gzip
import json

import pytest
from lxml import etree

US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
PL = "A1C3SOZRARQ6R3"  # UTF-8 documents with English (en_GB) text: "£" is not ASCII
DOCUMENTS = "/reports/2021-06-30/documents"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
XML_ORDERS = "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
SALES_AND_TRAFFIC = "GET_SALES_AND_TRAFFIC_REPORT"
CODECS = {US: "utf-8", DE: "cp1252", JP: "cp932"}
BOM = b"\xef\xbb\xbf"


class Served:
    def __init__(self, raw: bytes, content_type: str, document: dict):
        self.raw, self.content_type, self.document = raw, content_type, document

    @property
    def data(self) -> bytes:
        return gzip.decompress(self.raw) if self.raw[:2] == b"\x1f\x8b" else self.raw


@pytest.fixture
def fetch(fast, api, finished_report, download):
    """Apply quirks, create a DONE report, return what getReportDocument and the download served."""
    fast.config(processing_seconds=0, rows_per_report=20)

    def run(report_type=ORDERS, marketplace=US, **quirks) -> Served:
        if quirks:
            fast.config(**quirks)
        document_id = finished_report(report_type, [marketplace])["reportDocumentId"]
        document = api.get(f"{DOCUMENTS}/{document_id}").json()
        response = download(document_id)
        assert response.status_code == 200
        return Served(response.content, response.headers["content-type"], document)

    return run


def test_no_quirks_by_default(fetch):
    served = fetch()
    assert served.document["compressionAlgorithm"] == "GZIP" and served.raw[:2] == b"\x1f\x8b"
    data = served.data
    assert not data.startswith(BOM) and b"\r" not in data
    lines = data.decode("utf-8").rstrip("\n").split("\n")
    assert len(lines) == 21 and len({line.count("\t") for line in lines}) == 1


@pytest.mark.parametrize("report_type", [ORDERS, XML_ORDERS, SALES_AND_TRAFFIC])
def test_bom_on_utf8_documents(fetch, report_type):
    data = fetch(report_type, US, bom=True).data
    assert data.startswith(BOM) and not data[3:].startswith(BOM)
    data[3:].decode("utf-8")


def test_no_bom_on_other_charsets(fetch):
    assert not fetch(ORDERS, DE, bom=True).data.startswith(BOM)
    assert not fetch(ORDERS, JP, bom=True).data.startswith(BOM)
    assert fetch(SALES_AND_TRAFFIC, JP, bom=True).data.startswith(BOM)  # JSON is UTF-8 everywhere


def test_crlf(fetch):
    data = fetch(crlf=True).data
    assert data.count(b"\r\n") == data.count(b"\n") == 21
    xml = fetch(XML_ORDERS, US, crlf=True).data
    assert xml.count(b"\r\n") == xml.count(b"\n") > 20
    assert len(etree.fromstring(xml).findall("Message")) == 20


def test_trailing_tabs(fetch):
    header, *lines = fetch(trailing_tabs=True).data.decode("utf-8").rstrip("\n").split("\n")
    assert not header.endswith("\t")
    assert len(lines) == 20 and all(line.endswith("\t") for line in lines)
    assert all(len(line.split("\t")) == len(header.split("\t")) + 1 for line in lines)


@pytest.mark.parametrize(
    "marketplace, report_type, label, truth",
    [
        (DE, ORDERS, "UTF-8", "cp1252"),
        (JP, LISTINGS, "UTF-8", "cp932"),
        (JP, ORDERS, "Cp1252", "cp932"),
        (PL, LISTINGS, "Cp1252", "utf-8"),
    ],
)
def test_mislabelled_charset(fetch, marketplace, report_type, label, truth):
    served = fetch(report_type, marketplace, mislabel_charset=label)
    assert served.content_type == f"text/plain;charset={label}"
    data = served.data
    data.decode(truth)
    if label == "UTF-8":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    elif truth == "cp932":
        with pytest.raises(UnicodeDecodeError):  # cp932 bytes include ones cp1252 leaves undefined
            data.decode("cp1252")
    else:
        assert "Â£" in data.decode("cp1252") and "£" in data.decode("utf-8")  # decodes, into mojibake


def test_mislabelled_charset_keeps_the_xml_declaration_truthful(fetch):
    served = fetch(XML_ORDERS, DE, mislabel_charset="UTF-8")
    assert served.content_type == "text/xml;charset=UTF-8"
    assert served.data.startswith(b'<?xml version="1.0" encoding="windows-1252"?>')


def test_gzip_mislabel(fetch, fast):
    served = fetch(gzip_mislabel=True)  # labelled GZIP, served plain
    assert served.document["compressionAlgorithm"] == "GZIP"
    assert served.raw.startswith(b"amazon-order-id\t")
    fast.config(gzip_documents=False)
    served = fetch(gzip_mislabel=True)  # not labelled, served gzip
    assert "compressionAlgorithm" not in served.document
    assert served.raw[:2] == b"\x1f\x8b" and served.data.startswith(b"amazon-order-id\t")


def test_gzip_mislabel_with_content_encoding_requested(fetch, api, http):
    served = fetch(gzip_mislabel=True)
    url = api.get(f"{DOCUMENTS}/{served.document['reportDocumentId']}", params={"enableContentEncodingUrlHeader": "true"}).json()["url"]
    response = http.get(url)
    assert "content-encoding" not in response.headers  # the bytes are plain: no gzip header on them
    assert response.content.startswith(b"amazon-order-id\t")


@pytest.mark.parametrize("report_type", [ORDERS, XML_ORDERS, SALES_AND_TRAFFIC])
def test_empty_document(fetch, report_type):
    served = fetch(report_type, US, empty_document=True)
    assert served.raw[:2] == b"\x1f\x8b"  # still a valid gzip stream
    assert served.data == b""


def test_header_only(fetch):
    data = fetch(ORDERS, DE, header_only=True).data.decode("cp1252")
    assert data.startswith("amazon-order-id\t") and data.count("\n") == 1
    root = etree.fromstring(fetch(XML_ORDERS, US, header_only=True).data)
    assert root.findtext("MessageType") == "AllOrdersReport" and root.findall("Message") == []
    document = json.loads(fetch(SALES_AND_TRAFFIC, US, header_only=True).data)
    assert document["salesAndTrafficByDate"] == [] == document["salesAndTrafficByAsin"]
    assert document["reportSpecification"]["reportType"] == SALES_AND_TRAFFIC


def _table(data: bytes, codec: str = "utf-8") -> tuple[list[str], list[dict[str, str]]]:
    header, *lines = data.decode(codec).rstrip("\n").split("\n")
    columns = header.split("\t")
    assert all(len(line.split("\t")) == len(columns) for line in lines)
    return columns, [dict(zip(columns, line.split("\t"))) for line in lines]


def test_column_drift_in_flat_files(fetch):
    normal, _ = _table(fetch(ORDERS, US).data)
    added, rows = _table(fetch(ORDERS, US, column_drift="add").data)
    assert [c for c in added if c not in normal] == ["deemed-reseller-category"]
    assert [c for c in added if c in normal] == normal
    assert {row["deemed-reseller-category"] for row in rows} == {"AU_VOEC"}
    dropped, _ = _table(fetch(ORDERS, US, column_drift="drop").data)
    assert dropped == normal[:-1]


def test_column_drift_in_xml_and_json(fetch):
    orders = etree.fromstring(fetch(XML_ORDERS, US, column_drift="add").data).findall("Message/Order")
    assert all(o.findtext("DeemedResellerCategory") == "AU_VOEC" for o in orders)
    orders = etree.fromstring(fetch(XML_ORDERS, US, column_drift="drop").data).findall("Message/Order")
    assert orders and all(o.find("SalesChannel") is None for o in orders)
    document = json.loads(fetch(SALES_AND_TRAFFIC, US, column_drift="add").data)
    assert all(r["deemedResellerCategory"] == "AU_VOEC" for r in document["salesAndTrafficByAsin"])
    document = json.loads(fetch(SALES_AND_TRAFFIC, US, column_drift="drop").data)
    assert all("totalOrderItems" not in r["salesByDate"] for r in document["salesAndTrafficByDate"])


def _undecodable(line: bytes) -> bool:
    for codec in ("utf-8", "cp1252", "cp932"):
        try:
            line.decode(codec)
            return False
        except UnicodeDecodeError:
            pass
    return True


@pytest.mark.parametrize("marketplace", [US, DE, JP])
def test_bad_bytes_no_charset_decodes(fetch, marketplace):
    header, *lines = fetch(ORDERS, marketplace, bad_bytes_rate=1.0).data.rstrip(b"\n").split(b"\n")
    header.decode(CODECS[marketplace])
    assert len(lines) == 20 and all(_undecodable(line) for line in lines)
    # The corruption never swallows a tab: each line keeps its fields.
    assert all(line.count(b"\t") == header.count(b"\t") for line in lines)


def test_bad_bytes_rate_hits_some_lines(fetch):
    _, *lines = fetch(ORDERS, DE, bad_bytes_rate=0.3, rows_per_report=200).data.rstrip(b"\n").split(b"\n")
    bad = sum(_undecodable(line) for line in lines)
    assert 30 < bad < 90
    assert all(line.decode("cp1252") for line in lines if not _undecodable(line))


def test_bad_bytes_in_xml_and_json(fetch):
    xml = fetch(XML_ORDERS, JP, bad_bytes_rate=1.0).data
    head, _, body = xml.partition(b"<Message>")
    head.decode("cp932")
    with pytest.raises(UnicodeDecodeError):
        body.decode("cp932")
    lines = fetch(SALES_AND_TRAFFIC, US, bad_bytes_rate=1.0).data.split(b"\n")
    records = [line for line in lines if line.startswith(b"{") and not line.startswith(b'{"reportSpecification"')]
    assert records and all(_undecodable(line) for line in records)
    lines[0].decode("utf-8")


def test_quirks_are_fixed_when_the_report_is_created(fast, api, finished_report, download):
    fast.config(processing_seconds=0, rows_per_report=5, bom=True, crlf=True)
    document_id = finished_report(ORDERS, [US])["reportDocumentId"]
    fast.config(bom=False, crlf=False, empty_document=True)
    data = gzip.decompress(download(document_id).content)
    assert data.startswith(BOM) and data.count(b"\r\n") == 6


def test_quirk_knobs_are_validated(emulator, http):
    for bad in ({"column_drift": "shuffle"}, {"bad_bytes_rate": 1.5}, {"mislabel_charset": " "}, {"bom": "yes"},
                {"mislabel_charset": 5}):  # fmt: skip
        response = http.post(emulator.base_url + "/_emulator/config", json=bad)
        assert response.status_code == 400, bad
    config = emulator.config(column_drift="drop", mislabel_charset="UTF-8", bad_bytes_rate=0.5)
    assert (config["column_drift"], config["mislabel_charset"], config["bad_bytes_rate"]) == ("drop", "UTF-8", 0.5)
    assert emulator.config(column_drift=None, mislabel_charset=None)["column_drift"] is None


def test_quirks_do_not_touch_error_documents(fetch, fast, finished_report, download):
    fast.config(processing_seconds=0, outcomes={ORDERS: "FATAL"}, bom=True, gzip_mislabel=True, bad_bytes_rate=1.0)
    report = finished_report(ORDERS, [US])
    body = download(report["reportDocumentId"]).content
    assert json.loads(body)["errorDetails"]
