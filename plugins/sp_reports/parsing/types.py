"""Casting text values to the registry's declared column types, marketplace-aware.

Every cast is vectorised with pyarrow.compute: a whole column is first cast as it is (the common
case: ISO 8601 timestamps, dot decimals), then, if that fails, normalised with regular expressions
and cast again; only the values both attempts reject reach the Python parser (``parse_value``), which
is the reference for what is accepted and says why a value is not. A value nothing accepts becomes
null and is reported as a failure (the caller quarantines it); an empty value is null, not a failure.

Accepted, per type:
* integer  ``-12``, ``+12``, `` 12 ``, ``2.0``, thousands separators of the marketplace (``1,234``;
           ``1.234`` where the decimal separator is a comma).
* decimal  ``1234.56``; EU marketplaces with a decimal comma: ``1.234,56`` and ``12,34`` (a value with
  only dots is read with a decimal dot there, as Amazon's machine-written amounts are); with both
  separators the last one is the decimal separator anywhere. More than 4 decimals are rounded half-even.
* datetime ISO 8601 (``T`` or space, fractions, ``Z`` / ``+09:00`` / ``+0900``), ``2026-11-20 14:03:12 UTC``,
  ``2026/11/20 14:03:12 JST``, ``20.11.2026 14:03:12 MEZ``, ``20/11/2026`` (day first; month first in
  US/CA marketplaces), ``Nov 20, 2026``, date-only values (midnight). Zone abbreviations: ``_ZONES``;
  no zone means UTC. Result: timestamp[us, UTC].
* date     the same layouts; a time part is ignored (the calendar date as written, no zone shift).
* boolean  true/false, yes/no, y/n, 1/0, t/f (any case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from .encoding import DECIMAL_COMMA_MARKETPLACES

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(20, 4),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}
_QUANTUM = Decimal("0.0001")
_MAX_DECIMAL = Decimal(10) ** 16  # decimal128(20, 4): 16 integer digits

# Where 01/02/2026 is January 2nd; everywhere else (UK/FR/IT/ES ...) it is February 1st.
MONTH_FIRST_MARKETPLACES = frozenset({"ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"})  # US, CA

# Zone abbreviations Amazon writes after local times (fixed offsets in hours).
_ZONES: dict[str, float] = {
    "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 1, "IST": 5.5, "WEST": 1,
    "MEZ": 1, "CET": 1, "MET": 1, "MESZ": 2, "CEST": 2, "MEST": 2, "EET": 2, "EEST": 3, "SAST": 2,
    "TRT": 3, "AST": 3, "GST": 4, "SGT": 8, "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11,
    "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5, "EDT": -4, "BRT": -3,
}  # fmt: skip


@dataclass(frozen=True)
class Locale:
    """How a marketplace writes numbers and dates in its flat files."""

    decimal_comma: bool = False
    month_first: bool = False

    @classmethod
    def for_marketplace(cls, marketplace_id: str | None) -> Locale:
        first = (marketplace_id or "").split(",")[0].strip()
        return cls(first in DECIMAL_COMMA_MARKETPLACES, first in MONTH_FIRST_MARKETPLACES)


class CastError(ValueError):
    """A value that is not of its declared type; the message is the quarantine reason."""


# --- vectorised casts --------------------------------------------------------------------------------


def cast_column(
    values: pa.Array, kind: str, locale: Locale, *, empty_is_null: bool = False
) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Cast a string column to ``ARROW_TYPES[kind]``: (typed array, [(row index, reason)] of failures).

    ``empty_is_null``: the caller guarantees there are no empty strings (the flat-file reader makes
    them null already), which saves looking for them."""
    target = ARROW_TYPES[kind]
    if kind == "string":
        return values, []
    if not empty_is_null:
        empty = pc.equal(values, "")
        if pc.any(empty).as_py():
            values = pc.if_else(empty, pa.scalar(None, pa.string()), values)
    if kind == "boolean":
        return _cast_boolean(values)
    attempt = _try_cast(values, target)
    if attempt is not None:
        return attempt, []
    normalised, pattern = _normalise(values, kind, locale)
    accepted = pc.fill_null(pc.match_substring_regex(normalised, pattern), False)
    fast = _try_cast(pc.if_else(accepted, normalised, pa.scalar(None, pa.string())), target)
    if fast is None:  # e.g. 2026-02-30 passes the pattern but not the cast: leave it all to Python
        accepted = pa.repeat(pa.scalar(False), len(values))
        fast = pa.nulls(len(values), target)
    return _python_fallback(values, fast, pc.and_(pc.is_valid(values), pc.invert(accepted)), kind, locale)


