"""Copying one table between any two SQLAlchemy databases, columns and rows.

Used to fill an Asset database from the source database and to write a published
snapshot back into it. Types are carried over in their generic form (a SQLite
``DATE`` becomes a PostgreSQL ``date``), constraints and indexes are not: copies are
read-only data, not schemas.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Engine, MetaData, Table, column, inspect, select, table
from sqlalchemy.types import Float, Integer, NullType, Numeric, Text, TypeEngine

BATCH = 5000


def generic_type(type_: TypeEngine) -> TypeEngine:
    try:
        generic = type_.as_generic()
    except NotImplementedError:
        # a type only one dialect knows (e.g. PostgreSQL's inet): text keeps its value
        return Text()
    # SQLite columns may have no type at all (CREATE TABLE t AS SELECT ...)
    return Text() if isinstance(generic, NullType) else generic


def split_location(location: str) -> tuple[str | None, str]:
    """``"schema.table"`` or ``"table"`` -> (schema or None, table)."""
    schema, _, name = location.rpartition(".")
    return (schema or None, name)


def reflect(conn: Connection | Engine, name: str, schema: str | None = None) -> Table:
    """The table ``schema.name`` as it is in the database (raises NoSuchTableError)."""
    return Table(name, MetaData(), schema=schema, autoload_with=conn)


def table_exists(conn: Connection | Engine, name: str, schema: str | None = None) -> bool:
    insp = inspect(conn)
    return insp.has_table(name, schema=schema) or name in insp.get_view_names(schema=schema)


def present_sources(engine: Engine, tables) -> tuple[list, list]:
    """Split ``tables`` (with a ``location``) into those whose source table exists in
    ``engine``'s database and those whose does not."""
    found, missing = [], []
    with engine.connect() as conn:
        for t in tables:
            schema, name = split_location(t.location)
            (found if table_exists(conn, name, schema) else missing).append(t)
    return found, missing


def copy_types(source: Connection, table: Table) -> list[tuple[str, TypeEngine]]:
    """Each column's name and the type its copy gets."""
    out = []
    for column in table.columns:
        type_ = generic_type(column.type)
        if (
            source.dialect.name == "sqlite"
            and isinstance(type_, Numeric)
            and not isinstance(type_, (Integer, Float))
        ):
            # SQLite gives NUMERIC affinity to columns it cannot type (a date column of
            # CREATE TABLE ... AS, say) and stores whatever comes: keep the text
            type_ = Text()
        out.append((column.name, type_))
    return out


def copy_table(
    source: Connection,
    source_name: str,
    target: Connection,
    target_name: str,
    source_schema: str | None = None,
    target_schema: str | None = None,
    replace: bool = True,
) -> Table:
    """Create ``target_schema.target_name`` in ``target`` with the columns of the source
    table and copy every row. The caller owns both transactions, so a failure leaves
    nothing half-copied once they roll back."""
    src = reflect(source, source_name, source_schema)
    types = copy_types(source, src)
    dst = Table(
        target_name,
        MetaData(),
        *(Column(name, type_) for name, type_ in types),
        schema=target_schema,
    )
    if replace:
        dst.drop(target, checkfirst=True)
    dst.create(target)
    # read each column as the type it is written as
    reader = select(*(column(name, type_) for name, type_ in types)).select_from(
        table(source_name, schema=source_schema)
    )
    result = source.execution_options(stream_results=True).execute(reader)
    names = [name for name, _ in types]
    while True:
        rows = result.fetchmany(BATCH)
        if not rows:
            break
        target.execute(dst.insert(), [dict(zip(names, row)) for row in rows])
    return dst
