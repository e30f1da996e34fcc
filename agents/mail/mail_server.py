"""The embedded SMTP server: keeps every message as a .eml file, listed on /mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import faust
from aiosmtpd.controller import Controller
from faust.web import Request, Response, View
from markupsafe import escape


class MailDirHandler:
    """aiosmtpd handler: one file per accepted message, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.replace(self.directory / name)
        return "250 Message accepted for delivery"


def start_mail_server(directory: Path, host: str, port: int) -> Controller:
    """Start a local SMTP server on host:port that stores mail under *directory*."""
    controller = Controller(MailDirHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def _read(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    if not isinstance(parsed, EmailMessage):
        raise TypeError(f"{path.name} is not a message")
    return parsed


def _index(directory: Path) -> str:
    rows = []
    for path in sorted(directory.glob("*.eml"), reverse=True)[:500]:
        message = _read(path)
        link = f'<a href="/mail/{escape(path.name)}">{escape(message["Date"] or path.stem)}</a>'
        rows.append(
            f"<tr><td>{link}</td><td>{escape(message['To'] or '')}</td>"
            f"<td>{escape(message['Subject'] or '')}</td></tr>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>cxloop mail</title></head><body><h1>Mail kept by the local SMTP server</h1>"
        f"<p>{len(rows)} message(s) in {escape(str(directory))}</p><table><thead><tr>"
        "<th>Received</th><th>To</th><th>Subject</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )


def _message(path: Path) -> str:
    message = _read(path)
    part = message.get_body(preferencelist=("html", "plain"))
    content = part.get_content() if part is not None else ""
    if part is not None and part.get_content_type() == "text/plain":
        content = f"<pre>{escape(content)}</pre>"
    return (
        f"<p><a href='/mail'>All mail</a></p><dl><dt>To</dt><dd>{escape(message['To'] or '')}</dd>"
        f"<dt>Subject</dt><dd>{escape(message['Subject'] or '')}</dd></dl><hr>{content}"
    )


def register_viewer(app: faust.App, directory: Path) -> None:
    """Pages to read the kept mail: /mail and /mail/<file>."""

    @app.page("/mail")
    class MailIndex(View):
        async def get(self, request: Request) -> Response:
            return self.html(await asyncio.to_thread(_index, directory))

    @app.page("/mail/{name}")
    class MailMessage(View):
        async def get(self, request: Request, name: str) -> Response:
            path = directory / name
            if (
                "/" in name
                or not name.endswith(".eml")
                or not await asyncio.to_thread(path.is_file)
            ):
                return self.html("<p>No such message.</p>", status=404)
            return self.html(await asyncio.to_thread(_message, path))
