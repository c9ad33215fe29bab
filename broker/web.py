"""Helpers shared by the web views: where a request came from, lifecycle errors."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from broker import audit, lifecycle
from broker.models import Source


def request_info(request: HttpRequest, source: str = Source.WEB) -> audit.RequestInfo:
    return audit.RequestInfo(
        source=source,
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("user-agent", ""),
    )


def lifecycle_error_response(
    request: HttpRequest, exc: lifecycle.LifecycleError, back_to: str
) -> HttpResponse:
    """Not found and forbidden get their status page; a lost race or bad input a message."""
    if isinstance(exc, lifecycle.NotFound):
        return render(request, "error.html", {"message": exc.message}, status=404)
    if isinstance(exc, lifecycle.NotAllowed):
        return render(request, "error.html", {"message": exc.message}, status=403)
    messages.error(request, exc.message)
    return redirect(back_to)
