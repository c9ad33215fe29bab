"""Third parties: an employee (their sponsor) invites a vendor's engineer or a
contractor, who sets a password and enrols MFA before anything else, may ask
only for the profiles the sponsor gave them (of those the catalog opens to
externals), and stops at the contract's end: the account is disabled, which
revokes their grants at the source and ends their tokens and sessions. Their
sponsor is reminded 14 and 3 days before; if the sponsor leaves, their externals
are suspended until someone takes the sponsorship over. Every step is an audit
event in its transaction.
"""

import re
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.oidc import PartnerIdentity, oidc_identity_link
from accounts.selectors import recent_step_up_record
from audit import trail
from audit.actions import Action
from audit.trail import utc_iso
from broker.lifecycle.common import checked_reason
from broker.lifecycle.errors import Conflict, InvalidRequest, NotAllowed, NotFound, StepUpRequired
from broker.models import AccessProfile, ExternalAccess
from broker.policy.externals import (
    external_of,
    invitation_digest,
    open_invitation_by_digest,
    partner_of,
)
from broker.policy.locks import is_security, lock_refusal
from broker.policy.requesters import can_request
from lib.text import has_control_characters

LONGEST_CONTRACT = timedelta(days=366)
INVITATION_LASTS = timedelta(days=7)
REMIND_DAYS_BEFORE = (14, 3)
USERNAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
INVALID_INVITATION = "this invitation is not valid (used, expired or unknown): ask your sponsor"


def sponsorable_profiles(sponsor) -> list[AccessProfile]:
    """What a sponsor may give a third party: profiles open to externals that the
    sponsor may ask for themselves (nobody delegates what they do not have)."""
    return [
        p
        for p in AccessProfile.objects.filter(enabled=True)
        if p.definition.external == "allowed" and can_request(sponsor, p)
    ]


def _check_sponsor(sponsor, doing: str) -> None:
    if not sponsor.is_active or external_of(sponsor) is not None:
        raise NotAllowed("only employees sponsor external accounts")
    if locked := lock_refusal(sponsor):
        raise NotAllowed(f"you may not {doing} while {locked}")
    if recent_step_up_record(sponsor) is None:
        raise StepUpRequired("verify your MFA code first")


def external_invite(
    *,
    sponsor,
    username: str,
    email: str,
    company: str,
    contract_ends_at: datetime,
    profiles: list[AccessProfile],
    info: trail.RequestInfo,
) -> tuple[ExternalAccess, str]:
    """Create the third party's account (no password yet) and a one-time
    invitation; the token is returned once, only its digest is kept."""
    _check_sponsor(sponsor, "invite")
    username, email, company = username.strip(), email.strip(), company.strip()
    now = timezone.now()
    errors = {}
    if not USERNAME.match(username):
        errors["username"] = "letters, digits and @.+-_ only, 150 at most"
    elif get_user_model().objects.filter(username__iexact=username).exists():
        errors["username"] = "taken"
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = "not an email address"
        else:
            if get_user_model().objects.filter(email__iexact=email).exists():
                errors["email"] = "another account has this address"
    if not company or len(company) > 200 or has_control_characters(company):
        errors["company"] = "1 to 200 characters of plain text"
    if not now < contract_ends_at <= now + LONGEST_CONTRACT:
        errors["contract_ends_at"] = "in the future, at most a year ahead"
    allowed = {p.pk for p in sponsorable_profiles(sponsor)}
    if not profiles:
        errors["profiles"] = "give at least one profile"
    elif any(p.pk not in allowed for p in profiles):
        errors["profiles"] = "only profiles open to externals that you may ask for yourself"
    if errors:
        raise InvalidRequest("the invitation is not valid", fields=errors)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(username=username, email=email)
        except IntegrityError:  # the same name, at the same moment
            raise InvalidRequest(
                "the invitation is not valid", fields={"username": "taken"}
            ) from None
        access = ExternalAccess.objects.create(
            user=user,
            sponsor=sponsor,
            company=company,
            contract_ends_at=contract_ends_at,
            invited_at=now,
            invitation_sha256=invitation_digest(token),
            invitation_expires_at=now + INVITATION_LASTS,
        )
        access.profiles.set(profiles)
        trail.record(
            action=Action.EXTERNAL_INVITED,
            info=info,
            actor=sponsor,
            target=user,
            data={
                "external": username,
                "company": company,
                "contract_ends": utc_iso(contract_ends_at),
                "profiles": sorted(p.slug for p in profiles),
            },
        )
    return access, token


