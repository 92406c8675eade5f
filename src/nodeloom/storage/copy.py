"""`nodeloom db copy`: move an install's data between databases (e.g. embedded SQLite → PostgreSQL),
and its files between blob stores (e.g. the local directory → S3), without loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

from nodeloom.storage.blobs import BlobStore
from nodeloom.storage.migrate import upgrade
from nodeloom.storage.models import Base, File


class CopyError(Exception):
    pass


def _sync_url(url: str) -> str:
    return url


def copy_database(source_url: str, target_url: str, *, batch: int = 1000,
                  progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every table, in dependency order, into a freshly migrated and empty target."""
    upgrade(target_url)
    src = create_engine(_sync_url(source_url))
    dst = create_engine(_sync_url(target_url))
    counts: dict[str, int] = {}
    try:
        tables = [t for t in Base.metadata.sorted_tables]
        with dst.connect() as conn:
            for table in tables:
                if conn.execute(select(func.count()).select_from(table)).scalar():
                    raise CopyError(f"target table {table.name} is not empty; copy only into a new database")
        with src.connect() as s, dst.begin() as d:
            for table in tables:
                n = 0
                result = s.execution_options(stream_results=True).execute(select(table))
                while rows := result.fetchmany(batch):
                    d.execute(insert(table), [dict(r._mapping) for r in rows])
                    n += len(rows)
                counts[table.name] = n
                if progress:
                    progress(table.name, n)
            if dst.dialect.name == "postgresql":
                for table in tables:
                    for col in table.columns:
                        if col.autoincrement is True and col.primary_key and col.type.python_type is int:
                            d.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{col.name}'), "
                                           f"COALESCE((SELECT MAX({col.name}) FROM {table.name}), 0) + 1, false)"))
        with src.connect() as s, dst.connect() as d:
            for table in tables:
                a = s.execute(select(func.count()).select_from(table)).scalar()
                b = d.execute(select(func.count()).select_from(table)).scalar()
                if a != b:
                    raise CopyError(f"{table.name}: {a} rows in the source, {b} in the target")
    finally:
        src.dispose()
        dst.dispose()
    return counts


def copy_files(database_url: str, source: BlobStore, target: BlobStore) -> int:
    """Copy every stored file's blob; content addressing makes re-running it safe."""
    engine = create_engine(database_url)
    n = 0
    try:
        with engine.connect() as conn:
            keys: list[Any] = sorted({row[0] for row in conn.execute(select(File.blob_key))})
        for key in keys:
            if not target.exists(key):
                suffix = key[64:]
                stored = target.put(source.read(key), suffix=suffix)
                if stored != key:
                    raise CopyError(f"blob {key} changed while copying")
            n += 1
    finally:
        engine.dispose()
    return n
