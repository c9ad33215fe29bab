"""Logs as one JSON object a line (AIRLOCK_LOG_FORMAT=json), for the log pipeline
people already run: each names the request it was written while serving (an id
also sent back as X-Request-ID) and who made it. Messages are Airlock's own
sentences; no secret is ever logged (tests/test_no_secret_leaks.py,
tests/test_json_logs.py)."""

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("request_id", default="")
# An id a proxy in front already gave the request, if it looks like one.
GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request.airlock_request_id = given if GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(request.airlock_request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.airlock_request_id
            return response
        finally:
            request_id.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # Django logs a response's 4xx/5xx after the middleware returned: with the
        # request itself in the record.
        request = getattr(record, "request", None)
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(request, "airlock_request_id", "") or request_id.get(),
            "actor": _actor(request),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _actor(request) -> str:
    """The signed-in user of the request being served (a name, never a credential)."""
    # Imported here: Django configures logging before the apps (and their models) load.
    from broker.model_audit import current_request

    user = getattr(request or current_request.get(), "user", None)
    return user.get_username() if user is not None and user.is_authenticated else ""
