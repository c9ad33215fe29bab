from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from broker.selectors.requests import is_auditor


def airlock(request: HttpRequest) -> dict:
    user = request.user
    return {
        "is_auditor": SimpleLazyObject(lambda: user.is_authenticated and is_auditor(user)),
        "oidc_enabled": settings.OIDC_ENABLED,
        "sandbox": settings.AIRLOCK_SANDBOX,
    }
