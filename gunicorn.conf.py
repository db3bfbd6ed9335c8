"""gunicorn settings, each overridable from the environment.

One gthread worker per core with a few threads each: signing (RSA/EC) and argon2
release the GIL, so threads overlap them with database and Redis round trips, and
keep-alive connections are served without a reconnect per request. reuse_port gives
every worker its own listening socket, so the kernel spreads connections evenly.
Measured in bench/RESULTS.md against sync workers.
"""

import multiprocessing
import os

bind = (
    os.environ.get("BIND")
    or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
)
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count())
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Each worker gets its own listening socket and the kernel spreads connections over
# them; without it, kept-alive connections can pile up on one gthread worker.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "1") == "1"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# Load the app (and its keys) once in the master, then fork: workers share the pages.
preload_app = True


def post_worker_init(worker):
    """Hand the GIL over sooner (default: every 5 ms) so one thread's Python work does
    not hold up another's short request; this trims the tail latency of gthread."""
    import sys

    sys.setswitchinterval(float(os.environ.get("GUNICORN_SWITCH_INTERVAL", "0.001")))


def pre_fork(server, worker):
    """Move everything loaded so far out of the garbage collector's sight before
    forking: collections then scan only what requests create (shorter pauses), and
    the shared pages stay shared instead of being copied when the GC touches them."""
    import gc

    gc.collect()
    gc.freeze()


def when_ready(server):
    # With reuse_port the workers open their own sockets, so the master's own
    # "Listening at" line has no address to show.
    server.log.info("Serving on http://%s", bind)
