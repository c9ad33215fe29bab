"""OpenID Connect sign-in. Someone at the IdP is the issuer and the subject of their
ID token (`iss`, `sub`), bound to one Airlock account at their first sign-in and
matched on that pair alone. A username is only the name given to an account
created here; an email binds an existing account only when the IdP says it is
verified, and never a staff account or one already bound. Groups come from a claim.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.models import OidcIdentity
from accounts.selectors import active_user_with_email
from audit import trail
from audit.actions import Action
from audit.trail import request_info


class SignInRefused(SuspiciousOperation):
    """mozilla-django-oidc turns it into a failed sign-in (and logs it)."""


def verified_email(claims: dict) -> str:
    """The email, if the IdP vouches for it with a real JSON true ("false" is a
    non-empty string, and some IdPs send strings) and it fits an account."""
    email = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(email, str):
        return ""
    return email if len(email) <= 254 else ""


def username_from_claims(claims: dict) -> str:
    """The name of an account made at the first sign-in: the IdP's username, else
    the verified email."""
    username = claims.get("preferred_username")
    return username if isinstance(username, str) and username else verified_email(claims)


def groups_from_claims(claims: dict, claim: str, mapping: dict[str, str]) -> set[str]:
    """The Airlock groups a user's IdP groups map to (unmapped IdP groups are ignored)."""
    idp_groups = claims.get(claim) or []
    if isinstance(idp_groups, str):
        idp_groups = [idp_groups]
    return {mapping[group] for group in idp_groups if group in mapping}


def oidc_identity_link(*, user, issuer: str, subject: str, how: str, info: trail.RequestInfo):
    """Bind an IdP identity to an account, audited. Call inside a transaction."""
    OidcIdentity.objects.create(
        user=user, issuer=issuer, subject=subject, linked_at=timezone.now(), linked_by=how
    )
    trail.record(
        action=Action.OIDC_LINKED,
        info=info,
        actor=user,
        target=user,
        data={"issuer": issuer, "subject": subject, "by": how},
    )


class AirlockOIDCBackend(OIDCAuthenticationBackend):
    def get_userinfo(self, access_token, id_token, payload):
        """The userinfo claims, with the issuer and subject of the ID token (whose
        signature and nonce the library has checked; userinfo need not carry `iss`).

        The token must come from the configured issuer, for this client, and be
        about the subject userinfo describes (OpenID Connect Core 3.1.3.7, 5.3.2).
        Without an ID token (the library's DRF path) nothing proves them: refused."""
        payload = payload or {}
        issuer = self.get_settings("OIDC_OP_ISSUER")
        if payload.get("iss") != issuer:
            self._refuse("The sign-in came from another identity provider.")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.OIDC_RP_CLIENT_ID not in audiences:
            self._refuse("The identity provider's token is for another application.")
        subject = payload.get("sub")
        if not (isinstance(subject, str) and 0 < len(subject) <= 255):  # OIDC's own bounds
            self._refuse("The identity provider's token names nobody.")
        claims = super().get_userinfo(access_token, id_token, payload)
        if not isinstance(claims, dict) or claims.get("sub") != subject:
            self._refuse("The identity provider's answers are about different people.")
        return {**claims, "iss": issuer, "sub": subject}

    def get_user(self, user_id):
        """The account a session names, while it is active: the library's own
        restores a disabled one too, so its sessions would outlive the disabling
        (Django's ModelBackend ends them; so must single sign-on)."""
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        try:
            with transaction.atomic():
                return self._bound_user(claims)
        except IntegrityError:  # the same first sign-in, twice at once: one of them wins
            self._refuse("That sign-in was already under way; sign in again.")

    def _bound_user(self, claims: dict):
        """The account bound to this issuer and subject; else, on the first sign-in,
        the account with this verified email, or a new one: bound now, audited."""
        identity = (
            OidcIdentity.objects.select_related("user")
            .filter(issuer=claims["iss"], subject=claims["sub"])
            .first()
        )
        if identity is not None:
            return self.update_user(identity.user, claims)
        user, how = self._owner_of_verified_email(claims), "email"
        if user is None:
            user, how = self.create_user(claims), "created"
        request = getattr(self, "request", None)
        oidc_identity_link(
            user=user,
            issuer=claims["iss"],
            subject=claims["sub"],
            how=how,
            info=request_info(request),
        )
        return self.update_user(user, claims)

    def _owner_of_verified_email(self, claims: dict):
        """The existing account this first sign-in may be bound to by its email."""
        user = active_user_with_email(verified_email(claims))
        if user is None:
            return None
        if user.is_staff or user.is_superuser:
            self._refuse(
                f"{user.get_username()} is an administrator's account: it is never bound to "
                "single sign-on by email. Sign in with its password, or ask an admin to bind it."
            )
        if user.oidc_identities.exists():
            self._refuse(
                f"{user.get_username()} is already bound to another single sign-on identity; "
                "ask an admin."
            )
        return user

    def create_user(self, claims):
        username = username_from_claims(claims)
        try:
            UnicodeUsernameValidator()(username)
        except ValidationError:
            username = ""
        if not username or len(username) > 150:
            self._refuse("The identity provider gave no username Airlock can use; ask an admin.")
        if self.UserModel.objects.filter(username=username).exists():
            self._refuse(
                f"An Airlock account named {username} already exists and is not bound to this "
                "single sign-on identity; ask an admin."
            )
        # Only an address the IdP vouches for: another would let anyone make an
        # account carrying someone else's email, which later links by email rely on.
        return self.UserModel.objects.create_user(username, email=verified_email(claims))

    def update_user(self, user, claims):
        mapping = settings.AIRLOCK_OIDC_GROUP_MAP
        wanted = groups_from_claims(claims, settings.AIRLOCK_OIDC_GROUPS_CLAIM, mapping)
        # Only what changes: the trail names each group added or removed (model_audit.py).
        held = user.groups.filter(name__in=set(mapping.values()))
        user.groups.remove(*[g for g in held if g.name not in wanted])
        missing = sorted(wanted - {g.name for g in held})
        user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in missing])
        return user

    def _refuse(self, message: str):
        """Fail the sign-in and tell the person why, on the page they land on."""
        request = getattr(self, "request", None)
        if request is not None:
            messages.error(request, message, fail_silently=True)
        raise SignInRefused(message)
