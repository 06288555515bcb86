"""SP-API marketplaces: the facts the emulator needs to validate requests and localize documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Marketplace:
    id: str
    country: str
    domain: str
    currency: str
    region: str  # "na" | "eu" | "fe": the SP-API endpoint region, also used in document ids
    language: str  # key into locales.LOCALES
    codec: str  # Python codec the document bytes are encoded with
    utc_offset_hours: int  # listing dates are local time with a zone abbreviation
    zone_abbreviation: str
    # How localised flat files (listings, settlements) write dates: "ymd" 2026-11-20, "ymd_slash"
    # 2026/11/20 (JP), "dmy_dot" 20.11.2026 (DE). Orders, shipments and returns use ISO 8601 everywhere.
    date_layout: str = "ymd"
    decimal_comma: bool = False  # localised amounts: 1234,56 (DE) instead of 1234.56

    def date(self, value: datetime) -> str:
        return value.strftime(_DATE_LAYOUTS[self.date_layout])

    def date_time(self, value: datetime, zone: str) -> str:
        return f"{self.date(value)} {value:%H:%M:%S} {zone}"

    def amount(self, text: str) -> str:
        return text.replace(".", ",") if self.decimal_comma else text


_DATE_LAYOUTS = {"ymd": "%Y-%m-%d", "ymd_slash": "%Y/%m/%d", "dmy_dot": "%d.%m.%Y"}


def _mp(
    id, country, domain, currency, region, language, codec="utf-8", offset=0, zone="UTC", layout="ymd", comma=False
):
    return Marketplace(id, country, domain, currency, region, language, codec, offset, zone, layout, comma)


MARKETPLACES: dict[str, Marketplace] = {
    m.id: m
    for m in (
        _mp("ATVPDKIKX0DER", "US", "Amazon.com", "USD", "na", "en_US", offset=-8, zone="PST"),
        _mp("A2EUQ1WTGCTBG2", "CA", "Amazon.ca", "CAD", "na", "en_US", offset=-8, zone="PST"),
        _mp("A1AM78C64UM0Y8", "MX", "Amazon.com.mx", "MXN", "na", "es", offset=-6, zone="CST"),
        _mp("A2Q3Y263D00KWC", "BR", "Amazon.com.br", "BRL", "na", "en_US", offset=-3, zone="BRT"),
        # Amazon serves the classic EU marketplaces' flat files in Cp1252, not UTF-8.
        # Amazon.de localises its flat files: 20.11.2026 14:03:12 MEZ, 12,34.
        _mp("A1PA6795UKMFR9", "DE", "Amazon.de", "EUR", "eu", "de", "cp1252", 1, "MEZ", "dmy_dot", comma=True),
        _mp("A13V1IB3VIYZZH", "FR", "Amazon.fr", "EUR", "eu", "fr", "cp1252", 1, "MET"),
        _mp("A1F83G8C2ARO7P", "GB", "Amazon.co.uk", "GBP", "eu", "en_GB", "cp1252", 0, "GMT"),
        _mp("APJ6JRA9NG5V4", "IT", "Amazon.it", "EUR", "eu", "it", "cp1252", 1, "MET"),
        _mp("A1RKKUPIHCS9HS", "ES", "Amazon.es", "EUR", "eu", "es", "cp1252", 1, "MET"),
        _mp("A1805IZSGTT6HS", "NL", "Amazon.nl", "EUR", "eu", "en_GB", "cp1252", 1, "MET"),
        _mp("AMEN7PMS3EDWL", "BE", "Amazon.com.be", "EUR", "eu", "fr", "cp1252", 1, "MET"),
        _mp("A28R8C7NBKEWEA", "IE", "Amazon.ie", "EUR", "eu", "en_GB", "cp1252", 0, "GMT"),
        _mp("A2NODRKZP88ZB9", "SE", "Amazon.se", "SEK", "eu", "en_GB", "cp1252", 1, "MET"),
        _mp("A1C3SOZRARQ6R3", "PL", "Amazon.pl", "PLN", "eu", "en_GB"),
        _mp("A33AVAJ2PDY3EV", "TR", "Amazon.com.tr", "TRY", "eu", "en_GB", offset=3, zone="TRT"),
        _mp("AE08WJ6YKNBMC", "ZA", "Amazon.co.za", "ZAR", "eu", "en_GB", offset=2, zone="SAST"),
        _mp("ARBP9OOSHTCHU", "EG", "Amazon.eg", "EGP", "eu", "en_GB", offset=2, zone="EET"),
        _mp("A17E79C6D8DWNP", "SA", "Amazon.sa", "SAR", "eu", "en_GB", offset=3, zone="AST"),
        _mp("A2VIGQ35RCS4UG", "AE", "Amazon.ae", "AED", "eu", "en_GB", offset=4, zone="GST"),
        _mp("A21TJRUUN4KGV", "IN", "Amazon.in", "INR", "eu", "en_GB", offset=5, zone="IST"),
        # Amazon labels JP documents Shift_JIS or windows-31j, but the bytes are always cp932.
        _mp("A1VC38T7YXB528", "JP", "Amazon.co.jp", "JPY", "fe", "ja", "cp932", 9, "JST", "ymd_slash"),
        _mp("A39IBJ37TRP1C6", "AU", "Amazon.com.au", "AUD", "fe", "en_GB", offset=10, zone="AEST"),
        _mp("A19VAU5U5O7RUS", "SG", "Amazon.sg", "SGD", "fe", "en_GB", offset=8, zone="SGT"),
    )
}

# The charset label sent in Content-Type, per codec. JP depends on the report type (see documents.py).
CHARSET_LABELS = {"utf-8": "UTF-8", "cp1252": "Cp1252"}
