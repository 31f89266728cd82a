"""gunicorn settings for Alur's web (staff pages and REST): `gunicorn --config deploy/gunicorn.conf.py`.

Every value can be overridden from the environment (the systemd unit reads /etc/alur/alur.env):

- ALUR_BIND: address(es) to listen on, comma separated (default 127.0.0.1:8000: only the local nginx).
- ALUR_WEB_WORKERS: processes (default 2 x CPU cores + 1).
- ALUR_WEB_THREADS: threads per process (default 1: gunicorn's sync worker; more than 1 selects gthread).
  Requests are CPU-bound Python, so threads share one core per process through the GIL: the load test
  (docs/benchmarks.md) measured gthread with 2 threads at 72 completions/s and 21.8 ms web CPU each, against
  95-106/s and 14-16 ms with sync workers. nginx buffers slow clients, so sync workers are not held by them.
  Each thread holds at most one PostgreSQL connection while it serves a request: plan `max_connections` for
  workers x threads per web server, plus the workers.
- ALUR_WEB_TIMEOUT: seconds a request may take before its process is restarted (default 60; PDF exports).

The timer/reminder worker never runs inside these processes: `create_app()` does not start it (only
`alur serve` does). Run it as `alur worker` processes (deploy/systemd/alur-worker@.service).

`preload_app` stays off: the app opens a database engine when it is created, and a pool created before
fork() would be shared by every process. Each process builds its own app (about a second at start).
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "web.app:create_app()"
bind = [b.strip() for b in os.environ.get("ALUR_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = _int("ALUR_WEB_WORKERS", 2 * (os.cpu_count() or 1) + 1)
threads = _int("ALUR_WEB_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("ALUR_WEB_TIMEOUT", 60)
graceful_timeout = 30  # SIGTERM: requests in flight get this long to finish
keepalive = 5  # gthread only: nginx keeps upstream connections open (deploy/nginx/alur.conf)
# A process is replaced after this many requests (jittered so they do not all restart together).
max_requests = 5000
max_requests_jitter = 500
preload_app = False
# Heartbeat files on tmpfs: a slow disk must not make the arbiter think a worker hangs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn itself trusts X-Forwarded-Proto only from these addresses; the app's own handling of
# X-Forwarded-For/-Proto/-Host is ALUR_PROXY_FIX (number of proxies in front, see docs/operations.md).
forwarded_allow_ips = os.environ.get("ALUR_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"  # to the journal
errorlog = "-"
loglevel = os.environ.get("ALUR_LOG_LEVEL", "info")
proc_name = "alur-web"
