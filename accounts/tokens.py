"""Personal API tokens: created and revoked by their owner, shown once, stored hashed."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from audit import trail
from audit.actions import Action

TOKEN_PREFIX = "airlock_"  # noqa: S105  # nosec B105  # a marker, not a secret
# Recording every use would turn each API call into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(Exception):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, user, name: str, days: int, info: trail.RequestInfo) -> tuple[ApiToken, str]:
    """A new token for `user`; the plaintext is returned once, to show."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenError("give the token a name of at most 100 characters")
    if not 1 <= days <= settings.AIRLOCK_API_TOKEN_MAX_DAYS:
        raise TokenError(f"a token lasts from 1 to {settings.AIRLOCK_API_TOKEN_MAX_DAYS} days")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=plaintext[: len(TOKEN_PREFIX) + 6],
            token_hash=_hash(plaintext),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        trail.record(
            action=Action.API_TOKEN_CREATED,
            info=info,
            actor=user,
            target=user,
            data={"token": token.pk, "name": name, "expires_at": token.expires_at.isoformat()},
        )
    return token, plaintext


def token_revoke(*, user, token_id: int, info: trail.RequestInfo) -> ApiToken:
    with transaction.atomic():
        token = (
            ApiToken.objects.select_for_update()
            .filter(user=user, pk=token_id, revoked_at=None)
            .first()
        )
        if token is None:
            raise TokenError("no such token, or it is already revoked")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        trail.record(
            action=Action.API_TOKEN_REVOKED,
            info=info,
            actor=user,
            target=user,
            data={"token": token.pk, "name": token.name},
        )
    return token


def token_authenticate(plaintext: str, *, user_related: tuple[str, ...] = ()) -> ApiToken:
    """The live token matching `plaintext`; TokenError says why it is refused.
    `user_related`: the user's relations to read with them, in the same query."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 100:
        raise TokenError("not an Airlock API token")
    related = ["user", *(f"user__{name}" for name in user_related)]
    token = ApiToken.objects.select_related(*related).filter(token_hash=_hash(plaintext)).first()
    now = timezone.now()
    if token is None:
        raise TokenError("unknown API token")
    if token.revoked_at is not None:
        raise TokenError("this API token was revoked; create a new one")
    if token.expires_at <= now:
        raise TokenError("this API token has expired; create a new one")
    if not token.user.is_active:
        raise TokenError("this account is disabled")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def tokens_of(user):
    return ApiToken.objects.filter(user=user, revoked_at=None, expires_at__gt=timezone.now())
