"""Rows out to a BI tool: CSV for spreadsheets, Parquet for everything typed.

CSV is opened by people in Excel, LibreOffice or Google Sheets, which evaluate a cell that
starts like a formula, so text that came from customers or staff (a partner called
"-Partner", a comment "=HYPERLINK(...)") is neutralised as OWASP's CSV Injection page
advises (https://owasp.org/www-community/attacks/CSV_Injection): a text cell whose first
character is = + - @ tab (0x09), carriage return (0x0D) or line feed (0x0A) gets a single
quote in front, which the spreadsheet shows as text. NUL (0x00) is treated the same, as
OWASP ASVS 5.0 requirement 1.2.10 lists it. Only the first character is looked at, as OWASP
says; a cell starting with a space (" =1+2") is left alone, spreadsheets read it as text.
The page's other concern, a separator or quote inside a value starting a new cell, is
handled by the csv module, which quotes any field holding a separator, quote or line break
and doubles the quotes inside it (RFC 4180).

Numbers (int, float, Decimal) are written as numbers, never neutralised, so an NPS of -12
stays -12 and sorts as a number; None is an empty cell; dates and datetimes are ISO 8601.

Parquet is typed (a string column holds strings, not formulas), so it gets no quote
prefixes: the values are written exactly as given.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import os
from collections.abc import Mapping, Sequence
from typing import IO

# pyarrow ships no type information (no py.typed, no stubs): its names are Any to mypy.
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from models.errors import CxloopError

# First characters that make a spreadsheet read a text cell as a formula (see module doc).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


class ExportTypeError(CxloopError, TypeError):
    """A value whose type the export does not know how to write."""


def neutralise(text: str) -> str:
    """text with a leading single quote if its first character would start a formula."""
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def write_csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str], out: IO[str]) -> None:
    """A header line of *columns*, then one line per row with those columns in that order.

    *out* should be opened with newline="" (the csv module writes its own line endings).
    A row without one of the columns raises KeyError; extra keys are ignored.
    """
    writer = csv.writer(out)
    writer.writerow([neutralise(column) for column in columns])
    for row in rows:
        writer.writerow([_csv_cell(row[column]) for column in columns])


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    # bool before int (bool is an int); written as text True/False, which is no formula.
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | decimal.Decimal):
        return value
    # datetime before date (a datetime is a date).
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return neutralise(str(value))


def write_parquet(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    path_or_buffer: str | os.PathLike[str] | IO[bytes],
) -> None:
    """Write *rows* as a Parquet table of *columns*, typed from the Python values.

    Per column: int -> int64, float (or int and float mixed) -> float64, str -> string,
    bool -> bool, date -> date32, timezone-aware datetime -> timestamp('us', tz='UTC'); a
    column that is None in every row (or an empty *rows*) is a string column of nulls.
    Values are written as given, without the CSV's formula neutralisation: Parquet is typed.
    Raises ExportTypeError for a naive datetime, an unknown type, or a column mixing types.
    """
    schema = pa.schema([(column, _arrow_type(column, rows)) for column in columns])
    data = [{column: row[column] for column in columns} for row in rows]
    table = pa.Table.from_pylist(data, schema=schema)
    pq.write_table(table, path_or_buffer)


def _arrow_type(column: str, rows: Sequence[Mapping[str, object]]) -> pa.DataType:
    kinds = {_kind(column, row[column]) for row in rows if row[column] is not None}
    if not kinds:
        return pa.string()
    if kinds == {"int", "float"}:
        return pa.float64()
    if len(kinds) > 1:
        raise ExportTypeError(f"column {column!r} mixes types: {', '.join(sorted(kinds))}")
    return _ARROW_TYPES[kinds.pop()]


_ARROW_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
}


def _kind(column: str, value: object) -> str:
    # Order matters: bool is an int, datetime is a date.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ExportTypeError(f"column {column!r} has a naive datetime; give it a time zone")
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    raise ExportTypeError(f"column {column!r} has a value of unsupported type {type(value)!r}")
