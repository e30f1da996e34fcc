"""CSV (with formula neutralisation) and Parquet export of rows (models/export.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.export import FORMULA_TRIGGERS, ExportTypeError, write_csv, write_parquet

# OWASP, "CSV Injection", https://owasp.org/www-community/attacks/CSV_Injection: no cell may
# begin with = + - @ tab CR LF; OWASP ASVS 5.0 V1.2.10 adds NUL.
OWASP_TRIGGERS = ["=", "+", "-", "@", "\t", "\r", "\n", "\0"]


def csv_text(rows: list[dict[str, object]], columns: list[str]) -> str:
    out = io.StringIO(newline="")
    write_csv(rows, columns, out)
    return out.getvalue()


def csv_cells(rows: list[dict[str, object]], columns: list[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_text(rows, columns), newline="")))


# --- CSV ----------------------------------------------------------------------------------


def test_csv_round_trip_of_every_kind_of_value() -> None:
    columns = ["partner", "nps", "share", "exact", "missing", "day", "at", "flag"]
    rows: list[dict[str, object]] = [
        {
            "partner": "Acme, Inc.",
            "nps": -12,
            "share": 0.25,
            "exact": Decimal("-1.50"),
            "missing": None,
            "day": dt.date(2024, 3, 4),
            "at": dt.datetime(2024, 3, 4, 9, 30, tzinfo=dt.UTC),
            "flag": True,
            "ignored": "extra keys are not written",
        },
        {
            "partner": 'say "hi"',
            "nps": 40,
            "share": 1e-7,
            "exact": Decimal(3),
            "missing": None,
            "day": dt.date(2024, 12, 30),
            "at": dt.datetime(2024, 12, 30, 23, 59, 59, 123456, tzinfo=ZoneInfo("Asia/Tokyo")),
            "flag": False,
        },
    ]
    assert csv_cells(rows, columns) == [
        columns,
        [
            "Acme, Inc.",
            "-12",
            "0.25",
            "-1.50",
            "",
            "2024-03-04",
            "2024-03-04T09:30:00+00:00",
            "True",
        ],
        [
            'say "hi"',
            "40",
            "1e-07",
            "3",
            "",
            "2024-12-30",
            "2024-12-30T23:59:59.123456+09:00",
            "False",
        ],
    ]


@pytest.mark.parametrize("trigger", OWASP_TRIGGERS)
def test_csv_each_dangerous_first_character_is_neutralised(trigger: str) -> None:
    text = trigger + "HYPERLINK(1)"
    assert csv_cells([{"comment": text}], ["comment"])[1] == ["'" + text]


def test_csv_trigger_list_is_the_owasp_list() -> None:
    assert sorted(FORMULA_TRIGGERS) == sorted(OWASP_TRIGGERS)


def test_csv_partner_named_minus_something_is_neutralised() -> None:
    assert csv_cells([{"partner": "-Partner"}], ["partner"])[1] == ["'-Partner"]


def test_csv_negative_numbers_stay_numbers() -> None:
    text = csv_text(
        [{"nps": -12, "delta": -3.5, "exact": Decimal("-0.25")}], ["nps", "delta", "exact"]
    )
    assert text.splitlines()[1] == "-12,-3.5,-0.25"


def test_csv_a_number_given_as_text_is_text_and_is_neutralised() -> None:
    # Only real numbers are trusted; "-12" as a string could be anything a user typed.
    assert csv_cells([{"note": "-12"}], ["note"])[1] == ["'-12"]


def test_csv_trigger_in_the_middle_is_left_alone() -> None:
    assert csv_cells([{"x": "a=b", "y": "x-y@z"}], ["x", "y"])[1] == ["a=b", "x-y@z"]


def test_csv_leading_space_is_not_neutralised() -> None:
    # OWASP names the first character only; a spreadsheet reads " =1+2" as text.
    assert csv_cells([{"x": " =1+2"}], ["x"])[1] == [" =1+2"]


@pytest.mark.parametrize(
    ("cell", "escaped"),
    [
        # The two examples in OWASP's "CSV Injection" page: a separator or quote inside the
        # value must not start a new cell. The csv module's quoting does exactly that.
        ('=1+2";=1+2', '"\'=1+2"";=1+2"'),
        ("=1+2'\" ;,=1+2", '"\'=1+2\'"" ;,=1+2"'),
    ],
)
def test_csv_owasp_examples_escape_exactly_as_published(cell: str, escaped: str) -> None:
    assert csv_text([{"c": cell}], ["c"]).splitlines()[1] == escaped


def test_csv_header_is_neutralised_too() -> None:
    assert csv_cells([], ["=cmd", "nps"]) == [["'=cmd", "nps"]]


def test_csv_empty_rows_is_just_the_header() -> None:
    assert csv_text([], ["a", "b"]) == "a,b\r\n"


def test_csv_missing_column_is_an_error() -> None:
    with pytest.raises(KeyError, match="nps"):
        csv_text([{"partner": "x"}], ["partner", "nps"])


@given(st.text())
def test_csv_no_text_cell_starts_with_a_trigger(text: str) -> None:
    cells = csv_cells([{"c": text}], ["c"])
    assert len(cells) == 2
    (written,) = cells[1]
    if text.startswith(tuple(OWASP_TRIGGERS)):
        assert written == "'" + text
    else:
        assert written == text
    assert not written.startswith(tuple(OWASP_TRIGGERS))


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_csv_integers_round_trip_unchanged(number: int) -> None:
    assert csv_cells([{"n": number}], ["n"])[1] == [str(number)]


# --- Parquet ------------------------------------------------------------------------------


def parquet_round_trip(rows: list[dict[str, object]], columns: list[str]) -> pa.Table:
    buffer = io.BytesIO()
    write_parquet(rows, columns, buffer)
    buffer.seek(0)
    return pq.read_table(buffer)


def test_parquet_round_trip_with_types() -> None:
    columns = ["partner", "nps_n", "nps", "flag", "period_start", "updated_at", "empty"]
    rows: list[dict[str, object]] = [
        {
            "partner": "=not a formula here",
            "nps_n": 40,
            "nps": -12.5,
            "flag": True,
            "period_start": dt.date(2024, 3, 4),
            "updated_at": dt.datetime(2024, 3, 4, 9, 30, 0, 123456, tzinfo=dt.UTC),
            "empty": None,
        },
        {
            "partner": "",
            "nps_n": 0,
            "nps": None,
            "flag": False,
            "period_start": dt.date(2024, 3, 11),
            "updated_at": dt.datetime(2024, 3, 11, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam")),
            "empty": None,
        },
    ]
    table = parquet_round_trip(rows, columns)
    assert table.schema == pa.schema(
        [
            ("partner", pa.string()),
            ("nps_n", pa.int64()),
            ("nps", pa.float64()),
            ("flag", pa.bool_()),
            ("period_start", pa.date32()),
            ("updated_at", pa.timestamp("us", tz="UTC")),
            ("empty", pa.string()),
        ]
    )
    read = table.to_pylist()
    # Equal values, and text exactly as given: no quote prefix in Parquet.
    assert read == rows
    assert read[0]["partner"] == "=not a formula here"
    # The Amsterdam time comes back as the same instant in UTC.
    assert read[1]["updated_at"] == dt.datetime(2024, 3, 11, 9, 0, tzinfo=dt.UTC)
    assert read[1]["updated_at"].utcoffset() == dt.timedelta(0)


def test_parquet_empty_rows_gives_an_empty_table_of_string_columns() -> None:
    table = parquet_round_trip([], ["a", "b"])
    assert table.num_rows == 0
    assert table.schema == pa.schema([("a", pa.string()), ("b", pa.string())])


def test_parquet_ints_and_floats_in_one_column_are_float64() -> None:
    table = parquet_round_trip([{"x": 1}, {"x": 2.5}], ["x"])
    assert table.schema.field("x").type == pa.float64()
    assert table.column("x").to_pylist() == [1.0, 2.5]


def test_parquet_writes_to_a_path(tmp_path: Path) -> None:
    path = tmp_path / "scores.parquet"
    write_parquet([{"nps": -12}], ["nps"], str(path))
    assert pq.read_table(path).to_pylist() == [{"nps": -12}]


def test_parquet_only_the_given_columns_in_that_order() -> None:
    table = parquet_round_trip([{"a": 1, "b": "x", "c": 2.0}], ["c", "a"])
    assert table.column_names == ["c", "a"]


def test_parquet_naive_datetime_is_an_error() -> None:
    with pytest.raises(ExportTypeError, match="'at' has a naive datetime"):
        write_parquet([{"at": dt.datetime(2024, 1, 1)}], ["at"], io.BytesIO())


def test_parquet_mixed_types_are_an_error() -> None:
    with pytest.raises(ExportTypeError, match="'x' mixes types: int, str"):
        write_parquet([{"x": 1}, {"x": "1"}], ["x"], io.BytesIO())
    with pytest.raises(ExportTypeError, match="mixes types: date, datetime"):
        write_parquet(
            [{"x": dt.date(2024, 1, 1)}, {"x": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}],
            ["x"],
            io.BytesIO(),
        )


def test_parquet_unsupported_type_is_an_error() -> None:
    with pytest.raises(ExportTypeError, match="unsupported type"):
        write_parquet([{"x": Decimal("1.5")}], ["x"], io.BytesIO())


def test_parquet_missing_column_is_an_error() -> None:
    with pytest.raises(KeyError, match="nps"):
        write_parquet([{"partner": "x"}], ["partner", "nps"], io.BytesIO())
