"""structlog set-up: JSON off a terminal, pretty on one; Faust and aiokafka go the same way."""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes, not when logging was set up:
    a command run inside a test runner (or anything else that swaps stderr) and closed
    since must not leave later log lines writing to a closed file."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog and stdlib logging through one renderer on stderr."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Drop disabled levels before any processing: agents log per event at debug.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # aiosmtpd logs message envelopes (addresses) at INFO: keep them out. Faust, mode and
    # aiokafka narrate every start-up step at INFO, alembic every migration step (cxloop db
    # upgrade says what it did); their warnings and errors still show.
    for noisy in (
        "mail.log",
        "alembic",
        "faust",
        "mode",
        "aiokafka",
        "streams.app",
        "streams.kafka_transport",
    ):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
