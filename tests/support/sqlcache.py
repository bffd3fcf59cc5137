"""One compiled-statement cache for every database engine a test process makes.

SQLAlchemy compiles a statement once per engine and keeps it in the engine's own cache, keyed
by the engine's dialect object. A server process has one engine for its life; a test process
makes hundreds (a database, a context, a command per test), so it compiled the same few
hundred statements again in every test: about a tenth of an in-process test's CPU. Here every
engine ``storage`` makes shares one cache, keyed by what the compiled form depends on (the
dialect's class and the server's version) instead of by the dialect object, so a statement is
compiled once per process and database kind, as in a server.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.util import LRUCache

from storage import db as storage_db


class _SharedCompiledCache(LRUCache[Any, Any]):
    @staticmethod
    def _shared(key: Any) -> Any:
        dialect, *rest = key
        return (type(dialect), dialect.server_version_info, *rest)

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(self._shared(key), default)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(self._shared(key), value)


_CACHE = _SharedCompiledCache(5000)


def share_compiled_statements() -> None:
    """From now on, every engine ``storage`` creates compiles into the process's one cache."""

    def create_engine(*args: Any, **kwargs: Any) -> Engine:
        engine = sqlalchemy.create_engine(*args, **kwargs)
        engine._compiled_cache = _CACHE
        return engine

    storage_db.create_engine = create_engine  # type: ignore[attr-defined]
