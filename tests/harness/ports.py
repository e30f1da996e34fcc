"""Free TCP ports on 127.0.0.1 for the servers a test starts.

Run as a script it prints one (tests/postgres_cluster.sh does: `python3 -I ports.py`), so it
imports nothing but the standard library.
"""

from __future__ import annotations

import random
import socket
import sys

HOST = "127.0.0.1"

# Below Linux's ephemeral range (32768-60999), so an outgoing connection's local port never
# takes a port a test picked before its server binds it.
_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now, never one this process handed out before (two
    calls in a row must not give one server's port to another). Another process may still
    take it before we bind."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise OSError(f"no free port in {_RANGE} on {host}")


if __name__ == "__main__":
    sys.stdout.write(f"{free_port()}\n")
