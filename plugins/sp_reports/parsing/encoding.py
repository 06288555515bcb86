"""Which text encoding a document is in, decided once and recorded; strict decoding line by line.

Candidates, in order (docs/parsing.md): a byte order mark, the Content-Type charset label, strict
UTF-8, the marketplace's default (JP cp932, classic EU marketplaces cp1252, others UTF-8).

The decision needs evidence: plain ASCII decodes identically under every candidate, so it is taken
on the first block of the document that holds a non-ASCII byte (the header block, or later). Blocks
are a few MB, plenty for the checks below, and taking it there (not on a fixed-size sample) means a
document whose first megabytes are ASCII is still judged on its real bytes.

A label is overridden when it contradicts those bytes:
* it does not decode them strictly (e.g. UTF-8 on cp1252 bytes), or
* it decodes them into mojibake while another candidate decodes them cleanly:
  - valid UTF-8 with multi-byte sequences wins over any other label: text in a legacy charset is
    practically never valid UTF-8 by accident, while UTF-8 read as cp1252 gives "CafÃ©";
  - cp932 against a single-byte charset (cp1252): each reading is scored (``_japanese_score``,
    ``_european_score``); cp932 read as cp1252 gives runs like "ƒeƒXƒg" or "‚±‚ñ", European text
    read as cp932 gives lone kanji sandwiched between ASCII letters ("Cr鐃e"). The label stands
    unless its reading scores low while the other's scores high.

After the decision every line is decoded strictly with the chosen codec; a line that fails is tried
with the other candidates still standing (a contradicted label is not one of them), so a UTF-8 EU
document with one cp1252 line keeps the line. A line no candidate decodes is quarantined.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

UTF8 = "utf-8"
UTF8_BOM = b"\xef\xbb\xbf"
# What a line handled apart (undecodable, or odd for pyarrow) is replaced with: a blank line that is
# still a line for pyarrow when it is the last one and has no newline (an empty one would vanish).
BLANKED = b"\t"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

JP_MARKETPLACES = frozenset({"A1VC38T7YXB528"})
# Marketplaces whose localised flat files write a decimal comma (UK and IE write a dot).
DECIMAL_COMMA_MARKETPLACES = frozenset(
    {
        "A1PA6795UKMFR9",  # DE
        "A13V1IB3VIYZZH",  # FR
        "APJ6JRA9NG5V4",  # IT
        "A1RKKUPIHCS9HS",  # ES
        "A1805IZSGTT6HS",  # NL
        "AMEN7PMS3EDWL",  # BE
        "A2NODRKZP88ZB9",  # SE
        "A1C3SOZRARQ6R3",  # PL
    }
)
# Amazon serves the classic EU marketplaces' flat files in Cp1252: those above, UK and IE.
CP1252_MARKETPLACES = DECIMAL_COMMA_MARKETPLACES | {"A1F83G8C2ARO7P", "A28R8C7NBKEWEA"}

# Spellings Amazon (and HTTP in general) uses, keyed by the label lower-cased without punctuation.
_LABELS = {
    "utf8": UTF8,
    "cp1252": "cp1252",
    "windows1252": "cp1252",
    "xcp1252": "cp1252",
    # WHATWG: browsers read latin-1 / ascii labels as windows-1252, a superset of both.
    "iso88591": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "usascii": "cp1252",
    "ascii": "cp1252",
    # Amazon JP writes cp932 (Windows-31J) whatever it calls it: a superset of Shift_JIS (①, ～, 髙 ...).
    "cp932": "cp932",
    "ms932": "cp932",
    "windows31j": "cp932",
    "cswindows31j": "cp932",
    "shiftjis": "cp932",
    "sjis": "cp932",
    "xsjis": "cp932",
    "csshiftjis": "cp932",
    "mskanji": "cp932",
}
_SINGLE_BYTE = frozenset({"cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251", "cp1254", "cp1257"})


def marketplace_default(marketplace_id: str | None) -> str:
    """The codec Amazon uses for the marketplace's flat files (for several ids: the first one's)."""
    first = (marketplace_id or "").split(",")[0].strip()
    if first in JP_MARKETPLACES:
        return "cp932"
    if first in CP1252_MARKETPLACES:
        return "cp1252"
    return UTF8


def codec_for_label(label: str | None) -> tuple[str | None, str | None]:
    """``(codec, None)`` for a usable charset label, ``(None, why)`` for one that is ignored, ``(None, None)`` for none."""
    if label is None or not label.strip():
        return None, None
    key = re.sub(r"[^a-z0-9]", "", label.lower())
    if key in _LABELS:
        return _LABELS[key], None
    try:
        name = codecs.lookup(label.strip()).name
    except LookupError:
        return None, f"unknown charset label {label!r} ignored"
    # Lines are split on the byte 0x0A before decoding: only ASCII-compatible codecs allow that.
    if name.startswith(("utf-16", "utf-32", "utf-7")) or "\t\r\n".encode(name) != b"\t\r\n":
        return None, f"charset label {label!r} ({name}) is not supported and was ignored"
    return ("cp932" if name == "shift_jis" else name), None


@dataclass
class EncodingChoice:
    """The document's encoding: decided on the first non-ASCII block, recorded in the manifest."""

    label: str | None  # the Content-Type charset label as given
    marketplace_id: str | None
    codec: str = UTF8
    bom: bool = False
    reason: str = ""
    decided: bool = False
    fallbacks: tuple[str, ...] = ()  # codecs tried, in order, on a line the chosen codec does not decode
    fallback_lines: dict[str, int] = field(default_factory=dict)  # lines decoded by a fallback codec

    def __post_init__(self) -> None:
        self.label_codec, self._label_problem = codec_for_label(self.label)
        self.default = marketplace_default(self.marketplace_id)
        # Until evidence arrives: what an all-ASCII document is recorded as.
        self.codec = self.label_codec or UTF8
        self.reason = self._with_label_note("plain ASCII: every candidate decodes it")
        self.fallbacks = self._candidates(exclude=self.codec)

    def _candidates(self, exclude: str | None = None, *, with_label: bool = True) -> tuple[str, ...]:
        ordered = ([self.label_codec] if with_label and self.label_codec else []) + [UTF8, self.default]
        return tuple(c for c in dict.fromkeys(ordered) if c != exclude)

    def _with_label_note(self, reason: str) -> str:
        if self.label_codec:
            return f"Content-Type charset {self.label}; {reason}"
        return f"{self._label_problem}; {reason}" if self._label_problem else reason

    def start(self, head: bytes | bytearray) -> int:
        """Look at the document's first bytes; returns the length of a UTF-8 BOM to skip (0 if none)."""
        if head.startswith(UTF8_BOM):
            self.codec, self.bom, self.decided = UTF8, True, True
            self.reason = "UTF-8 byte order mark"
            # The BOM overrides the label; a line that is not UTF-8 may still be in the marketplace's charset.
            self.fallbacks = tuple(c for c in (self.default,) if c != UTF8)
            return len(UTF8_BOM)
        if head.startswith(_UTF16_BOMS):
            from .result import DocumentParseError

            raise DocumentParseError("UTF-16 documents (byte order mark FF FE / FE FF) are not supported")
        return 0

    def decide(self, block: bytes | bytearray) -> None:
        """Choose the codec on a block holding non-ASCII bytes (a run of complete lines)."""
        self.decided = True
        candidates = self._candidates()
        errors = {c: _first_error(block, c) for c in candidates}
        label = self.label_codec
        # UTF-8 validates itself: if the non-ASCII lines are (mostly) valid UTF-8, the document is UTF-8
        # and any other reading of those lines is mojibake; the other lines are strays.
        if errors[UTF8] is None:
            valid, invalid = 1, 0
            utf8_why = "valid UTF-8"
        else:
            valid, invalid = _utf8_lines(block)
            utf8_why = f"mostly valid UTF-8 ({valid} of {valid + invalid} non-ASCII lines)"
        if label and errors[label] is None:
            # A label that decodes everything gives way to UTF-8 only on a clear majority.
            utf8_wins = label != UTF8 and valid > invalid
            cleaner = UTF8 if utf8_wins else self._cleaner_than(block, label, candidates, errors)
            if cleaner is None:
                self._choose(label, f"Content-Type charset {self.label}", with_label=True)
            else:
                self._choose(
                    cleaner,
                    f"Content-Type charset {self.label} contradicts the bytes (they read as "
                    f"mojibake in {label}, cleanly as {cleaner})",
                    with_label=False,
                )
            return
        if label == UTF8 and valid >= invalid:  # the label holds for most lines: not contradicted
            note = f"Content-Type charset {self.label}; "
        elif label:
            note = f"Content-Type charset {self.label} contradicts the bytes ({errors[label]}); "
        else:
            note = f"{self._label_problem}; " if self._label_problem else ""
        if valid >= invalid:
            self._choose(UTF8, note + utf8_why, with_label=False)
            return
        for codec in candidates:
            if errors[codec] is None:
                self._choose(codec, f"{note}marketplace {self.marketplace_id} default {codec}", with_label=False)
                return
        # No candidate decodes every line: the one failing the fewest lines, then reading the others
        # most cleanly, then the candidate order (label first). The lines it cannot decode go through
        # the fallbacks; a label that lost is not one of them.
        bad = {c: _undecodable_lines(block, c) for c in candidates}
        clean = {c: _cleanliness(block, c) for c in candidates}
        best = min(candidates, key=lambda c: (len(bad[c]), -clean[c], candidates.index(c)))
        tried = ", ".join(f"{c}: {len(bad[c])} undecodable line(s)" for c in candidates)
        note = f"Content-Type charset {self.label}; " if label else note
        self._choose(best, f"{note}no candidate decodes every line ({tried}); using {best}", with_label=best == label)

    def _choose(self, codec: str, reason: str, *, with_label: bool) -> None:
        self.codec, self.reason = codec, reason
        self.fallbacks = self._candidates(exclude=codec, with_label=with_label)

    @staticmethod
    def _cleaner_than(block: bytes | bytearray, label: str, candidates: tuple[str, ...], errors: dict) -> str | None:
        """cp932 against a single-byte charset, when both decode the block: the one that is not mojibake."""
        for alt in candidates:
            pair = {label, alt}
            if errors[alt] is not None or "cp932" not in pair or not pair & _SINGLE_BYTE:
                continue
            single = alt if alt != "cp932" else label
            japanese = _japanese_score(block.decode("cp932"))
            european = _european_score(block.decode(single))
            if alt == "cp932" and japanese >= 0.8 and european < 0.5:
                return alt
            if alt == single and european >= 0.8 and japanese < 0.5:
                return alt
        return None

    def as_dict(self) -> dict:
        reason = self.reason
        if self.fallback_lines:
            reason += "; " + ", ".join(f"{n} line(s) decoded as {c}" for c, n in self.fallback_lines.items())
        return {"codec": self.codec, "label": self.label, "bom": self.bom, "reason": reason}


