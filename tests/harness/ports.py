"""Free TCP ports on 127.0.0.1 for the servers a test starts.

Run as a script it prints one (tests/postgres_cluster.sh does: `python3 -I ports.py`), so it
imports nothing but the standard library.
"""

from __future__ import annotations

import socket
import sys

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (another process may take it before we bind)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.stdout.write(f"{free_port()}\n")
