"""Sign-ins and failed sign-ins go to the audit trail, whatever the method; a
disabled account loses its tokens and sessions, whatever disabled it."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.services import account_access_end
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


@receiver(post_save, sender=get_user_model())
def account_disabled(sender, instance, created, **kwargs) -> None:
    if not instance.is_active and not created:
        account_access_end(user=instance, info=trail.SYSTEM)
