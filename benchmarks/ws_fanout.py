"""Benchmark: websocket fan-out of P&L events — 200 clients on a real daphne server each receive
their ``pnl`` event; latency is measured from the commit that caused it to receipt.

Setup: a scratch Postgres database ``market7_bench_ws`` on the server of ``DATABASE_URL``
(default ``postgres://postgres@127.0.0.1:5432/``) is created, migrated and dropped; the channel
layer is the Redis of ``REDIS_URL`` (``make bench`` sets it), of the kind
``MARKET7_CHANNEL_LAYER`` selects (default ``pubsub``; run with ``MARKET7_CHANNEL_LAYER=queue``
to compare, docs/bots.md has both). :data:`CLIENTS` users are created,
each logged in with a real session cookie; a daphne subprocess serves ``market7.asgi`` on a
free loopback port; :data:`CLIENTS` aiohttp websocket clients connect to ``/ws/live/`` all at
once (one per user — each hears only their own group; the channel layer's pool is sized by
``MARKET7_CHANNEL_MAX_CONNECTIONS``). Two scenarios, :data:`ROUNDS` rounds each:

A. one transaction per bot step: 200 back-to-back transactions, each publishing its owner's
   ``pnl`` through ``market7.events.publish`` (what the runner does: one commit per step);
B. one transaction publishing all 200 ``pnl`` events (a burst from a single commit;
   ``market7.events`` sends a transaction's events after COMMIT in one go: one message per
   user group, sent concurrently with the layer's group_send).

The commit time is taken in an ``on_commit`` callback registered before the publishes (it runs
right after COMMIT); each client stamps the receipt of its event. Figures: p50/p95/max latency
over all deliveries and how many arrived.

Target: p95 <= 250 ms.

    .venv/bin/python benchmarks/ws_fanout.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
SCRATCH = "market7_bench_ws"
CLIENTS = 200
ROUNDS = 5
# All at once by default (the settings size the channel layer's pool for it); set
# WS_FANOUT_CONNECT_CONCURRENCY=25 to run this script against a tree whose pool cannot.
CONNECT_CONCURRENCY = int(os.environ.get("WS_FANOUT_CONNECT_CONCURRENCY", CLIENTS))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))]


def worker() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market7.settings")
    import django

    django.setup()
    import aiohttp
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import transaction

    from market7.events import publish

    call_command("migrate", verbosity=0)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"fan{i}", password="!") for i in range(CLIENTS)])
    cookies = {}
    for user in User.objects.filter(username__startswith="fan"):
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        cookies[user.pk] = store.session_key
    assert len(users) == CLIENTS

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "market7.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("  daphne did not start:", (server.stderr.read() or b"").decode()[-500:])
                    return 1
                time.sleep(0.1)

        received: dict[int, list[tuple[int, float]]] = {pk: [] for pk in cookies}
        ready = threading.Event()
        stop = threading.Event()
        loop = asyncio.new_event_loop()
        connected = []

        errors: list[str] = []

        async def client(session, pk, key):
            try:
                await _client(session, pk, key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reported below
                errors.append(f"{type(exc).__name__}: {exc}")

        # At most CONNECT_CONCURRENCY handshakes at once (all of them by default). With redis-py's
        # default pool of 100, hundreds of simultaneous group_add raised MaxConnectionsError;
        # MARKET7_CHANNEL_MAX_CONNECTIONS (settings) sizes the pool for this.
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def _client(session, pk, key):
            headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"{settings.SESSION_COOKIE_NAME}={key}"}
            await gate.acquire()
            try:
                ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws/live/", headers=headers, heartbeat=None)
            finally:
                gate.release()
            async with ws:
                connected.append(pk)
                if len(connected) == CLIENTS:
                    ready.set()
                async for msg in ws:
                    now = time.time()
                    data = json.loads(msg.data)
                    if data.get("event") == "pnl":
                        received[pk].append((data["data"]["round"], now))

        async def run_clients():
            conn = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=conn) as session:
                tasks = [asyncio.create_task(client(session, pk, key)) for pk, key in cookies.items()]
                while not stop.is_set():
                    await asyncio.sleep(0.05)
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        thread = threading.Thread(target=lambda: loop.run_until_complete(run_clients()), daemon=True)
        thread.start()
        if not ready.wait(20):
            server.terminate()
            tail = (server.stderr.read() or b"").decode()[-1500:]
            print(
                f"  only {len(connected)} of {CLIENTS} clients connected; errors: {sorted(set(errors))[:3]}; daphne: {tail}"
            )
            return 1
        # Warm-up: one event to every client, outside any transaction, and wait until all have
        # it — a just-accepted connection still runs its snapshot query, which must not be timed.
        from market7.events import send_now

        for pk in cookies:
            send_now(pk, "pnl", {"round": -1})
        deadline = time.monotonic() + 30
        while not all(msgs and msgs[0][0] == -1 for msgs in received.values()):
            if time.monotonic() > deadline:
                print("  warm-up events did not all arrive")
                return 1
            time.sleep(0.05)
        time.sleep(0.5)
        commits: dict[int, float] = {}  # round -> commit time (burst scenarios)
        commit_of: dict[tuple[int, int], float] = {}  # (round, user) -> commit time (per-step scenario)
        results = []
        pks = list(cookies)

        def event(pk, rnd):
            return {
                "bot_id": pk,
                "equity": "1012.5",
                "realized": "10",
                "unrealized": "2.5",
                "today": "1.25",
                "round": rnd,
            }

        def collect(name, rounds, commit_time):
            time.sleep(1.0)
            lat = [(t - commit_time(pk, r)) * 1000 for pk, msgs in received.items() for r, t in msgs if r in rounds]
            got = sum(1 for msgs in received.values() for r, _ in msgs if r in rounds)
            results.append((name, lat, got, CLIENTS * len(rounds)))

        # A. one commit per bot step (each publishes its owner's pnl), as workers do, back to back
        rounds_a = range(0, ROUNDS)
        for rnd in rounds_a:
            for pk in pks:
                with transaction.atomic():
                    transaction.on_commit(lambda rnd=rnd, pk=pk: commit_of.__setitem__((rnd, pk), time.time()))
                    publish(pk, "pnl", event(pk, rnd))
            time.sleep(0.3)
        collect("A. 200 commits (one per bot step), each publishing 1 pnl", rounds_a, lambda pk, r: commit_of[(r, pk)])

        # B. one commit publishing all 200 pnl events (a burst through events.publish)
        rounds_b = range(ROUNDS, 2 * ROUNDS)
        for rnd in rounds_b:
            with transaction.atomic():
                transaction.on_commit(lambda rnd=rnd: commits.__setitem__(rnd, time.time()))
                for pk in pks:
                    publish(pk, "pnl", event(pk, rnd))
            time.sleep(1.0)
        collect("B. 1 commit publishing 200 pnl (events.publish)", rounds_b, lambda pk, r: commits[r])

        stop.set()
        thread.join(10)

        print(
            f"  {CLIENTS} websocket clients on one daphne process, Redis channel layer "
            f"({os.environ.get('MARKET7_CHANNEL_LAYER') or 'pubsub'}), {ROUNDS} rounds per scenario"
        )
        print(f"  (clients connected {CONNECT_CONCURRENCY} at a time)")
        for name, lat, got, want in results:
            if not lat:
                print(f"  {name}: nothing delivered")
                continue
            verdict = "met" if _pct(lat, 95) <= 250 and got == want else "NOT met"
            print(
                f"  {name}: delivered {got}/{want}; commit -> receipt p50 {statistics.median(lat):.1f} ms, "
                f"p95 {_pct(lat, 95):.1f} ms, max {max(lat):.1f} ms (target p95 <= 250 ms: {verdict})"
            )
        return 0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))


def main() -> int:
    base = os.environ.get("DATABASE_URL") or DEFAULT_PG
    if not base.startswith("postgres"):
        base = DEFAULT_PG
    import psycopg

    admin = _admin_url(base)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    except psycopg.OperationalError as exc:
        print(f"ws_fanout: Postgres unreachable at {admin} ({str(exc).strip().splitlines()[0]}); skipped")
        return 0
    parts = urlsplit(base)
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit((parts.scheme, parts.netloc, f"/{SCRATCH}", "", "")),
        "LOG_LEVEL": "WARNING",
    }
    try:
        return subprocess.run([sys.executable, __file__, "--worker"], env=env, cwd=ROOT).returncode
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(worker() if "--worker" in sys.argv else main())
