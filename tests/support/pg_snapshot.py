"""A PostgreSQL template's rows, kept in memory and loaded into a worker's database in place.

Copying a database (``CREATE DATABASE … TEMPLATE``) costs a second or more on a busy two-core
machine: it writes every page of the catalog too. A test only needs the template's *rows* in a
database whose schema is already the template's, so a worker keeps one database and, before each
test, deletes every row and copies the template's back (tens of milliseconds). When the schema
differs (a test migrated, dropped or changed something), the caller copies the whole database
as before.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

# Everything about the schema a test could change: relations and their columns, defaults,
# constraints, indexes, triggers, functions and types in ``public``.
_SCHEMA = """
SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM (
  SELECT 'rel:' || c.relname || ':' || c.relkind::text || ':' || coalesce(string_agg(
           a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
           || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ',' ORDER BY a.attnum), '') AS x
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   GROUP BY c.relname, c.relkind
  UNION ALL SELECT 'idx:' || indexrelid::regclass::text || pg_get_indexdef(indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
  UNION ALL SELECT 'con:' || conname || ':' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT 'trg:' || tgname || ':' || tgrelid::regclass::text || ':' || tgenabled::text
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'fn:' || proname || ':' || md5(prosrc)
    FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'typ:' || typname || ':' || coalesce((SELECT string_agg(enumlabel, ','
           ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
    FROM pg_type t WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd')
) s
"""
_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
_SEQUENCES = (
    "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
    " ORDER BY sequencename"
)


def _connect(url: str) -> psycopg.Connection:
    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        dbname=u.database,
    )


def schema_of(conn: psycopg.Connection) -> str:
    row = conn.execute(_SCHEMA).fetchone()
    assert row is not None
    return str(row[0])


@dataclass
class Snapshot:
    """A database's rows (COPY text per table), its sequences and its schema's fingerprint."""

    schema: str
    tables: list[str]
    rows: dict[str, bytes] = field(default_factory=dict)
    sequences: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def take(cls, url: str) -> Snapshot:
        with _connect(url) as conn:
            tables = [r[0] for r in conn.execute(_TABLES)]
            snap = cls(schema_of(conn), tables)
            for table in tables:
                buf = io.BytesIO()
                with conn.cursor().copy(
                    sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))
                ) as copy:
                    for chunk in copy:
                        buf.write(chunk)
                if buf.tell():
                    snap.rows[table] = buf.getvalue()
            snap.sequences = {name: value for name, value in conn.execute(_SEQUENCES)}
        return snap

    def load_into(self, url: str) -> bool:
        """Replace every row of the database at ``url`` with the snapshot's; False (and nothing
        changed) when its schema is not the snapshot's."""
        name = make_url(url).database
        with _connect(url) as conn:
            # A server or engine the last test left connected could hold a lock.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            if schema_of(conn) != self.schema:
                conn.rollback()
                return False
            # Rows go in whatever the foreign keys and the audit log's append-only trigger say:
            # they are the template's own rows, already consistent.
            conn.execute("SET LOCAL session_replication_role = replica")
            cur = conn.cursor()
            for table in self.tables:
                cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            for table, data in self.rows.items():
                with cur.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
                    copy.write(data)
            for seq, value in self.sequences.items():
                if value is None:
                    cur.execute("SELECT setval(quote_ident(%s)::regclass, 1, false)", (seq,))
                else:
                    cur.execute("SELECT setval(quote_ident(%s)::regclass, %s, true)", (seq, value))
            conn.commit()
        return True