def _first_error(block: bytes | bytearray, codec: str) -> str | None:
    try:
        block.decode(codec)
    except UnicodeDecodeError as e:
        line = block.count(b"\n", 0, e.start) + 1
        return f"not valid {codec}: byte 0x{block[e.start]:02X} in line {line} of the block"
    return None


def _undecodable_lines(block: bytes | bytearray, codec: str) -> list[bytes | bytearray]:
    bad = []
    for line in block.split(b"\n"):
        try:
            line.decode(codec)
        except UnicodeDecodeError:
            bad.append(line)
    return bad


def _utf8_lines(block: bytes | bytearray) -> tuple[int, int]:
    """(non-ASCII lines that are valid UTF-8, lines that are not); called when some line is not."""
    valid = invalid = 0
    for line in block.split(b"\n"):
        if line.isascii():
            continue
        try:
            line.decode(UTF8)
            valid += 1
        except UnicodeDecodeError:
            invalid += 1
    return valid, invalid


def _cleanliness(block: bytes | bytearray, codec: str) -> float:
    """How much the lines ``codec`` decodes look like real text in it (0..1; see the scores below)."""
    lines = []
    for line in block.split(b"\n"):
        try:
            lines.append(line.decode(codec))
        except UnicodeDecodeError:
            pass
    text = "\n".join(lines)
    if text.isascii():
        return 0.0  # no evidence either way
    if codec == UTF8:
        return 1.0
    if codec == "cp932":
        return _japanese_score(text)
    return _european_score(text) if codec in _SINGLE_BYTE else 0.5


