"""Sign-ins and failed sign-ins go to the audit trail, whatever the method."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from audit import trail
from audit.actions import Action
from audit.trail import request_info


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        trail.record(action=Action.AUTH_LOGIN, info=request_info(request), actor=user, target=user)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the username: Django masks the password, but keep nothing else either.
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        trail.record(
            action=Action.AUTH_LOGIN_FAILED, info=request_info(request), data={"username": username}
        )
