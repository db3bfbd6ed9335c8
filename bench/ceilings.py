"""The machine's ceilings for the work Tessera cannot avoid, measured in the same run.

- RS256 signatures per second with PyJWT and a key loaded once (what a token costs at
  least), in one process and in as many processes as there are cores.
- argon2id verifications per second with Tessera's configured parameters (the same
  ``Passwords`` class and ``ARGON2_*`` settings the login view uses), in one process
  and in one per core: a password sign-in cannot go faster than that.

Run from the repository root; prints one JSON object (or writes it with ``--out``).
The bare-Flask ceiling is measured by ``bench/run.sh`` with wrk (``bench/bare_app.py``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLAIMS = {
    "iss": "https://id.example.com",
    "sub": "bench-client",
    "aud": "https://id.example.com",
    "client_id": "bench-client",
    "scope": "api:read",
    "jti": "x" * 22,
}


def _rs256_worker(seconds: float, start: float, queue: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {"kid": "bench", "typ": "at+jwt"}
    jwt.encode(CLAIMS, key, algorithm="RS256", headers=headers)
    while time.time() < start:
        time.sleep(0.001)
    end = start + seconds
    n = 0
    now = int(time.time())
    while time.time() < end:
        jwt.encode(
            {**CLAIMS, "iat": now, "exp": now + 600}, key, algorithm="RS256", headers=headers
        )
        n += 1
    queue.put(n)


def _argon2_worker(seconds: float, start: float, queue: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from app.security import Passwords
    from config import load_config

    cfg = load_config()
    pw = Passwords(cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_TIME_COST"], cfg["ARGON2_PARALLELISM"])
    stored = pw.hash("correct horse battery staple")
    while time.time() < start:
        time.sleep(0.001)
    end = start + seconds
    n = 0
    while time.time() < end:
        if not pw.verify(stored, "correct horse battery staple"):
            raise SystemExit("argon2 verification failed")
        n += 1
    queue.put(n)


def rate(worker: Any, processes: int, seconds: float) -> float:
    """Operations per second summed over ``processes`` processes running together."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 0.5 + 0.2 * processes
    procs = [ctx.Process(target=worker, args=(seconds, start, queue)) for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(queue.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def _exit_on_term(signum: int, frame: Any) -> None:
    """Stop the worker processes with this one (SIGTERM from the runner's clean-up)."""
    for child in mp.active_children():
        child.kill()
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", help="write the JSON here as well")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_term)

    from config import load_config

    cfg = load_config()
    counts = sorted({1, max(1, args.processes)})
    out: dict[str, Any] = {
        "seconds": args.seconds,
        "cores": os.cpu_count(),
        "rs256_signs_per_s": {
            str(n): round(rate(_rs256_worker, n, args.seconds), 1) for n in counts
        },
        "argon2": {
            "memory_kib": cfg["ARGON2_MEMORY_KIB"],
            "time_cost": cfg["ARGON2_TIME_COST"],
            "parallelism": cfg["ARGON2_PARALLELISM"],
        },
        "argon2_verifies_per_s": {
            str(n): round(rate(_argon2_worker, n, args.seconds), 1) for n in counts
        },
    }
    text = json.dumps(out)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