def external_accept(*, invitation_sha256: str, password: str, info: trail.RequestInfo):
    """The invitee sets their password (once, while the invitation holds); MFA
    enrolment comes next, before anything else. The invitation is named by its
    digest (broker/web/externals.py keeps only that between pages)."""
    access = open_invitation_by_digest(invitation_sha256)
    if access is None:
        raise NotFound(INVALID_INVITATION)
    if partner_of(access.company):
        # Their company's identity provider decides whether they still work there.
        raise NotAllowed(
            f"{access.company}'s people sign in through {access.company}'s own sign-in"
        )
    try:
        validate_password(password, access.user)
    except ValidationError as exc:
        raise InvalidRequest(
            "choose another password", fields={"password": " ".join(exc.messages)}
        ) from None
    with transaction.atomic():
        _claim_invitation(access)
        access.user.set_password(password)
        access.user.save(update_fields=["password"])
        trail.record(
            action=Action.EXTERNAL_ACCEPTED,
            info=info,
            actor=access.user,
            target=access.user,
            data={"external": access.user.get_username(), "company": access.company},
        )
    # Fresh: the user read with the invitation still carries it as not accepted.
    return get_user_model().objects.get(pk=access.user_id)


def _claim_invitation(access: ExternalAccess) -> None:
    """Use the invitation up, once: of two accepting at the same moment, one loses."""
    claimed = ExternalAccess.objects.filter(pk=access.pk, accepted_at__isnull=True).update(
        accepted_at=timezone.now(), invitation_sha256="", invitation_expires_at=None
    )
    if not claimed:
        raise Conflict("this invitation was just used")


def external_accept_through_partner(
    *, invitation_sha256: str, partner: str, identity: PartnerIdentity, info: trail.RequestInfo
):
    """The invitee signed in at their company's identity provider: the account is
    bound to that identity (its issuer and subject) and never has a password; MFA
    enrolment comes next, before anything else. The invitation is named by its
    digest: the token itself waited in no session."""
    access = open_invitation_by_digest(invitation_sha256)
    if access is None:
        raise NotFound(INVALID_INVITATION)
    if partner_of(access.company) != partner:
        raise NotAllowed(f"this invitation is not for {partner}'s people")
    with transaction.atomic():
        _claim_invitation(access)
        user = access.user
        user.set_unusable_password()
        user.save(update_fields=["password"])
        try:
            with transaction.atomic():
                oidc_identity_link(
                    user=user,
                    issuer=identity.issuer,
                    subject=identity.subject,
                    how="partner",
                    info=info,
                )
        except IntegrityError:
            raise Conflict(
                f"this {access.company} identity already signs in to another Airlock account"
            ) from None
        trail.record(
            action=Action.EXTERNAL_ACCEPTED,
            info=info,
            actor=user,
            target=user,
            data={"external": user.get_username(), "company": access.company, "partner": partner},
        )
    return get_user_model().objects.get(pk=access.user_id)


def _disable(access: ExternalAccess, field: str, action: str, reason: str, actor, info) -> None:
    """End or suspend: the account is disabled, which revokes its grants at the
    source, withdraws its requests, and ends its tokens and sessions."""
    now = timezone.now()
    with transaction.atomic():
        if not ExternalAccess.objects.filter(pk=access.pk, **{field: None}).update(**{field: now}):
            return
        user = access.user
        user.is_active = False
        user.save(update_fields=["is_active"])
        trail.record(
            action=action,
            info=info,
            actor=actor,
            target=user,
            reason=reason,
            data={
                "external": user.get_username(),
                "company": access.company,
                "sponsor": access.sponsor.get_username(),
            },
        )


def externals_tick(now: datetime | None = None) -> dict[str, int]:
    """Beat's: end contracts that ended, remind sponsors 14 and 3 days before,
    suspend the externals of a sponsor who left."""
    now = now or timezone.now()
    counts = {"ended": 0, "reminded": 0, "suspended": 0}
    live = ExternalAccess.objects.filter(ended_at__isnull=True).select_related("user", "sponsor")
    for access in live.filter(contract_ends_at__lte=now):
        _disable(
            access, "ended_at", Action.EXTERNAL_ENDED, "the contract ended", None, trail.SYSTEM
        )
        counts["ended"] += 1
    for access in live.filter(contract_ends_at__gt=now, suspended_at__isnull=True):
        # Only an account this suspension disables is suspended: a hand-over
        # re-enables what it suspended, never an account disabled for another reason.
        if not access.sponsor.is_active and access.user.is_active:
            reason = f"their sponsor {access.sponsor} left"
            _disable(access, "suspended_at", Action.EXTERNAL_SUSPENDED, reason, None, trail.SYSTEM)
            counts["suspended"] += 1
            continue
        days_left = (access.contract_ends_at - now).days
        due = [d for d in REMIND_DAYS_BEFORE if days_left < d]
        if due and (access.reminded_days is None or min(due) < access.reminded_days):
            reminded = ExternalAccess.objects.filter(
                pk=access.pk, reminded_days=access.reminded_days
            ).update(reminded_days=min(due))
            if reminded:
                with transaction.atomic():
                    trail.record(
                        action=Action.EXTERNAL_CONTRACT_ENDING,
                        info=trail.SYSTEM,
                        target=access.user,
                        data={
                            "external": access.user.get_username(),
                            "sponsor": access.sponsor.get_username(),
                            "contract_ends": utc_iso(access.contract_ends_at),
                            "days_left": days_left,
                        },
                    )
                counts["reminded"] += 1
    return counts


