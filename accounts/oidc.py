"""OpenID Connect sign-in. Someone at the IdP is the issuer and the subject of their
ID token (`iss`, `sub`), bound to one Airlock account at their first sign-in and
matched on that pair alone. A username is only the name given to an account
created here; an email binds an existing account only when the IdP says it is
verified, and never a staff account or one already bound. Groups come from a claim.
"""

import logging
import time
from dataclasses import dataclass

import jwt
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
from lib.partner_idps import PartnerIdP
from lib.secrets import read_secret

# How far the IdP's clock may be ahead of ours when a token's expiry is read.
CLOCK_SKEW_SECONDS = 60


logger = logging.getLogger(__name__)


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


def id_token_problem(payload: dict, *, issuer: str, client_id: str) -> str | None:
    """Why an ID token (whose signature and nonce the library has checked) does not
    sign anyone in, or None: it must come from `issuer`, for this client, unexpired,
    about someone (OpenID Connect Core 3.1.3.7)."""
    if payload.get("iss") != issuer:
        return "The sign-in came from another identity provider."
    audience = payload.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        return "The identity provider's token is for another application."
    expires = payload.get("exp")
    if not isinstance(expires, int | float) or expires + CLOCK_SKEW_SECONDS < time.time():
        return "The identity provider's token has expired; sign in again."
    subject = payload.get("sub")
    if not (isinstance(subject, str) and 0 < len(subject) <= 255):  # OIDC's own bounds
        return "The identity provider's token names nobody."
    return None


class CheckedTokenBackend(OIDCAuthenticationBackend):
    def verify_token(self, token, **kwargs):
        """The library's signature and nonce checks; an expired or malformed token
        is a refused sign-in, not a server error (PyJWT raises more than the
        DecodeError the library catches)."""
        try:
            return super().verify_token(token, **kwargs)
        except jwt.PyJWTError as exc:
            raise SignInRefused(f"The identity provider's token is not valid: {exc}.") from None


class AirlockOIDCBackend(CheckedTokenBackend):
    def get_userinfo(self, access_token, id_token, payload):
        """The userinfo claims, with the issuer and subject of the ID token (whose
        signature and nonce the library has checked; userinfo need not carry `iss`).

        The token must come from the configured issuer, for this client, and be
        about the subject userinfo describes (OpenID Connect Core 3.1.3.7, 5.3.2).
        Without an ID token (the library's DRF path) nothing proves them: refused."""
        payload = payload or {}
        issuer = self.get_settings("OIDC_OP_ISSUER")
        if problem := id_token_problem(payload, issuer=issuer, client_id=self.OIDC_RP_CLIENT_ID):
            self._refuse(problem)
        subject = payload["sub"]
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


@dataclass(frozen=True)
class PartnerIdentity:
    """Who a partner's identity provider says signed in: its issuer and subject."""

    issuer: str
    subject: str


class PartnerOIDCBackend(CheckedTokenBackend):
    """The code flow with one partner's identity provider (lib/partner_idps.py):
    the library's token exchange and signature and nonce checks, with that
    partner's settings. It names who signed in and never makes or finds an
    account: which third party that is, is the broker's to say. Not in
    AUTHENTICATION_BACKENDS: only the partner callback calls it."""

    # How long a partner's identity provider may take (connect, read): one that
    # stops answering must not hold a web worker per callback anyone sends.
    TIMEOUT = (5, 10)

    def __init__(self, partner: PartnerIdP, redirect_uri: str):
        self.partner, self.redirect_uri = partner, redirect_uri
        super().__init__()

    def get_settings(self, attr, *args):
        partner = self.partner
        own = {
            "OIDC_OP_TOKEN_ENDPOINT": partner.token_endpoint,
            "OIDC_OP_USER_ENDPOINT": None,
            "OIDC_OP_JWKS_ENDPOINT": partner.jwks_endpoint,
            "OIDC_RP_CLIENT_ID": partner.client_id,
            "OIDC_RP_CLIENT_SECRET": read_secret(partner.client_secret_env),
            "OIDC_RP_SIGN_ALGO": partner.sign_algo,
            "OIDC_RP_IDP_SIGN_KEY": None,
            # The library reverses this name for the token request's redirect_uri;
            # each partner has its own callback, put in by get_token.
            "OIDC_AUTHENTICATION_CALLBACK_URL": "login",
            "OIDC_TIMEOUT": self.TIMEOUT,
            "OIDC_USE_NONCE": True,
            # Never kept in the session, whatever the staff sign-in's settings say.
            "OIDC_STORE_ACCESS_TOKEN": False,  # nosec B105  # a flag, not a password
            "OIDC_STORE_ID_TOKEN": False,  # nosec B105  # a flag, not a password
            "OIDC_ALLOW_UNSECURED_JWT": False,
        }
        return own[attr] if attr in own else super().get_settings(attr, *args)

    def get_token(self, payload):
        answer = super().get_token({**payload, "redirect_uri": self.redirect_uri})
        if not isinstance(answer, dict):
            raise SignInRefused("The identity provider's token answer is not a JSON object.")
        return answer

    def get_or_create_user(self, access_token, id_token, payload) -> PartnerIdentity:
        payload = payload or {}
        partner = self.partner
        if problem := id_token_problem(payload, issuer=partner.issuer, client_id=partner.client_id):
            raise SignInRefused(problem)
        return PartnerIdentity(issuer=partner.issuer, subject=payload["sub"])


def partner_identity(
    request, partner: PartnerIdP, *, nonce: str, redirect_uri: str
) -> PartnerIdentity | None:
    """Exchange the callback's code with the partner's identity provider and check
    its ID token; None when it does not prove anyone."""
    try:
        return PartnerOIDCBackend(partner, redirect_uri).authenticate(request, nonce=nonce)
    except Exception as exc:  # a third party's answers: anything may fail
        # The kind of failure only: its text may quote the partner's answer.
        logger.warning("partner sign-in refused: %s", type(exc).__name__)
        return None
