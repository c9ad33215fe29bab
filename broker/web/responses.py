"""Helpers shared by the web views: lifecycle errors as pages."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from broker import lifecycle


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
