"""Benchmark: many browsers at once against the product as `make run` serves it, on Postgres.

A scratch database ``market7_bench_load`` is created on the server of ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/``), set up as `make run` does (migrate, the bundled
candles, ``demo_setup``: the demo user and its two replay bots) and dropped at the end. The
product then runs as a subprocess under honcho — web, websockets, Celery worker and beat — in
one of these arrangements:

- ``split`` (the Procfile, the default): gunicorn gthread workers (HTTP, WSGI) + daphne
  (websockets on ``MARKET7_WS_PORT``);
- ``uvicorn``: gunicorn with uvicorn workers serving the ASGI app (HTTP and websockets on
  one port; needs ``uvicorn``, ``websockets``, ``httptools``, not in requirements.txt);
- ``daphne``: one daphne process for everything (how Market7 was served before).

An asyncio client (aiohttp) logs in as ``demo`` and runs, for each client count, that many
clients (each sends its next request when the last answered, after a pause of ``--think``
seconds, default 1, x0.5-1.5 at random: a person clicking; 0 for back to back) for ``--duration``
seconds, cycling the dashboard ``/``, the bots API list ``/api/v1/bots/`` and a bot detail page
``/bots/<id>/``; then an open-loop phase sends the API list alone at a fixed ``--api-rate``
(requests/s, whatever the answers take). Printed per phase and URL: requests/s, p50/p95/p99
(ms), errors (non-200 or transport); the most Postgres connections to the scratch database
seen (``pg_stat_activity`` sampled every 0.2 s) against the documented bound; and the p95 of
the demo bots' steps during the phase (the worker's ``Task trading.tasks.bot_step[...]
succeeded in Xs`` log lines). The client runs on the same cores as the server: figures on a
shared machine are noisy.

Targets (2 cores): dashboard p95 <= 300 ms at 50 clients; API p95 <= 50 ms at 200 requests/s;
0 errors; Postgres connections <= the bound of docs/deploy.md.

    .venv/bin/python benchmarks/load.py                        # split, 50 and 200 clients, 30 s
    .venv/bin/python benchmarks/load.py --arrangement uvicorn --clients 50 --duration 10
    LOAD_DURATION=5 make bench                                 # shorter phases (also LOAD_CLIENTS,
                                                               # LOAD_API_RATE, LOAD_ARRANGEMENT)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
SCRATCH = "market7_bench_load"
PASSWORD = "bench-Load-7!"
WORKER_LINES = (
    "worker: DB_POOL_MAX=${WORKER_DB_POOL_MAX:-2} celery -A market7 worker -Q trading,research,default "
    "--concurrency 2 --loglevel INFO\n"
    "beat: DB_POOL_MAX=${BEAT_DB_POOL_MAX:-2} celery -A market7 beat "
    "--scheduler django_celery_beat.schedulers:DatabaseScheduler --loglevel INFO --pidfile=\n"
)
PROCFILES = {
    "uvicorn": "web: gunicorn -k uvicorn.workers.UvicornWorker -w ${WEB_WORKERS:-2} -b 127.0.0.1:$PORT "
    "market7.asgi:application\n" + WORKER_LINES,
    "daphne": "web: python -m daphne -b 127.0.0.1 -p $PORT market7.asgi:application\n" + WORKER_LINES,
}
STEP_LINE = re.compile(r"Task trading\.tasks\.bot_step\[[^\]]+\] succeeded in ([0-9.]+)s")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


class Sampler(threading.Thread):
    """Samples ``pg_stat_activity`` for the scratch database every 0.2 s; ``peak`` since reset."""

    def __init__(self, admin_url: str):
        super().__init__(daemon=True)
        self.admin_url, self.peak, self.stop = admin_url, 0, threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(_pg(self.admin_url), autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (SCRATCH,)).fetchone()
                self.peak = max(self.peak, row[0])
                time.sleep(0.2)


class Log:
    """The honcho output file; ``steps_since(offset)`` parses bot-step runtimes (ms) after ``offset``."""

    def __init__(self, path: Path):
        self.path = path

    def size(self) -> int:
        return self.path.stat().st_size

    def steps_since(self, offset: int) -> list[float]:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
        return [float(m.group(1)) * 1000 for m in STEP_LINE.finditer(text)]


def setup_database(base: str) -> str:
    import psycopg

    parts = urlsplit(base)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(_pg(admin), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    return admin


def drop_database(admin: str) -> None:
    import psycopg

    with psycopg.connect(_pg(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


async def login(session, base: str) -> int:
    """Logs in as ``demo`` through the real form; returns the id of the demo's first bot."""
    async with session.get(f"{base}/accounts/login/") as response:
        html = await response.text()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    form = {"username": "demo", "password": PASSWORD, "csrfmiddlewaretoken": token}
    async with session.post(f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"}) as r:
        await r.read()
        if "/accounts/login/" in str(r.url):
            raise RuntimeError("login as demo failed")
    async with session.get(f"{base}/api/v1/bots/") as response:
        bots = (await response.json())["results"]
    return bots[0]["id"]


async def closed_loop(session, urls: list[str], clients: int, duration: float, think: float) -> dict[str, dict]:
    """``clients`` coroutines cycling through ``urls`` for ``duration`` s, each pausing a random
    0.5-1.5 x ``think`` seconds after an answer (0: none): per URL latencies and errors."""
    stats = {u: {"ms": [], "errors": 0} for u in urls}
    deadline = time.monotonic() + duration
    rng = random.Random(7)

    async def client(k: int) -> None:
        i = k
        await asyncio.sleep(rng.uniform(0, think))  # clients arrive spread out, not in lock-step
        while time.monotonic() < deadline:
            url = urls[i % len(urls)]
            i += 1
            started = time.perf_counter()
            try:
                async with session.get(url, allow_redirects=False) as response:
                    await response.read()
                    ok = response.status == 200
            except Exception:  # noqa: BLE001  (transport errors count as errors)
                ok = False
            stats[url]["ms"].append((time.perf_counter() - started) * 1000)
            stats[url]["errors"] += 0 if ok else 1
            if think:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    await asyncio.gather(*(client(k) for k in range(clients)))
    return stats


async def open_loop(session, url: str, rate: float, duration: float) -> dict[str, dict]:
    """``url`` sent ``rate`` times a second for ``duration`` s, on schedule, answered or not."""
    stats = {url: {"ms": [], "errors": 0}}

    async def one() -> None:
        started = time.perf_counter()
        try:
            async with session.get(url, allow_redirects=False) as response:
                await response.read()
                ok = response.status == 200
        except Exception:  # noqa: BLE001
            ok = False
        stats[url]["ms"].append((time.perf_counter() - started) * 1000)
        stats[url]["errors"] += 0 if ok else 1

    tasks, start = [], time.monotonic()
    for n in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return stats


def report(name: str, stats: dict[str, dict], duration: float, peak: int, bound: int, steps: list[float]) -> None:
    print(f"  {name}:")
    for url, s in stats.items():
        ms = s["ms"]
        print(
            f"    {urlsplit(url).path:<16} {len(ms) / duration:7.1f} req/s  p50 {statistics.median(ms) if ms else 0:7.1f} ms"
            f"  p95 {_pct(ms, 95):7.1f} ms  p99 {_pct(ms, 99):7.1f} ms  errors {s['errors']}/{len(ms)}"
        )
    print(
        f"    Postgres connections: max {peak} seen (bound {bound}); bot steps during the phase: {len(steps)}, "
        f"p50 {_pct(steps, 50):.1f} ms, p95 {_pct(steps, 95):.1f} ms"
    )


async def drive(args, base: str, sampler: Sampler, log: Log, bound: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of an IP address host (127.0.0.1)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        bot_id = await login(session, base)
        urls = [f"{base}/", f"{base}/api/v1/bots/", f"{base}/bots/{bot_id}/"]
        await closed_loop(session, urls, 4, 3, 0)  # warm-up: imports, template caches, pool
        for clients in args.clients:
            sampler.peak, offset = 0, log.size()
            stats = await closed_loop(session, urls, clients, args.duration, args.think)
            report(
                f"{clients} clients (think {args.think:g} s), {args.duration:g} s",
                stats,
                args.duration,
                sampler.peak,
                bound,
                log.steps_since(offset),
            )
        if args.api_rate:
            sampler.peak, offset = 0, log.size()
            stats = await open_loop(session, urls[1], args.api_rate, args.duration)
            report(
                f"API alone at {args.api_rate:g} req/s, {args.duration:g} s",
                stats,
                args.duration,
                sampler.peak,
                bound,
                log.steps_since(offset),
            )


def connection_bound(arrangement: str, env: dict[str, str]) -> int:
    """The documented bound (docs/deploy.md) for this arrangement on this machine."""
    sys.path.insert(0, str(ROOT))
    from market7.serving import cores, web_concurrency

    workers, threads = web_concurrency(sqlite=False, environ_=env)
    pool = int(env.get("DB_POOL_MAX") or 4)
    celery = 3 * int(env.get("WORKER_DB_POOL_MAX") or 2) + int(env.get("BEAT_DB_POOL_MAX") or 2)
    if arrangement == "split":
        return workers * int(env.get("DB_POOL_MAX") or threads) + pool + celery
    if arrangement == "uvicorn":
        return int(env.get("WEB_WORKERS") or cores()) * pool + celery
    return pool + celery


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arrangement", choices=["split", "uvicorn", "daphne"], default=os.environ.get("LOAD_ARRANGEMENT", "split")
    )
    parser.add_argument(
        "--clients", default=os.environ.get("LOAD_CLIENTS", "50,200"), help="comma-separated client counts"
    )
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("LOAD_DURATION", "30")), help="seconds per phase"
    )
    parser.add_argument(
        "--think",
        type=float,
        default=float(os.environ.get("LOAD_THINK", "1")),
        help="seconds a client pauses between requests (x0.5-1.5 at random); 0: back to back",
    )
    parser.add_argument("--api-rate", type=float, default=float(os.environ.get("LOAD_API_RATE", "200")), help="0: skip")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",") if c]
    base_url = os.environ.get("DATABASE_URL") or DEFAULT_PG
    if not base_url.startswith("postgres"):
        base_url = DEFAULT_PG
    try:
        admin = setup_database(base_url)
    except Exception as exc:  # noqa: BLE001
        print(f"load: Postgres unreachable ({str(exc).strip().splitlines()[0]}); skipped")
        return 0
    parts = urlsplit(base_url)
    port, ws_port = _free_port(), _free_port()
    var_dir = Path(tempfile.mkdtemp(prefix="m7load-"))
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit((parts.scheme, parts.netloc, f"/{SCRATCH}", "", "")),
        "MARKET7_VAR_DIR": str(var_dir),
        "MARKET7_DEMO_PASSWORD": PASSWORD,
        "PORT": str(port),
        "MARKET7_WS_PORT": str(ws_port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    bound = connection_bound(args.arrangement, env)
    py = [sys.executable, "manage.py"]
    wrap = [sys.executable, "-m", "market7.embedded_redis", "run", "--"]  # reuses REDIS_URL when set
    log = Log(var_dir / "honcho.log")
    honcho = None
    try:
        for cmd in (["migrate", "--noinput"], ["import_candles", "--bundled"], ["demo_setup"]):
            subprocess.run(wrap + py + cmd + ["-v", "0"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        procfile = ROOT / "Procfile"
        if args.arrangement in PROCFILES:
            procfile = var_dir / "Procfile"
            procfile.write_text(PROCFILES[args.arrangement])
        with open(log.path, "w") as out:
            honcho = subprocess.Popen(
                wrap + ["honcho", "--procfile", str(procfile), "--app-root", str(ROOT), "start", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(f"http://127.0.0.1:{port}/accounts/login/", honcho, log)
        print(
            f"  load on {args.arrangement} ({_describe(args.arrangement, env)}), Postgres {SCRATCH}, {os.cpu_count()} cores"
        )
        sampler = Sampler(admin)
        sampler.start()
        asyncio.run(drive(args, f"http://127.0.0.1:{port}", sampler, log, bound))
        sampler.stop.set()
        return 0
    finally:
        if honcho is not None:
            os.killpg(honcho.pid, signal.SIGTERM)
            try:
                honcho.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
        drop_database(admin)


def _describe(arrangement: str, env: dict[str, str]) -> str:
    from market7.serving import cores, web_concurrency

    workers, threads = web_concurrency(sqlite=False, environ_=env)
    if arrangement == "split":
        return f"gunicorn {workers} workers x {threads} threads + daphne for websockets"
    if arrangement == "uvicorn":
        return f"gunicorn {env.get('WEB_WORKERS') or cores()} uvicorn workers"
    return "one daphne process"


def _wait(url: str, proc: subprocess.Popen, log: Log) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"honcho exited ({proc.returncode}):\n{log.path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"no answer on {url} in 90 s:\n{log.path.read_text()[-3000:]}")


if __name__ == "__main__":
    sys.exit(main())
