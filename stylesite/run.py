"""`make run`: the web server, a Celery worker and beat in one terminal; Ctrl-C stops them all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PY = sys.executable
PROCESSES = {
    "web": [PY, "manage.py", "runserver", "127.0.0.1:8000", "--noreload"],
    # One process: the embedding and background models already use both cores.
    "worker": [PY, "-m", "celery", "-A", "stylesite", "worker", "--loglevel=INFO", "--concurrency=1"],
    "beat": [PY, "-m", "celery", "-A", "stylesite", "beat", "--loglevel=INFO",
             "--schedule=var/celerybeat-schedule"],
}


def main() -> int:
    children = {name: subprocess.Popen(cmd) for name, cmd in PROCESSES.items()}
    print("\n  Stylesite is starting:  http://127.0.0.1:8000/   (admin: http://127.0.0.1:8000/admin/)\n"
          "  API docs: http://127.0.0.1:8000/api/docs/   Ctrl-C stops web, worker and beat.\n", flush=True)
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with {child.returncode}; stopping the others", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.time() + 20
        for child in children.values():
            try:
                child.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")
    sys.exit(main())
