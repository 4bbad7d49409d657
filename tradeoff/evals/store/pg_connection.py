"""A psycopg 3 connection speaking the store's SQL: `?`/`$name` placeholders, `register()` of
Arrow tables and DataFrames, `df()` results, JSON read back as text.

Parameters are bound client-side (`psycopg.ClientCursor`): values are quoted into the statement
as typed literals, so SQL written for DuckDB's loose parameter typing (`? IS NULL OR x = ?`, a
string into a JSON or TIMESTAMP column) runs unchanged. `register()` streams the rows into a
temporary table with one COPY (CSV written by Arrow), the PostgreSQL way to load many rows.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg.adapt import Loader
from psycopg.types.string import TextLoader

from tradeoff.evals.errors import StoreBusyError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PgConnection", "PgCursor", "prepare"]

# Tokens of a statement that matter for placeholders; literals, identifiers and comments are
# matched whole so a `?` or `$x` inside them is left alone.
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$\$.*?\$\$"""
    r"""|(?P<q>\?)|(?P<named>\$[A-Za-z_][A-Za-z0-9_]*)|%""",
    re.DOTALL,
)
_COPY_ROWS = 50_000  # rows per CSV chunk sent to COPY


@lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    def swap(m: re.Match[str]) -> str:
        if m.group("q"):
            return "%s"
        if m.group("named"):
            return f"%({m.group('named')[1:]})s"
        # psycopg reads `%` everywhere, inside literals too: each literal one is doubled.
        return m.group(0).replace("%", "%%")

    return _TOKENS.sub(swap, sql)


def prepare(sql: str, parameters: Any) -> tuple[str, Any]:
    """The statement in psycopg's placeholder style (untouched without parameters)."""
    if parameters is None:
        return sql, None
    return _translate(sql), parameters


class _NumberLoader(Loader):
    """NUMERIC (PostgreSQL's `sum` of integers, `avg`) as int when whole-typed, else float, the
    way DuckDB returns its sums and averages."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


def configure(raw: psycopg.Connection[Any]) -> None:
    for name in ("json", "jsonb"):
        raw.adapters.register_loader(name, TextLoader)
    raw.adapters.register_loader("numeric", _NumberLoader)


_ARROW_OF_OID = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int32(),
    700: pa.float64(),
    701: pa.float64(),
    1700: pa.float64(),
    25: pa.string(),
    1042: pa.string(),
    1043: pa.string(),
    114: pa.string(),
    3802: pa.string(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1082: pa.date32(),
}


class PgCursor:
    """The result of one statement."""

    def __init__(self, cur: psycopg.ClientCursor[Any]) -> None:
        self._cur = cur

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cur.fetchall()

    def arrow(self) -> pa.Table:
        """The remaining rows as an Arrow table, typed from the result's column types."""
        columns = self._cur.description or []
        rows = self._cur.fetchall()
        arrays = [
            pa.array([row[i] for row in rows], type=_ARROW_OF_OID.get(col.type_code))
            for i, col in enumerate(columns)
        ]
        return pa.Table.from_arrays(arrays, names=[col.name for col in columns])

    def df(self) -> pd.DataFrame:
        return self.arrow().to_pandas()


def _pg_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_integer(kind):
        return "INTEGER" if kind.bit_width <= 32 and kind != pa.uint32() else "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE PRECISION"
    if pa.types.is_decimal(kind):
        return "NUMERIC"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    if pa.types.is_date(kind):
        return "DATE"
    return "TEXT"  # strings, and all-NULL columns


def _plain(table: pa.Table) -> pa.Table:
    """Decode dictionaries and views, which Arrow's CSV writer does not take."""
    fields = []
    for f in table.schema:
        kind = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind))
    return table.cast(pa.schema(fields))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PgConnection:
    """A pooled PostgreSQL connection lent by `PostgresStore`; see the module docstring."""

    def __init__(self, raw: psycopg.Connection[Any], *, read_only: bool) -> None:
        self.raw = raw
        self.read_only = read_only
        self.registered: set[str] = set()

    def execute(self, query: str, parameters: Any = None) -> PgCursor:
        cur = self.raw.cursor()
        try:
            cur.execute(*prepare(query, parameters))
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreBusyError(
                f"a lock in the store stayed held by another process ({exc}); retry shortly"
            ) from exc
        return PgCursor(cur)  # type: ignore[arg-type]

    def executemany(self, query: str, parameters: Any = None) -> PgCursor:
        cur = self.raw.cursor()
        rows = list(parameters or [])
        if rows:
            cur.executemany(_translate(query), rows)
        return PgCursor(cur)  # type: ignore[arg-type]

    def fetch_arrow(self, query: str, parameters: Any = None) -> pa.Table:
        """A query's rows as an Arrow table through one COPY (CSV parsed by Arrow): several
        times faster than row-by-row fetching for the hundreds of thousands of rows analytics
        read. Types come from the result's column types."""
        sql, params = prepare(query, parameters)
        cur = psycopg.ClientCursor(self.raw)
        statement = cur.mogrify(sql, params) if params is not None else sql
        cur.execute(f"SELECT * FROM ({statement}) q LIMIT 0")
        columns = cur.description or []
        names = [col.name for col in columns]
        types = {c.name: _ARROW_OF_OID.get(c.type_code, pa.string()) for c in columns}
        chunks = io.BytesIO()
        with cur.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)") as cp:
            for chunk in cp:
                chunks.write(chunk)
        chunks.seek(0)
        if not chunks.getbuffer().nbytes:
            return pa.table({n: pa.array([], t) for n, t in types.items()})
        return pacsv.read_csv(
            chunks,
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],  # PostgreSQL writes NULL as an unquoted empty field
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,  # "" is an empty string, nothing is NULL
                true_values=["t"],
                false_values=["f"],
            ),
        )

    def register(self, view_name: str, python_object: Any) -> None:
        """Load the rows (an Arrow table or a pandas DataFrame) into temp table `view_name`.

        Column types follow the Arrow types; a column with no type (all NULL, or an empty
        frame of object columns) becomes TEXT, so statements CAST such columns."""
        table = python_object
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(python_object, preserve_index=False)
        table = _plain(table)
        name = _quote(view_name)
        columns = ", ".join(_quote(f.name) for f in table.schema)
        ddl = ", ".join(f"{_quote(f.name)} {_pg_type(f.type)}" for f in table.schema)
        with self._writable():
            self.raw.execute(f"DROP TABLE IF EXISTS {name}")
            self.raw.execute(f"CREATE TEMP TABLE {name} ({ddl})")
            options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
            with self.raw.cursor().copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as cp:
                for start in range(0, table.num_rows, _COPY_ROWS):
                    chunk = io.BytesIO()
                    pacsv.write_csv(table.slice(start, _COPY_ROWS), chunk, options)
                    cp.write(chunk.getvalue())
        self.registered.add(view_name)

    def unregister(self, view_name: str) -> None:
        with self._writable():
            self.raw.execute(f"DROP TABLE IF EXISTS {_quote(view_name)}")
        self.registered.discard(view_name)

    def _writable(self) -> Any:
        """A transaction that may create temp tables: read-only connections open one READ
        WRITE (their default is read-only), others run in the current transaction."""
        if self.read_only and self.raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return _ReadWrite(self.raw)
        return self.raw.transaction()


class _ReadWrite:
    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self._tx = raw.transaction()
        self._raw = raw

    def __enter__(self) -> None:
        self._tx.__enter__()
        self._raw.execute("SET TRANSACTION READ WRITE")

    def __exit__(self, *exc: Any) -> None:
        self._tx.__exit__(*exc)
