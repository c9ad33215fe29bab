"""Third parties under a sponsor: what they may ask for, and the rules that hold
them tighter than staff (broker/lifecycle/externals.py changes them)."""

import hashlib

from django.conf import settings
from django.utils import timezone

from accounts.models import OidcIdentity
from broker.catalog.spec import ExternalRules, Principals
from broker.models import AccessProfile, CatalogState, ExternalAccess
from lib.partner_idps import PartnerIdP, company_skeleton

_UNKNOWN = object()


def external_of(user) -> ExternalAccess | None:
    """The person's external access, if they are a third party (read once per
    user object: every step of a request asks)."""
    cached = getattr(user, "_external_access", _UNKNOWN)
    if cached is _UNKNOWN:
        # Read with the user already (select_related("...__external_access")): no query.
        joined = getattr(getattr(user, "_state", None), "fields_cache", {})
        if "external_access" in joined:
            cached = joined["external_access"]
        else:
            cached = (
                ExternalAccess.objects.select_related("sponsor").filter(user_id=user.pk).first()
            )
        user._external_access = cached
    return cached


def external_rules() -> ExternalRules:
    state = CatalogState.objects.first()
    return (
        ExternalRules.model_validate(state.externals)
        if state and state.externals
        else (ExternalRules())
    )


def external_problem(access: ExternalAccess, profile: AccessProfile) -> str | None:
    """Why this third party may not ask for (or hold) the profile, or None."""
    who = access.user.get_username()
    if access.ended_at is not None:
        return f"{who}'s external access has ended"
    if access.suspended_at is not None:
        return f"{who}'s external access is suspended: their sponsor left"
    if timezone.now() >= access.contract_ends_at:
        return f"{who}'s contract has ended"
    if access.accepted_at is None:
        return f"{who} has not accepted their invitation"
    if profile.definition.external != "allowed":
        return f"{profile.slug} is not open to external accounts"
    if not access.profiles.filter(pk=profile.pk).exists():
        return f"{who}'s sponsor did not give them {profile.slug}"
    return None


def sponsor_principals(requester) -> Principals | None:
    """The first approval step of a third party's request: their sponsor."""
    access = external_of(requester)
    return Principals(users=[access.sponsor.get_username()]) if access else None


def is_sponsor(user) -> bool:
    return ExternalAccess.objects.filter(sponsor_id=user.pk, ended_at__isnull=True).exists()


def person_label(user) -> str:
    """How a person is named wherever shown: a third party says so, and for whom."""
    access = external_of(user)
    name = user.get_username()
    return f"{name} (external, {access.company})" if access else name


def invitation_digest(token: str) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def open_invitation(token: str) -> ExternalAccess | None:
    """The invitation this token opens, while it may still be used."""
    return open_invitation_by_digest(invitation_digest(token))


def open_invitation_by_digest(digest: str) -> ExternalAccess | None:
    """The invitation with this digest, while it may still be used: not used yet,
    not expired, for an account still active and a contract not ended."""
    now = timezone.now()
    access = (
        ExternalAccess.objects.select_related("user")
        .filter(invitation_sha256=digest, accepted_at__isnull=True)
        .exclude(invitation_sha256="")
        .first()
    )
    if access is None or access.invitation_expires_at is None:
        return None
    if now >= access.invitation_expires_at or now >= access.contract_ends_at:
        return None
    if not access.user.is_active or access.ended_at or access.suspended_at:
        return None
    return access


def access_is_over(access: ExternalAccess) -> bool:
    """Ended, suspended, or past the contract's end (even before beat disables
    the account)."""
    return bool(access.ended_at or access.suspended_at or timezone.now() >= access.contract_ends_at)


def partner_idp(key: str) -> PartnerIdP | None:
    return settings.AIRLOCK_PARTNER_OIDC.get(key)


def partner_of(company: str) -> str | None:
    """The partner whose own identity provider signs in this company's people, if
    one is configured: they sign in there, never with a password. Names are
    compared as they look (Acme with a Cyrillic capital A is Acme)."""
    wanted = company_skeleton(company)
    partners = settings.AIRLOCK_PARTNER_OIDC.items()
    return next((key for key, idp in partners if company_skeleton(idp.company) == wanted), None)


def partner_account(key: str, issuer: str, subject: str):
    """The third party bound to this identity at `key`'s identity provider, while
    their company is the partner's: a partner's identity provider never signs in
    anyone else (staff, another company's people), whatever it asserts."""
    identity = (
        OidcIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    )
    if identity is None:
        return None
    access = external_of(identity.user)
    if access is None or partner_of(access.company) != key:
        return None
    return None if access_is_over(access) else identity.user