# --- mojibake scores ---------------------------------------------------------------------------------
# Characters cp932's double-byte codes give real Japanese text: kana, CJK ideographs and symbols,
# full-width forms, circled numbers (①), and JIS X 0208's Greek, Cyrillic, box drawing and symbols.
_JAPANESE = (
    "\u3000-\u30ff\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60\uffe0-\uffe5\u2460-\u24ff\u3200-\u33ff"
    "\u2010-\u2312\u2500-\u257f\u25a0-\u266f\u0391-\u03c9\u0401-\u0451\u00a7\u00a8\u00b0\u00b1\u00b4\u00b6\u00d7\u00f7"
)
_HALFWIDTH_KATAKANA = "\uff61-\uff9f"  # single bytes A1-DF in cp932: neutral (accented capitals in cp1252)
_JP_ANY = re.compile(f"[^\\x00-\\x7f{_HALFWIDTH_KATAKANA}]")
_JP_OK = re.compile(f"[{_JAPANESE}]")
# A lone ideograph between two ASCII letters is how European text read as cp932 looks ("Cr鐃e").
_JP_SANDWICHED = re.compile(f"(?<=[A-Za-z])[{_JAPANESE}](?=[A-Za-z])")


def _japanese_score(text: str) -> float:
    """Share of non-ASCII characters that look like real Japanese text (1.0 = all)."""
    total = len(_JP_ANY.findall(text))
    if not total:
        return 0.0
    return (len(_JP_OK.findall(text)) - len(_JP_SANDWICHED.findall(text))) / total


