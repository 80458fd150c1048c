"""Benchmark: import the whole ../shared/data spot 1h set (21 files, ~300k rows) with
``candles_import``, into Postgres and into SQLite. Prints figures; asserts nothing.

For each backend a subprocess configures Django against a scratch database (settings read
``DATABASE_URL`` at import), migrates it, imports every file (first pass: all inserts), imports
them again (second pass: nothing changes) and prints rows/s, file count and elapsed time.

- Postgres: the server of ``DATABASE_URL`` when set, else
  ``postgres://postgres@127.0.0.1:5432/market7_bench``. The scratch database (``market7_bench``,
  or ``<name>_bench_<pid>`` beside the ``DATABASE_URL`` one) is created and dropped. Unreachable: a clear line, no crash.
- SQLite: a file database in a temporary folder.

Target: >= 100,000 rows/s into Postgres.

    .venv/bin/python benchmarks/import_candles.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/market7_bench"


def worker() -> None:
    """Run inside the subprocess: DATABASE_URL points at an empty scratch database."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from trading.models.market import Candle
    from trading.services.candles import candles_import

    call_command("migrate", verbosity=0)
    files = sorted((Path(settings.MARKET7_SHARED_DATA) / "ohlcv" / "spot").glob("*-1h.csv.gz"))
    label = f"{connection.vendor} ({connection.settings_dict['NAME']})"
    for attempt in ("first import (all new)", "second import (no change)"):
        rows = inserted = unchanged = 0
        started = time.perf_counter()
        for path in files:
            report = candles_import(path=path, exchange="binance", market_type="spot")
            rows += report.rows
            inserted += report.inserted
            unchanged += report.unchanged
        elapsed = time.perf_counter() - started
        print(
            f"  {label} {attempt}: {len(files)} files, {rows:,} rows ({inserted:,} inserted, {unchanged:,} unchanged) "
            f"in {elapsed:.2f}s = {rows / elapsed:,.0f} rows/s"
        )
    print(f"  candles in the database: {Candle.objects.count():,}")


def run_worker(database_url: str, var_dir: str) -> int:
    env = {**os.environ, "DATABASE_URL": database_url, "MARKET7_VAR_DIR": var_dir, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, __file__, "--worker"], env=env, cwd=ROOT).returncode


def postgres(var_dir: str) -> None:
    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(base)  # never touch that database: a scratch one beside it
        name = f"{parts.path.lstrip('/') or 'market7'}_bench_{os.getpid()}"
    else:
        parts = urlsplit(DEFAULT_PG)
        name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"Postgres: unreachable at {parts.netloc} ({str(exc).strip().splitlines()[0]}); Postgres figures skipped")
        return
    try:
        print(f"Postgres: scratch database {name} on {parts.netloc}")
        run_worker(urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", "")), var_dir)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite(var_dir: str) -> None:
    path = Path(var_dir) / "bench.sqlite3"
    print(f"SQLite: {path}")
    run_worker(f"sqlite:///{path}", var_dir)


def main() -> None:
    shared = Path(os.environ.get("MARKET7_SHARED_DATA") or ROOT.parent / "shared" / "data") / "ohlcv" / "spot"
    if not shared.is_dir():
        print(f"import_candles benchmark: {shared} not present; skipped")
        return
    print(f"import_candles benchmark: spot 1h files of {shared} (target >= 100,000 rows/s into Postgres)")
    with tempfile.TemporaryDirectory(prefix="m7-bench-") as var_dir:
        postgres(var_dir)
        sqlite(var_dir)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
