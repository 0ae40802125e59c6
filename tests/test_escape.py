"""analyzer.report.escape: the one rule for text people read, and its CSV, Markdown and HTML additions."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.report.escape import clip, csv_cell, html_text, markdown_cell, text
from analyzer.report.render import render


@pytest.mark.parametrize("value, shown", [
    ("web.emojivoto", "web.emojivoto"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("a\r\nb", "a\\x0d\\x0ab"),
    ("a\x00b\x7f", "a\\x00b\\x7f"),
    ("a\x9bb", "a\\x9bb"),  # C1 CSI
    ("a\u202eb\u200bc\u2028d", "a\\u202eb\\u200bc\\u2028d"),  # bidi override, zero-width space, line separator
    ("a\U000e0001b", "a\\U000e0001b"),  # a tag character
    ("tab\there", "tab\\x09here"),
    ("naïve 日本", "naïve 日本"),  # printable non-ASCII stays
    ("already \\x1b escaped", "already \\x1b escaped"),  # the backslash is kept: no double escaping
    (b"a\xff\xfeb", "a\\xff\\xfeb"),  # invalid UTF-8 from bytes
    ("a\udcffb", "a\\xffb"),  # ... or smuggled in as a surrogate escape
    (None, ""),
    (8080, "8080"),
])
def test_text(value, shown):
    assert text(value) == shown


@given(st.text())
def test_text_is_always_printable_and_encodable(value):
    shown = text(value)
    assert shown.isprintable()
    shown.encode("utf-8")  # no lone surrogate survives


def test_a_64_kib_value_is_escaped_in_linear_time_and_clipped_for_the_table():
    value = "\x1b" * 65536
    assert len(text(value)) == 4 * 65536
    assert clip(text(value), 90) == "\\x1b" * 21 + "\\x1..."
    assert len(clip(text(value), 90)) == 90


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "\\x09=1"), ("\r=1", "\\x0d=1"),  # already inert once the control character is visible
    ("web", "web"), ("a=b", "a=b"), (-1, -1), (True, True), (None, ""), (2.5, 2.5),
])
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_csv_rows_stay_rows():
    rows = [{"sni": "a\r\nb,\"c\"", "n": 1}, {"sni": "=cmd|' /C calc'!A0", "n": 2}]
    out = render(rows, ("sni", "n"), "csv")
    assert out.count("\n") == 3
    assert list(csv.reader(io.StringIO(out))) == [["sni", "n"], ["a\\x0d\\x0ab,\"c\"", "1"], ["'=cmd|' /C calc'!A0", "2"]]


@pytest.mark.parametrize("value, cell", [
    ("web-7c8", "web-7c8"),
    ("a|b", "a\\|b"),
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
    ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
    ("![i](x)", "\\!\\[i\\](x)"),
    ("http://evil.example/a_b", "http\\://evil.example/a\\_b"),
    ("www.evil.example", "www\\.evil.example"),
    ("WWW.EVIL.EXAMPLE", "WWW\\.EVIL.EXAMPLE"),
    ("me@evil.example", "me\\@evil.example"),
    ("*x* `y` ~z~ $m$", "\\*x\\* \\`y\\` \\~z\\~ \\$m\\$"),
    ("&lt; \\", "\\&lt; \\\\"),
    ("10:00:00 :8080", "10:00:00 :8080"),
])
def test_markdown_cell(value, cell):
    assert markdown_cell(value) == cell


def test_html_text():
    assert html_text("<b x=\"1\">\x1b</b>") == "&lt;b x=&quot;1&quot;&gt;\\x1b&lt;/b&gt;"
