"""Helpers shared by the web views: lifecycle errors as pages."""

from django import forms
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


def add_lifecycle_errors(form: forms.Form, exc: lifecycle.LifecycleError) -> None:
    """The service's refusal on the form: each field's message on its field (or the
    form when it has none), else the message for the whole form."""
    for field, message in exc.fields.items():
        form.add_error(field if field in form.fields else None, message)
    if not exc.fields:
        form.add_error(None, exc.message)
