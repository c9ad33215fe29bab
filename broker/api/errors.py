"""Every API error in one shape: {"error": {"code", "message", "fields"}}."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.services import MfaError
from broker import lifecycle
from broker.selectors.audit_log import FilterError
from lib.secrets import MissingSecret

LIFECYCLE_STATUS = {
    lifecycle.InvalidRequest: status.HTTP_400_BAD_REQUEST,
    lifecycle.NotAllowed: status.HTTP_403_FORBIDDEN,
    lifecycle.NotFound: status.HTTP_404_NOT_FOUND,
    lifecycle.Conflict: status.HTTP_409_CONFLICT,
}
DRF_CODES = {
    exceptions.ParseError: "malformed",
    exceptions.AuthenticationFailed: "unauthenticated",
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    if isinstance(exc, lifecycle.LifecycleError):
        http_status = next(
            value for kind, value in LIFECYCLE_STATUS.items() if isinstance(exc, kind)
        )
        return Response(error_body(exc.code, exc.message, exc.fields), status=http_status)
    if isinstance(exc, MfaError):
        return Response(error_body("mfa_failed", str(exc)), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, FilterError):
        return Response(error_body("invalid", str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, MissingSecret):
        # Says which variable to set (never a value): sealing exports needs its key.
        return Response(
            error_body("not_configured", str(exc)), status=status.HTTP_503_SERVICE_UNAVAILABLE
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: let Django log it and answer 500
    code = next((value for kind, value in DRF_CODES.items() if isinstance(exc, kind)), "error")
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "the request is not valid", _fields(exc.detail))
    else:
        message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(exc, Http404 | DjangoPermissionDenied):
            code = "not_found" if isinstance(exc, Http404) else "forbidden"
        response.data = error_body(code, message)
    return response


def _fields(detail, prefix: str = "") -> dict[str, str]:
    """DRF's nested error lists, flattened to one message per field."""
    if isinstance(detail, dict):
        fields: dict[str, str] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" else f"{prefix}{key}"
            fields.update(
                _fields(value, f"{name}.") if isinstance(value, dict) else {name: _join(value)}
            )
        return fields
    return {"non_field_errors": _join(detail)}


def _join(value) -> str:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)


@csrf_exempt  # it changes nothing, and must answer JSON to a POST without a token too
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/ answer in the API's shape, not with an HTML page."""
    return JsonResponse(error_body("not_found", "no such API endpoint"), status=404)
