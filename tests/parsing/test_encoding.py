"""Encoding: decided (BOM, label, strict UTF-8, marketplace default), recorded, strict, per line."""

import gzip

import pytest
from parsing_support import DE, FR, JP, UK, US, check_accounting

from sp_reports.parsing.encoding import EncodingChoice, codec_for_label, marketplace_default

HEADER = "sku\tname\n"
JP_TEXT = "①\t髙橋の本～ＷＡＶＥ\n"  # NEC special (①), IBM extension (髙), cp932's ～ (U+FF5E)
EU_TEXT = "A\tCafé Ökonomie – ß 5 € “Zitat”\n"


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf-8"), ("utf8", "utf-8"), ("utf-8", "utf-8"),
        ("Cp1252", "cp1252"), ("windows-1252", "cp1252"), ("CP1252", "cp1252"), ("ISO-8859-1", "cp1252"),
        ("windows-31j", "cp932"), ("Windows-31J", "cp932"), ("Shift_JIS", "cp932"), ("shift-jis", "cp932"),
        ("SJIS", "cp932"), ("MS932", "cp932"), ("cp932", "cp932"), (" x-sjis ", "cp932"),
    ],
)  # fmt: skip
def test_label_spellings(label, codec):
    assert codec_for_label(label) == (codec, None)


@pytest.mark.parametrize("label", [None, "", "  "])
def test_no_label(label):
    assert codec_for_label(label) == (None, None)


@pytest.mark.parametrize("label", ["no-such-charset", "UTF-16", "utf-32le"])
def test_unknown_or_unsupported_labels_are_ignored_with_a_reason(label):
    codec, why = codec_for_label(label)
    assert codec is None and label in why and "ignored" in why


def test_marketplace_defaults():
    assert marketplace_default(JP) == "cp932"
    assert marketplace_default(DE) == marketplace_default(UK) == marketplace_default("A28R8C7NBKEWEA") == "cp1252"
    assert marketplace_default(US) == marketplace_default(None) == marketplace_default("A39IBJ37TRP1C6") == "utf-8"
    assert marketplace_default(f"{DE},{FR}") == "cp1252"  # several marketplaces: the first one's


# --- documents in each encoding ----------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_utf8_with_and_without_bom(parse, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + (HEADER + "A\tCafé crème ✓ 髙橋\n").encode()
    p = parse(data)
    assert p.parse_result.columns == ["sku", "name"]  # the BOM is not part of the first column's name
    assert p.rows() == [{"sku": "A", "name": "Café crème ✓ 髙橋"}]
    assert p.parse_result.encoding == {
        "codec": "utf-8", "label": None, "bom": bom,
        "reason": "UTF-8 byte order mark" if bom else "valid UTF-8",
    }  # fmt: skip
    assert p.main.column("source_line").to_pylist() == [2]


def test_bom_wins_over_the_label(parse):
    p = parse(b"\xef\xbb\xbf" + (HEADER + "A\tCafé\n").encode(), charset="Cp1252", marketplace=DE)
    assert p.parse_result.encoding["codec"] == "utf-8" and p.parse_result.encoding["bom"]
    assert p.parse_result.encoding["label"] == "Cp1252"
    assert p.rows() == [{"sku": "A", "name": "Café"}]


def test_cp1252_with_euro_and_accents(parse):
    p = parse((HEADER + EU_TEXT).encode("cp1252"), charset="Cp1252", marketplace=DE)
    assert p.parse_result.encoding == {"codec": "cp1252", "label": "Cp1252", "bom": False,
                                  "reason": "Content-Type charset Cp1252"}
    assert p.rows() == [{"sku": "A", "name": "Café Ökonomie – ß 5 € “Zitat”"}]


@pytest.mark.parametrize("label", ["windows-31j", "Shift_JIS", "SJIS", None])
def test_cp932_with_nec_and_ibm_extensions(parse, label):
    p = parse((HEADER + JP_TEXT).encode("cp932"), charset=label, marketplace=JP)
    assert p.parse_result.encoding["codec"] == "cp932"
    assert p.rows() == [{"sku": "①", "name": "髙橋の本～ＷＡＶＥ"}]
    if label is None:  # not UTF-8, so the JP marketplace's default
        assert "marketplace A1VC38T7YXB528 default cp932" in p.parse_result.encoding["reason"]