# Letters of European languages in cp1252, and the punctuation European text uses. Left out on purpose:
# ƒ ‚ † ‡ ˆ ‰ ‹ › ˜ ¦ ¨ ¬ ¯ ¸ ¹ º ª ¤ ¢ ± ¶ ¥ and friends, which cp1252 gives for cp932 lead bytes.
_EU_LETTERS = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
_EU_LETTER = re.compile(f"[{_EU_LETTERS}]")
# An accented letter next to another one ("ûü", "Ã¼") is rare in European words, common in mojibake.
_EU_CLUSTERED_LETTER = re.compile(f"(?<=[{_EU_LETTERS}])[{_EU_LETTERS}]|[{_EU_LETTERS}](?=[{_EU_LETTERS}])")
_EU_PUNCT = re.compile(
    "[\u20ac\u2013\u2014\u2018\u2019\u201c\u201d\u201e\u2026\u2022\u2122\u00b0\u00a9\u00ae\u00ab\u00bb"
    "\u00a3\u00a7\u00b5\u00b2\u00b3\u00bd\u00bc\u00be\u00bf\u00a1\u00b7\u00b4\u00a0]"
)
_NON_ASCII = re.compile("[^\\x00-\\x7f]")


def _european_score(text: str) -> float:
    """Share of non-ASCII characters that look like real European text (1.0 = all)."""
    total = len(_NON_ASCII.findall(text))
    if not total:
        return 0.0
    good = len(_EU_LETTER.findall(text)) - len(_EU_CLUSTERED_LETTER.findall(text)) + len(_EU_PUNCT.findall(text))
    return good / total


@dataclass
class DecodedBlock:
    data: bytes | bytearray  # UTF-8; an undecodable line is replaced by BLANKED so that line numbers stay put
    bad: list[tuple[int, str, bytes | bytearray]]  # (0-based line in the block, reason, the line's bytes)


def decode_block(block: bytes | bytearray, choice: EncodingChoice) -> DecodedBlock:
    """Strictly transcode a run of complete lines to UTF-8 (fast path: the whole block at once)."""
    if block.isascii():
        return DecodedBlock(block, [])
    codec = choice.codec
    try:
        text = block.decode(codec)
    except UnicodeDecodeError:
        return _decode_lines(block, choice)
    return DecodedBlock(block if codec == UTF8 else text.encode(UTF8), [])


def _decode_lines(block: bytes | bytearray, choice: EncodingChoice) -> DecodedBlock:
    """Slow path for a block with a line the chosen codec does not decode: line by line, with fallbacks."""
    out: list[bytes] = []
    bad: list[tuple[int, str, bytes | bytearray]] = []
    lines: Sequence[bytes | bytearray] = block.split(b"\n")
    for index, line in enumerate(lines):
        try:
            out.append(line.decode(choice.codec).encode(UTF8))
            continue
        except UnicodeDecodeError as e:
            error = e
        for codec in choice.fallbacks:
            try:
                out.append(line.decode(codec).encode(UTF8))
            except UnicodeDecodeError:
                continue
            choice.fallback_lines[codec] = choice.fallback_lines.get(codec, 0) + 1
            break
        else:
            reason = f"undecodable as {choice.codec} at byte offset {error.start} (0x{line[error.start]:02X})"
            if choice.fallbacks:
                reason += f"; nor as {', '.join(choice.fallbacks)}"
            bad.append((index, reason, line[:-1] if line.endswith(b"\r") else line))
            out.append(BLANKED)
    return DecodedBlock(b"\n".join(out), bad)
