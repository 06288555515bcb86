"""parse_document dispatches on the report type's format, importing XML/JSON parsers only when needed."""

import os
import subprocess
import sys
import types
from dataclasses import replace

import pytest
from parsing_support import OUT, PLAIN, RAW, US

import sp_reports.parsing as parsing
from sp_reports.parsing import ParseResult, parse_document


@pytest.mark.parametrize(("fmt", "module", "function"), [("xml", "xml_reports", "parse_xml"),
                                                          ("json", "json_reports", "parse_json")])
def test_xml_and_json_go_to_their_modules_with_the_same_arguments(lake, monkeypatch, fmt, module, function):
    calls = []
    fake = types.ModuleType(f"sp_reports.parsing.{module}")
    setattr(fake, function, lambda *args, **kwargs: calls.append((args, kwargs)) or "parse_result")
    monkeypatch.setitem(sys.modules, f"sp_reports.parsing.{module}", fake)
    monkeypatch.setattr(parsing, module, fake, raising=False)
    report = replace(PLAIN, format=fmt, records=("Order",))
    extra = {"report_id": "r1"}
    result = parse_document(lake, RAW, OUT, report=report, marketplace_id=US, charset="UTF-8", compressed=True,
                            extra_columns=extra)
    assert result == "parse_result"
    assert calls == [((lake, RAW, OUT), {"report": report, "marketplace_id": US, "charset": "UTF-8",
                                         "compressed": True, "extra_columns": extra})]


def test_unknown_format(lake):
    with pytest.raises(ValueError, match="unknown document format"):
        parse_document(lake, RAW, OUT, report=replace(PLAIN, format="csv"), marketplace_id=US, charset=None,
                       compressed=None, extra_columns={})


def test_flat_files_need_neither_the_xml_nor_the_json_module(parse):
    assert isinstance(parse(b"a\n1\n").parse_result, ParseResult)
    code = ("import sys; import sp_reports.parsing.flatfile; "
            "assert 'sp_reports.parsing.xml_reports' not in sys.modules; "
            "assert 'sp_reports.parsing.json_reports' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": os.pathsep.join(sys.path)})


def test_the_lake_does_not_import_parsing():
    """Parsing writes staging files through the lake's storage; the lake never imports parsing (what both share,
    column names and the natural key, lives in sp_reports.columns), so there is no import cycle."""
    code = ("import sys, pkgutil, importlib, sp_reports.lake as lake; "
            "[importlib.import_module(m.name) for m in pkgutil.iter_modules(lake.__path__, 'sp_reports.lake.')]; "
            "loaded = sorted(m for m in sys.modules if m.startswith('sp_reports.parsing')); "
            "assert not loaded, loaded; "
            "from sp_reports.parsing.flatfile import parse_tsv")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": os.pathsep.join(sys.path)})
