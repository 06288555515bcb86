"""Casting declared columns: marketplace-aware, vectorised, failures reported (not raised)."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sp_reports.parsing.types import ARROW_TYPES, CastError, Locale, cast_column, parse_value

DOT = Locale()
COMMA = Locale(decimal_comma=True)
US_DATES = Locale(month_first=True)
UTC = dt.timezone.utc


def cast(values, kind, locale=DOT):
    typed, failures = cast_column(pa.array(values, pa.string()), kind, locale)
    assert typed.type == ARROW_TYPES[kind] and len(typed) == len(values)
    return typed.to_pylist(), dict(failures)


def test_locales_per_marketplace():
    assert Locale.for_marketplace("A1PA6795UKMFR9") == Locale(decimal_comma=True)  # DE
    assert Locale.for_marketplace("A13V1IB3VIYZZH").decimal_comma  # FR
    assert Locale.for_marketplace("A1F83G8C2ARO7P") == Locale()  # UK: decimal dot, day first
    assert Locale.for_marketplace("ATVPDKIKX0DER") == Locale(month_first=True)  # US
    assert Locale.for_marketplace("A1VC38T7YXB528") == Locale()  # JP
    assert Locale.for_marketplace("A1PA6795UKMFR9,ATVPDKIKX0DER").decimal_comma  # the first one's


def test_integers():
    values, failures = cast(["1", "-4", "+2", " 3 ", "1,234", "", None, "1.0", "x", "1.5", "99999999999999999999"], "integer")
    assert values == [1, -4, 2, 3, 1234, None, None, 1, None, None, None]
    assert set(failures) == {8, 9, 10}
    assert failures[8] == "not an integer" and "int64" in failures[10]


def test_integers_with_eu_grouping():
    assert cast(["1.234", "12"], "integer", COMMA)[0] == [1234, 12]


@pytest.mark.parametrize(
    ("locale", "text", "value"),
    [
        (DOT, "9.99", "9.99"), (DOT, "1,234.56", "1234.56"), (DOT, "-0.5", "-0.5"), (DOT, ".5", "0.5"),
        (DOT, "1234", "1234"), (DOT, "1e3", "1000"), (DOT, "0.00005", "0.0000"), (DOT, "0.00015", "0.0002"),
        (COMMA, "12,34", "12.34"), (COMMA, "1.234,56", "1234.56"), (COMMA, "-1,5", "-1.5"),
        (COMMA, "1 234,56", "1234.56"), (COMMA, "1\u00a0234,56", "1234.56"),
        (COMMA, "12.34", "12.34"),  # a lone dot in a decimal-comma marketplace: machine-written amount
        (COMMA, "1,234.56", "1234.56"),  # both separators: the last one is the decimal separator
        (DOT, "1.234,56", "1234.56"),
    ],
)  # fmt: skip
def test_decimals(locale, text, value):
    values, failures = cast([text], "decimal", locale)
    assert values == [Decimal(value)] and not failures


@pytest.mark.parametrize(
    ("locale", "text"),
    [(DOT, "12,34"), (DOT, "1,23,4"), (COMMA, "1.23,4"), (DOT, "abc"), (DOT, "NaN"), (DOT, "Infinity"),
     (DOT, "1e30"), (DOT, "12.34.56"), (DOT, "€ 12"), (DOT, "--1")],
)  # fmt: skip
def test_decimal_failures(locale, text):
    values, failures = cast(["1.00", text], "decimal", locale)
    assert values == [Decimal("1"), None] and 1 in failures


DATETIMES = [
    ("2026-11-20T14:03:12+00:00", dt.datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),
    ("2026-11-20T14:03:12Z", dt.datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),
    ("2026-11-20T14:03:12.123-08:00", dt.datetime(2026, 11, 20, 22, 3, 12, 123000, tzinfo=UTC)),
    ("2026-11-20T14:03:12+0900", dt.datetime(2026, 11, 20, 5, 3, 12, tzinfo=UTC)),
    ("2026-11-20 14:03:12 UTC", dt.datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),
    ("2026-11-20 14:03:12 PST", dt.datetime(2026, 11, 20, 22, 3, 12, tzinfo=UTC)),
    ("2026/11/20 14:03:12 JST", dt.datetime(2026, 11, 20, 5, 3, 12, tzinfo=UTC)),
    ("20.11.2026 14:03:12 MEZ", dt.datetime(2026, 11, 20, 13, 3, 12, tzinfo=UTC)),
    ("20.07.2026 14:03:12 MESZ", dt.datetime(2026, 7, 20, 12, 3, 12, tzinfo=UTC)),
    ("20.11.2026 14:03:12 UTC", dt.datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),
    ("2026-11-20 14:03:12", dt.datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),  # no zone: UTC
    ("2026-11-20", dt.datetime(2026, 11, 20, tzinfo=UTC)),
    ("20.11.2026", dt.datetime(2026, 11, 20, tzinfo=UTC)),
    ("2026/11/20", dt.datetime(2026, 11, 20, tzinfo=UTC)),
    (" 2026-11-20T14:03:12Z ", dt.datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),
    ("Nov 20, 2026", dt.datetime(2026, 11, 20, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "value"), DATETIMES)
def test_datetimes_one_by_one(text, value):
    values, failures = cast([text], "datetime")
    assert values == [value] and not failures


def test_datetimes_in_one_column():
    """A column mixing every layout takes the vectorised and the Python paths together."""
    texts = [t for t, _ in DATETIMES] + ["yesterday", "", "2026-02-30", "2026-11-20 25:00:00 UTC",
                                          "2026-11-20 14:03:12 XYZ"]
    values, failures = cast(texts, "datetime")
    assert values[: len(DATETIMES)] == [v for _, v in DATETIMES]
    assert values[len(DATETIMES):] == [None] * 5
    n = len(DATETIMES)
    assert set(failures) == {n, n + 2, n + 3, n + 4} and "unknown time zone" in failures[n + 4]


@pytest.mark.parametrize(
    ("locale", "text", "day"),
    [(DOT, "01/02/2026", dt.date(2026, 2, 1)), (US_DATES, "01/02/2026", dt.date(2026, 1, 2)),
     (DOT, "20/11/2026 14:03:12", dt.date(2026, 11, 20)), (US_DATES, "11/20/2026", dt.date(2026, 11, 20))],
)  # fmt: skip
def test_slash_dates_follow_the_marketplace(locale, text, day):
    values, _ = cast([text], "datetime", locale)
    assert values[0].date() == day
    assert cast([text], "date", locale)[0] == [day]


def test_day_first_rejects_month_first_dates():
    assert cast(["11/20/2026"], "datetime", DOT)[1]


def test_dates_keep_the_calendar_date_as_written():
    values, failures = cast(["2026-11-20", "2026-11-20T23:30:00-08:00", "20.11.2026", "2026/11/20 01:00:00 JST",
                             "2026-11-20 14:03:12 UTC", "x", ""], "date")
    assert values == [dt.date(2026, 11, 20)] * 5 + [None, None]
    assert set(failures) == {5}


def test_booleans():
    values, failures = cast(["true", "FALSE", "Yes", "no", "Y", "n", "1", "0", " true ", "", "maybe"], "boolean")
    assert values == [True, False, True, False, True, False, True, False, True, None, None]
    assert set(failures) == {10}


def test_strings_are_untouched():
    assert cast(["", " x ", None], "string") == (["", " x ", None], {})


def test_parse_value_reports_reasons():
    with pytest.raises(CastError, match="not a boolean"):
        parse_value("maybe", "boolean", DOT)
    assert parse_value("  ", "decimal", DOT) is None


def test_large_column_stays_vectorised(monkeypatch):
    """Clean values never reach the Python parser."""
    import sp_reports.parsing.types as types

    calls = []
    monkeypatch.setattr(types, "parse_value", lambda *a: calls.append(a))
    values = pa.array([f"2026-11-{1 + i % 28:02d} 10:00:00 UTC" for i in range(10_000)])
    typed, failures = cast_column(values, "datetime", DOT)
    assert typed.null_count == 0 and not failures and not calls
    typed, _ = cast_column(pa.array([f"{i},{i % 100:02d}" for i in range(10_000)]), "decimal", COMMA)
    assert typed.null_count == 0 and not calls


# --- the vectorised paths agree with the Python reference --------------------------------------------

_digits = st.text("0123456789", min_size=1, max_size=6)
_number_texts = st.one_of(
    st.builds(lambda a, b, s: f"{s}{a}.{b}", _digits, _digits, st.sampled_from(["", "-", "+"])),
    st.builds(lambda a, b: f"{a},{b}", _digits, _digits),
    st.builds(lambda a, b, c: f"{a}.{b},{c}", _digits, _digits, _digits),
    st.text("0123456789.,-+e ", max_size=10),
)
_date_texts = st.builds(
    lambda y, m, d, h, mi, s, layout, zone: layout.format(y=y, m=m, d=d, h=h, mi=mi, s=s) + zone,
    st.integers(1990, 2040), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}", "{y:04d}-{m:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}",
                     "{y:04d}/{m:02d}/{d:02d} {h:02d}:{mi:02d}:{s:02d}", "{d:02d}.{m:02d}.{y:04d} {h:02d}:{mi:02d}:{s:02d}",
                     "{d:02d}/{m:02d}/{y:04d}", "{y:04d}-{m:02d}-{d:02d}", "{d:02d}.{m:02d}.{y:04d}"]),
    st.sampled_from(["", "Z", "+00:00", "-08:00", "+0530", " UTC", " JST", " MEZ", " MESZ", " PST", " XYZ", " utc"]),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(
        st.one_of(_number_texts, _date_texts, st.text("0123456789-:TZ+. /", max_size=25),
                  st.sampled_from(["true", "no", "", "Y", "x", "2026-11-20T14", "2026-11-20T14:03Z"])),
        max_size=12,
    ),
    kind=st.sampled_from(["integer", "decimal", "datetime", "date", "boolean"]),
    locale=st.sampled_from([DOT, COMMA, US_DATES]),
)
def test_vectorised_cast_agrees_with_the_python_reference(texts, kind, locale):
    typed, failures = cast_column(pa.array(texts, pa.string()), kind, locale)
    failed = dict(failures)
    for i, text in enumerate(texts):
        try:
            expected = parse_value(text, kind, locale)
        except CastError:
            expected = None
            assert i in failed, (text, typed[i])
        else:
            assert i not in failed, (text, failed.get(i))
        got = typed[i].as_py()
        if isinstance(expected, dt.datetime):
            assert got == expected, text
        else:
            assert got == expected, (text, got, expected)