def _try_cast(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _python_fallback(
    values: pa.Array, fast: pa.Array, rejected: pa.Array, kind: str, locale: Locale
) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Parse the rejected values in Python and merge them into ``fast``."""
    indices = pc.indices_nonzero(rejected).to_pylist()
    if not indices:
        return fast, []
    texts = values.take(pa.array(indices, pa.int64())).to_pylist()
    parsed: list = []
    failures: list[tuple[int, str]] = []
    for index, text in zip(indices, texts, strict=True):
        try:
            parsed.append(parse_value(text, kind, locale))
        except CastError as e:
            parsed.append(None)
            failures.append((index, str(e)))
    merged = pc.replace_with_mask(fast, rejected, pa.array(parsed, fast.type))
    return merged, failures


_BOOLEAN_WORDS = ["true", "false", "yes", "no", "y", "n", "1", "0", "t", "f"]
_BOOLEAN_VALUES = pa.array([True, False] * 5, pa.bool_())


def _cast_boolean(values: pa.Array) -> tuple[pa.Array, list[tuple[int, str]]]:
    attempt = _try_cast(values, pa.bool_())  # true/false/1/0, any case: the common case, and cheapest
    if attempt is not None:
        return attempt, []
    position = pc.index_in(pc.utf8_lower(values), value_set=pa.array(_BOOLEAN_WORDS))
    fast = _BOOLEAN_VALUES.take(position)
    rejected = pc.and_(pc.is_valid(values), pc.is_null(position))
    return _python_fallback(values, fast, rejected, "boolean", Locale())


# Patterns of what each normalised value must look like before pyarrow casts it.
_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_PATTERNS = {
    "integer": r"^-?\d{1,18}$",
    "decimal": r"^-?\d{1,16}(\.\d{1,4})?$",
    "datetime": _ISO,
    "date": r"^\d{4}-\d{2}-\d{2}$",
}


def _normalise(values: pa.Array, kind: str, locale: Locale) -> tuple[pa.Array, str]:
    """Rewrite the common localised layouts into what pyarrow casts (vectorised)."""
    if kind == "decimal" and locale.decimal_comma:
        values = pc.replace_substring_regex(values, r"^(-?\d+),(\d+)$", r"\1.\2")
    elif kind in ("datetime", "date"):
        values = _normalise_dates(values, locale)
        if kind == "date":
            values = pc.replace_substring_regex(values, _DATE_AND_TIME, r"\1")
        else:
            values = _normalise_times(values)
    return values, _PATTERNS[kind]


# Date layouts rewritten to YYYY-MM-DD (the same rewrites in pyarrow and in Python).
def _date_rewrites(locale: Locale) -> list[tuple[str, str]]:
    return [
        (r"^(\d{4})/(\d{2})/(\d{2})", r"\1-\2-\3"),  # JP 2026/11/20
        (r"^(\d{2})\.(\d{2})\.(\d{4})", r"\3-\2-\1"),  # DE 20.11.2026
        (r"^(\d{2})/(\d{2})/(\d{4})", r"\3-\1-\2" if locale.month_first else r"\3-\2-\1"),
    ]


# A date, with perhaps a time and a zone (ignored for date columns): group 1 is the date.
_DATE_AND_TIME = (
    r"^(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?| [A-Za-z]{1,5})?)?$"
)


def _normalise_dates(values: pa.Array, locale: Locale) -> pa.Array:
    for pattern, replacement in _date_rewrites(locale):
        values = pc.replace_substring_regex(values, pattern, replacement)
    return values


def _normalise_times(values: pa.Array) -> pa.Array:
    values = pc.replace_substring_regex(values, r"^(\d{4}-\d{2}-\d{2}) (\d{2}:)", r"\1T\2")
    # A zone abbreviation becomes its offset; only the abbreviations present are rewritten.
    zones = pc.extract_regex(values, r"[ ](?P<zone>[A-Za-z]{1,5})$").field("zone")
    for zone in pc.unique(zones.drop_null()).to_pylist():
        offset = _ZONES.get(zone.upper())
        if offset is not None:
            values = pc.replace_substring_regex(values, f" {zone}$", _offset_text(offset))
    values = pc.replace_substring_regex(values, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00Z")
    return pc.replace_substring_regex(values, r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)$", r"\1Z")


def _offset_text(hours: float) -> str:
    sign = "-" if hours < 0 else "+"
    minutes = round(abs(hours) * 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --- the Python reference parser ---------------------------------------------------------------------


def parse_value(text: str, kind: str, locale: Locale):
    """One value in Python: the typed value, None for an empty value, or CastError(reason)."""
    s = text.strip()
    if not s:
        return None
    if kind == "integer":
        return _parse_integer(s, locale)
    if kind == "decimal":
        return _parse_decimal(s, locale)
    if kind == "datetime":
        return _parse_datetime(s, locale)
    if kind == "date":
        return _parse_date(s, locale)
    if kind == "boolean":
        word = s.lower()
        if word in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS.index(word) % 2 == 0
        raise CastError("not a boolean (true/false, yes/no, y/n, 1/0)")
    if kind == "string":
        return text
    raise ValueError(f"unknown column type {kind!r}")


_SPACES = "\u00a0\u202f "  # grouping spaces of FR/SE/PL amounts: 1 234,56


def _number_text(s: str, locale: Locale) -> str:
    """``s`` with the grouping separators removed and a ``.`` decimal separator (CastError if malformed)."""
    body = s[1:] if s[:1] in "+-" else s
    sign = "-" if s[:1] == "-" else ""
    if any(c in body for c in _SPACES):
        body = (
            re.sub(f"[{_SPACES}]", "", body) if re.fullmatch(r"\d{1,3}([\u00a0\u202f ]\d{3})+([.,]\d+)?", body) else "x"
        )
    if "," in body and "." in body:  # both: the last one is the decimal separator
        decimal_sep = "," if body.rfind(",") > body.rfind(".") else "."
    elif "," in body:
        decimal_sep = "," if locale.decimal_comma else "."
    else:
        decimal_sep = "."
    group_sep = "." if decimal_sep == "," else ","
    whole, _, fraction = body.partition(decimal_sep)
    if group_sep in whole:
        if not re.fullmatch(rf"\d{{1,3}}(\{group_sep}\d{{3}})+", whole):
            raise CastError(f"not a number: misplaced {group_sep!r}")
        whole = whole.replace(group_sep, "")
    if decimal_sep in fraction or group_sep in fraction:
        raise CastError("not a number")
    return f"{sign}{whole}.{fraction}" if fraction or body.endswith(decimal_sep) else f"{sign}{whole}"


def _parse_integer(s: str, locale: Locale) -> int:
    if locale.decimal_comma and re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+", s):
        s = s.replace(".", "")  # an integer has no decimals: 1.234 is a thousands separator here
    text = _number_text(s, locale)
    if not re.fullmatch(r"-?\d+(\.0*)?", text):
        raise CastError("not an integer")
    value = int(text.split(".")[0])
    if not -(2**63) <= value < 2**63:
        raise CastError("integer out of the int64 range")
    return value


def _parse_decimal(s: str, locale: Locale) -> Decimal:
    text = _number_text(s, locale)
    if not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise CastError("not a decimal number")
    try:
        value = Decimal(text).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise CastError("decimal out of range for decimal(20, 4)") from None
    if abs(value) >= _MAX_DECIMAL:
        raise CastError("decimal out of range for decimal(20, 4)")
    return value


_ZONE_SUFFIX = re.compile(r"^(.*\d)\s+([A-Za-z]{1,5})$")
_DATE_LAYOUTS = ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%b %d, %Y", "%B %d, %Y", "%d %b %Y"]
_TIME_LAYOUTS = ["%H:%M:%S", "%H:%M", "%H:%M:%S.%f", "%I:%M:%S %p", "%I:%M %p"]


def _layouts(locale: Locale) -> list[str]:
    return _DATE_LAYOUTS + (["%m/%d/%Y"] if locale.month_first else ["%d/%m/%Y"])


def _parse_datetime(s: str, locale: Locale) -> datetime:
    zone = None
    match = _ZONE_SUFFIX.match(s)
    if match and match.group(2).upper() not in ("AM", "PM"):
        s, name = match.group(1), match.group(2).upper()
        if name not in _ZONES:
            raise CastError(f"unknown time zone {match.group(2)!r}")
        zone = timezone(timedelta(hours=_ZONES[name]))
    text = s
    for pattern, replacement in _date_rewrites(locale):
        text = re.sub(pattern, replacement, text)
    moment = _iso(text) or _strptime(s, locale)
    if moment is None:
        raise CastError("not a date/time in a known layout")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    elif zone is not None:
        raise CastError("both a UTC offset and a zone abbreviation")
    return moment.astimezone(UTC)


def _parse_date(s: str, locale: Locale) -> date:
    # The calendar date as written: a time part and a zone are ignored, not applied.
    text = s
    for pattern, replacement in _date_rewrites(locale):
        text = re.sub(pattern, replacement, text)
    match = re.match(_DATE_AND_TIME, text)
    if match:
        try:
            return date.fromisoformat(match.group(1))
        except ValueError:
            raise CastError("not a valid date") from None
    moment = _strptime(_ZONE_SUFFIX.sub(r"\1", s), locale)  # Nov 20, 2026 ...
    if moment is None:
        raise CastError("not a date in a known layout")
    return moment.date()


def _iso(s: str) -> datetime | None:
    if not re.match(r"\d{4}-\d{2}-\d{2}", s):  # fromisoformat also takes 20261120, 2026-W47 ...
        return None
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        return None


def _strptime(s: str, locale: Locale) -> datetime | None:
    for layout in _layouts(locale):
        for full in (layout, *(f"{layout} {t}" for t in _TIME_LAYOUTS)):
            try:
                return datetime.strptime(s, full)
            except ValueError:
                continue
    return None


def to_report_dates(values: pa.Array, kind: str, locale: Locale) -> pa.Array:
    """date32 per row from the date column (UTC date of a datetime; the date of a date; parsed from text)."""
    if kind not in ("date", "datetime"):
        values, _ = cast_column(values, "datetime", locale)
        kind = "datetime"
    return values if kind == "date" else values.cast(pa.date32())