def test_label_spelling_is_recorded_as_given(parse):
    p = parse((HEADER + JP_TEXT).encode("cp932"), charset="windows-31j", marketplace=JP)
    assert p.parse_result.encoding == {"codec": "cp932", "label": "windows-31j", "bom": False,
                                  "reason": "Content-Type charset windows-31j"}


@pytest.mark.parametrize("label", ["UTF-8", "Cp1252", "Shift_JIS", "no-such-charset", None])
@pytest.mark.parametrize("marketplace", [US, DE, JP])
def test_plain_ascii_is_fine_under_any_label(parse, label, marketplace):
    p = parse(b"sku\tname\r\nA\tplain text\r\n", charset=label, marketplace=marketplace)
    assert p.rows() == [{"sku": "A", "name": "plain text"}]
    assert "plain ASCII" in p.parse_result.encoding["reason"]


def test_unknown_label_is_ignored_and_says_so(parse):
    p = parse((HEADER + EU_TEXT).encode("cp1252"), charset="x-klingon", marketplace=DE)
    assert p.parse_result.encoding["codec"] == "cp1252"
    assert p.parse_result.encoding["reason"].startswith("unknown charset label 'x-klingon' ignored; ")
    assert p.rows()[0]["name"].startswith("Café")


# --- labels that contradict the bytes ----------------------------------------------------------------


def test_utf8_label_on_cp1252_bytes(parse):
    p = parse((HEADER + EU_TEXT).encode("cp1252"), charset="UTF-8", marketplace=DE)
    enc = p.parse_result.encoding
    assert enc["codec"] == "cp1252" and enc["label"] == "UTF-8"
    assert enc["reason"].startswith("Content-Type charset UTF-8 contradicts the bytes (not valid utf-8")
    assert enc["reason"].endswith("marketplace A1PA6795UKMFR9 default cp1252")
    assert p.rows() == [{"sku": "A", "name": "Café Ökonomie – ß 5 € “Zitat”"}]


def test_cp1252_label_on_utf8_bytes_is_mojibake(parse):
    p = parse((HEADER + "A\tCafé crème\n").encode(), charset="Cp1252", marketplace=DE)
    enc = p.parse_result.encoding
    assert enc["codec"] == "utf-8"
    assert "mojibake in cp1252, cleanly as utf-8" in enc["reason"]
    assert p.rows() == [{"sku": "A", "name": "Café crème"}]  # not "CafÃ© crÃ¨me"


@pytest.mark.parametrize(
    "text",
    [
        JP_TEXT,  # ～ is 81 60: 0x81 is undefined in cp1252, so the label fails outright
        "A\tテスト\n",  # 83 65 83 58 83 67 reads as "ƒeƒXƒg" in cp1252: valid, but mojibake
        "A\t髙\n",  # FB FC reads as "ûü"
        "A\t①②\n",  # 87 40 87 41 reads as "‡@‡A"
        "A\tＷＡＶＥ\n",  # 82 76 82 60 ... reads as "‚v‚`"
    ],
)
@pytest.mark.parametrize("marketplace", [JP])
def test_cp1252_label_on_cp932_bytes_comes_out_japanese(parse, text, marketplace):
    p = parse((HEADER + text).encode("cp932"), charset="Cp1252", marketplace=marketplace)
    enc = p.parse_result.encoding
    assert enc["codec"] == "cp932" and enc["label"] == "Cp1252"
    assert "contradicts the bytes" in enc["reason"]
    assert p.rows()[0]["name"] == text.split("\t")[1].rstrip("\n")
    assert not any(ch in p.rows()[0]["name"] for ch in "ÃâƒûüÂ‚")