def _managed(external_id: int, actor) -> ExternalAccess:
    """The third party their sponsor, the security role or an admin acts on, after
    MFA; for anyone else it does not exist."""
    access = ExternalAccess.objects.select_related("user", "sponsor").filter(pk=external_id).first()
    may = access is not None and (
        actor.pk == access.sponsor_id or is_security(actor) or actor.is_superuser
    )
    if not may:
        raise NotFound("no such external account")
    if locked := lock_refusal(actor):
        raise NotAllowed(f"not now: {locked}")
    if recent_step_up_record(actor) is None:
        raise StepUpRequired("verify your MFA code first")
    if access.ended_at is not None:
        raise Conflict("their access has ended")
    return access


def external_end(
    *, external_id: int, actor, reason: str, info: trail.RequestInfo
) -> ExternalAccess:
    """Their sponsor, the security role or an admin ends a third party's access now."""
    reason = checked_reason(reason, "say why their access ends")
    access = _managed(external_id, actor)
    _disable(access, "ended_at", Action.EXTERNAL_ENDED, reason, actor, info)
    access.refresh_from_db()
    return access


def external_hand_over(
    *, external_id: int, actor, new_sponsor, info: trail.RequestInfo
) -> ExternalAccess:
    """The sponsor (before leaving), the security role or an admin gives the
    sponsorship to another employee who may ask for every profile the third party
    has; a third party suspended because their sponsor left is active again."""
    access = _managed(external_id, actor)
    if new_sponsor is None or not new_sponsor.is_active or external_of(new_sponsor):
        raise InvalidRequest(
            "the new sponsor must be an active employee", fields={"sponsor": "an active employee"}
        )
    if new_sponsor.pk in (access.sponsor_id, access.user_id):
        raise InvalidRequest("choose someone else", fields={"sponsor": "someone else"})
    missing = [p.slug for p in access.profiles.all() if not can_request(new_sponsor, p)]
    if missing:
        raise InvalidRequest(
            f"{new_sponsor} may not ask for {', '.join(missing)}",
            fields={"sponsor": "they must be able to ask for every profile given"},
        )
    with transaction.atomic():
        locked = ExternalAccess.objects.select_for_update().get(pk=access.pk)
        if locked.ended_at is not None:
            raise Conflict("their access has ended")
        previous, suspended = access.sponsor, locked.suspended_at is not None
        access.sponsor, access.suspended_at = new_sponsor, None
        access.save(update_fields=["sponsor", "suspended_at"])
        if suspended:
            # Suspended because their sponsor left: back with the new one. An account
            # disabled for any other reason stays disabled.
            access.user.is_active = True
            access.user.save(update_fields=["is_active"])
        trail.record(
            action=Action.EXTERNAL_HANDED_OVER,
            info=info,
            actor=actor,
            target=access.user,
            data={
                "external": access.user.get_username(),
                "from": previous.get_username(),
                "to": new_sponsor.get_username(),
                **({"resumed": True} if suspended else {}),
            },
        )
    return access


def external_contract_change(
    *, external_id: int, actor, contract_ends_at: datetime, info: trail.RequestInfo
) -> ExternalAccess:
    """The contract goes on (or stops sooner): its sponsor, the security role or
    an admin sets the new end, at most a year ahead; reminders start over."""
    access = _managed(external_id, actor)
    now = timezone.now()
    if not now < contract_ends_at <= now + LONGEST_CONTRACT:
        raise InvalidRequest(
            "the contract's end is not valid",
            fields={"contract_ends_at": "in the future, at most a year ahead"},
        )
    with transaction.atomic():
        previous = access.contract_ends_at
        access.contract_ends_at, access.reminded_days = contract_ends_at, None
        access.save(update_fields=["contract_ends_at", "reminded_days"])
        trail.record(
            action=Action.EXTERNAL_CONTRACT_CHANGED,
            info=info,
            actor=actor,
            target=access.user,
            data={
                "external": access.user.get_username(),
                "from": utc_iso(previous),
                "to": utc_iso(contract_ends_at),
            },
        )
    return access
