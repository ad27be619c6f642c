"""structlog setup, done once per process: key=value events, JSON when not on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog for this process.

    Args:
        level: minimum level name.
        json: force JSON lines (True) or the console renderer (False); default: JSON unless
            stderr is a terminal.
    """
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors.append(structlog.processors.dict_tracebacks)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: object) -> structlog.WriteLogger:
    # Looked up on every call, not once: a test runner may swap sys.stderr and close the old one.
    # WriteLogger writes line and newline in one call: serve and its workers share stderr, and
    # PrintLogger's two writes let their lines glue together.
    return structlog.WriteLogger(file=sys.stderr)