def test_shift_jis_label_on_cp1252_bytes_in_an_eu_marketplace(parse):
    p = parse((HEADER + EU_TEXT).encode("cp1252"), charset="Shift_JIS", marketplace=DE)
    assert p.parse_result.encoding["codec"] == "cp1252"
    assert p.parse_result.encoding["reason"].startswith("Content-Type charset Shift_JIS contradicts the bytes")
    assert p.rows()[0]["name"] == "Café Ökonomie – ß 5 € “Zitat”"


def test_shift_jis_label_on_utf8_bytes(parse):
    p = parse((HEADER + "A\t髙橋の本\n").encode(), charset="Shift_JIS", marketplace=JP)
    assert p.parse_result.encoding["codec"] == "utf-8"
    assert p.rows()[0]["name"] == "髙橋の本"


def test_european_text_that_also_decodes_as_cp932_keeps_its_cp1252_label(parse):
    # "Crème brûlée" happens to be valid cp932 (kanji sandwiched between ASCII letters): the label stands.
    data = (HEADER + "A\tCrème brûlée\n").encode("cp1252")
    data.decode("cp932")  # the premise
    p = parse(data, charset="Cp1252", marketplace=JP)
    assert p.parse_result.encoding["codec"] == "cp1252"
    assert p.rows()[0]["name"] == "Crème brûlée"


def test_the_decision_waits_for_the_first_non_ascii_bytes(parse, monkeypatch):
    """Megabytes of ASCII first: the codec is still chosen on the real (later) non-ASCII bytes."""
    import sp_reports.parsing.flatfile as flatfile

    monkeypatch.setattr(flatfile, "_BLOCK", 4096)  # many blocks in a small document
    monkeypatch.setattr(flatfile, "_READ_CHUNK", 1024)
    ascii_rows = "".join(f"{i}\tplain {i}\n" for i in range(2000))
    data = (HEADER + ascii_rows + JP_TEXT).encode("cp932")
    p = parse(data, charset="Cp1252", marketplace=JP)
    assert p.parse_result.encoding["codec"] == "cp932"
    assert p.rows()[-1] == {"sku": "①", "name": "髙橋の本～ＷＡＶＥ"}
    assert p.main.column("source_line").to_pylist()[-1] == 2002


# --- lines no candidate decodes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "charset", "marketplace", "bad_line", "codec"),
    [
        (b"a\tb\n1\t2\n3\t\xff\xfe\n4\t5\n", None, US, 3, "utf-8"),
        (b"a\tb\n1\t2\n3\t4\n5\t\x81 x\n6\t7\n", "Cp1252", DE, 4, "cp1252"),  # 0x81 is undefined in cp1252
        ("a\tb\n①\t2\n".encode("cp932") + b"3\t\x82\n4\t5\n", "windows-31j", JP, 3, "cp932"),  # cut double byte
        ("a\tb\n①\t2\n".encode("cp932") + b"3\t\x81 \r\n4\t5\n", "Shift_JIS", JP, 3, "cp932"),  # emulator's bad bytes
    ],
)
def test_undecodable_lines_are_quarantined_with_line_and_raw_bytes(parse, data, charset, marketplace, bad_line, codec):
    p = parse(data, charset=charset, marketplace=marketplace)
    assert p.parse_result.encoding["codec"] == codec
    [record] = p.quarantined()
    assert record["kind"] == "row" and record["line"] == bad_line and record["column"] is None
    assert record["reason"].startswith(f"undecodable as {codec} at byte offset 2")
    raw_line = data.split(b"\n")[bad_line - 1]
    assert record["raw"] == raw_line.removesuffix(b"\r")
    assert record["report_id"] == "r1" and record["marketplace_id"] == marketplace
    assert record["report_type"] == "GET_TEST_REPORT"
    assert bad_line not in p.main.column("source_line").to_pylist()
    data_lines = data.count(b"\n") - 1
    assert p.parse_result.rows_read == data_lines and p.parse_result.rows_parsed == data_lines - 1
    assert p.parse_result.rows_quarantined == 1
    check_accounting(p)


def test_undecodable_line_in_a_large_gzip_document(parse):
    lines = [b"a\tb"] + [b"%d\tvalue %d" % (i, i) for i in range(80_000)]
    lines[70_000] = b"bad\t\xc3("  # line 70001
    p = parse(gzip.compress(b"\n".join(lines) + b"\n"))
    [record] = p.quarantined()
    assert record["line"] == 70_001 and record["raw"] == b"bad\t\xc3("
    assert p.parse_result.rows_parsed == 79_999
    check_accounting(p)


def test_a_stray_line_in_another_candidate_charset_is_kept(parse):
    """A UTF-8 document of an EU marketplace with one cp1252 line: cp1252 is still a candidate."""
    data = (HEADER + "A\tCafé\n").encode() + "B\tcrème\n".encode("cp1252")
    p = parse(data, marketplace=DE)
    assert p.parse_result.encoding["codec"] == "utf-8"
    assert p.rows() == [{"sku": "A", "name": "Café"}, {"sku": "B", "name": "crème"}]
    assert p.parse_result.encoding["reason"].endswith("1 line(s) decoded as cp1252")
    assert not p.quarantined()


def test_a_contradicted_label_is_no_fallback(parse):
    """Label Cp1252 overridden by cp932 evidence: a corrupt line is quarantined, not read as cp1252."""
    data = (HEADER + JP_TEXT).encode("cp932") + b"B\t\x82\n"
    p = parse(data, charset="Cp1252", marketplace=JP)
    assert p.parse_result.encoding["codec"] == "cp932"
    assert [r["line"] for r in p.quarantined()] == [3]


def test_undecodable_header_is_a_document_error(parse):
    from sp_reports.parsing import DocumentParseError

    with pytest.raises(DocumentParseError) as err:
        parse(b"\n\nsku\t\xff\xfe\n1\t2\n")
    assert err.value.line == 3 and "header" in str(err.value)


def test_utf16_is_a_document_error(parse):
    from sp_reports.parsing import DocumentParseError

    with pytest.raises(DocumentParseError, match="UTF-16"):
        parse("sku\tname\n".encode("utf-16"))


def test_no_candidate_decodes_the_first_block(parse):
    """US marketplace, cp1252 bytes labelled UTF-8: UTF-8 is all there is; the bad lines are quarantined."""
    data = (HEADER + EU_TEXT + "B\tplain\n").encode("cp1252")
    p = parse(data, charset="UTF-8", marketplace=US)
    assert p.parse_result.encoding["codec"] == "utf-8"
    assert "no candidate decodes every line" in p.parse_result.encoding["reason"]
    assert p.rows() == [{"sku": "B", "name": "plain"}]
    assert [r["line"] for r in p.quarantined()] == [2]
    check_accounting(p)


def test_encoding_choice_is_decided_once():
    choice = EncodingChoice("Cp1252", DE)
    assert not choice.decided and choice.codec == "cp1252"
    choice.decide("Café".encode("cp1252"))
    assert choice.decided and choice.codec == "cp1252" and choice.fallbacks == ("utf-8",)


def test_a_utf8_label_with_a_stray_line_holds(parse):
    data = (HEADER + "A\tCafé\nB\tcrème\n").encode() + "C\tdéjà\n".encode("cp1252")
    p = parse(data, charset="UTF-8", marketplace=DE)
    assert p.parse_result.encoding["codec"] == "utf-8"
    assert p.parse_result.encoding["reason"].startswith("Content-Type charset UTF-8; mostly valid UTF-8 (2 of 3")
    assert [r["name"] for r in p.rows()] == ["Café", "crème", "déjà"]  # the stray line: DE's cp1252


def test_a_label_that_decodes_everything_needs_a_clear_utf8_majority(parse):
    """One line that happens to be valid UTF-8 ("Ã©" in cp1252) does not overturn a Cp1252 label."""
    data = (HEADER + "A\tÃ©\nB\tcrème\n").encode("cp1252")
    p = parse(data, charset="Cp1252", marketplace=US)
    assert p.parse_result.encoding["codec"] == "cp1252"
    assert [r["name"] for r in p.rows()] == ["Ã©", "crème"]
