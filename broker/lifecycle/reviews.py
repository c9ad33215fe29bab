"""Access reviews: campaigns that certify who may ask for a profile (or is in a
group). Started on demand or by the catalog's schedule; each eligible person is
kept or removed by a reviewer after MFA; a removal takes effect at once (an
overlay over the catalog: the profile refused, or the group left, which live
grants follow); reminders at half time, the security role at three quarters;
at the deadline the campaign's rule settles whoever is left, and the campaign
is sealed into signed evidence. Every step is an audit event in its transaction.
"""

import hashlib
import logging
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import recent_step_up_record
from audit import signing, trail
from audit.actions import Action
from audit.review_evidence import REVIEW_FORMAT, as_bytes, seal
from audit.trail import utc_iso
from broker.catalog.spec import Principals, ReviewSchedule
from broker.lifecycle.common import checked_reason
from broker.lifecycle.errors import (
    Conflict,
    InvalidRequest,
    LifecycleError,
    NotAllowed,
    NotFound,
    StepUpRequired,
)
from broker.lifecycle.standing import access_enforce_standing
from broker.models import (
    AccessProfile,
    AccessReview,
    AccessReviewItem,
    CatalogState,
    ReviewRemoval,
)
from broker.policy.locks import is_security, lock_refusal, security_principals
from broker.policy.principals import users_matching
from broker.policy.reviews import (
    decided_as,
    line_manager,
    people_under_review,
    person_facts,
    profiles_reviewed,
    review_refusal,
    reviewers_of,
)
from lib.text import has_control_characters

logger = logging.getLogger(__name__)
SHORTEST, LONGEST = timedelta(days=1), timedelta(days=90)
KEPT_FOR_SECURITY = "kept: removing them would leave the security role with nobody"
NOT_REVIEWED = "not reviewed by the deadline"
Decision = AccessReviewItem.Decision


def access_review_start(
    *,
    name: str,
    profile: AccessProfile | None = None,
    group_name: str = "",
    takes: timedelta,
    unreviewed: str = AccessReview.Unreviewed.KEEP,
    reviewers: Principals | None = None,
    by_managers: bool = False,
    schedule: str = "",
    actor=None,
    info: trail.RequestInfo,
) -> AccessReview:
    """Open a campaign over everyone eligible now, each with the facts a reviewer
    needs (and, `by_managers`, the line manager asked to review them). On demand
    (`actor`: the security role or an admin) or by schedule."""
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 100 or has_control_characters(name):
        errors["name"] = "1 to 100 characters of plain text"
    if (profile is None) == (not group_name):
        errors["subject"] = "review one profile or one group"
    elif profile is not None and not profile.enabled:
        errors["subject"] = f"{profile.slug} is not in the catalog"
    elif group_name and not Group.objects.filter(name=group_name).exists():
        errors["subject"] = f"no group {group_name}"
    if not SHORTEST <= takes <= LONGEST:
        errors["takes"] = "from 1 day to 90 days"
    if unreviewed not in AccessReview.Unreviewed.values:
        errors["unreviewed"] = "keep or remove"
    if errors:
        raise InvalidRequest("the review is not valid", fields=errors)
    if actor is not None:
        if not (is_security(actor) or actor.is_superuser):
            raise NotAllowed("only the security role and admins start access reviews")
        if locked := lock_refusal(actor):
            raise NotAllowed(f"not now: {locked}")
    now = timezone.now()
    with transaction.atomic():
        open_now = AccessReview.objects.select_for_update().filter(
            status=AccessReview.Status.OPEN, profile=profile, group_name=group_name
        )
        if open_now.exists():
            raise Conflict(f"a review of this {'profile' if profile else 'group'} is open already")
        try:
            with transaction.atomic():
                review = AccessReview.objects.create(
                    name=name,
                    profile=profile,
                    group_name=group_name,
                    reviewers=reviewers.model_dump() if reviewers else {},
                    by_managers=by_managers,
                    unreviewed=unreviewed,
                    schedule=schedule,
                    started_by=actor,
                    started_at=now,
                    due_at=now + takes,
                )
        except IntegrityError:  # another start, at the same moment
            raise Conflict("a review of this subject is open already") from None
        profiles = profiles_reviewed(profile, group_name)
        people = list(people_under_review(profile=profile, group_name=group_name))
        managers = {p.pk: line_manager(p) if by_managers else None for p in people}
        AccessReviewItem.objects.bulk_create(
            AccessReviewItem(
                review=review,
                person=p,
                facts=person_facts(p, profiles, now),
                manager=managers[p.pk],
            )
            for p in people
        )
        trail.record(
            action=Action.ACCESS_REVIEW_STARTED,
            info=info,
            actor=actor,
            target=review,
            data={
                "name": name,
                "subject": review.subject,
                "people": len(people),
                "due": utc_iso(review.due_at),
                "unreviewed": unreviewed,
                "reviewers": sorted(reviewers_of(review).values_list("username", flat=True)),
                **({"managers": _managers_named(people, managers)} if by_managers else {}),
                **({"schedule": schedule} if schedule else {}),
            },
        )
    if not people:
        access_review_close(review_id=review.pk, info=info)
        review.refresh_from_db()
    return review


def access_review_decide(
    *, item_id: int, reviewer, decision: str, note: str = "", info: trail.RequestInfo
) -> AccessReviewItem:
    """Keep or remove one person, after MFA; a removal holds at once."""
    if decision not in (Decision.KEEP, Decision.REMOVE):
        raise InvalidRequest("keep or remove", fields={"decision": "keep or remove"})
    note = (note or "").strip()
    if decision == Decision.REMOVE:
        note = checked_reason(note, "say why they lose it")
    elif len(note) > 2000 or has_control_characters(note):
        raise InvalidRequest("the note is not valid", fields={"note": "plain text, 2000 at most"})
    review_id = AccessReviewItem.objects.filter(pk=item_id).values_list("review_id", flat=True)
    with transaction.atomic():
        # The review first, then the item: the order closing takes them in.
        AccessReview.objects.select_for_update().filter(pk__in=review_id).first()
        item = (
            AccessReviewItem.objects.select_for_update(of=("self",))
            .select_related("review__profile", "person", "manager")
            .filter(pk=item_id)
            .first()
        )
        if item is None:
            raise NotFound("no such review item")
        if refused := review_refusal(reviewer, item):
            raise NotAllowed(refused)
        if timezone.now() >= item.review.due_at:
            raise Conflict("the review's deadline has passed")
        if recent_step_up_record(reviewer) is None:
            raise StepUpRequired("verify your MFA code first")
        _decide(item, decision, note, reviewer, info)
        last = not item.review.items.filter(decision=Decision.PENDING).exists()
    if last:
        access_review_close(review_id=item.review_id, info=trail.SYSTEM)
    return item


def _managers_named(people, managers: dict) -> dict[str, str | None]:
    """Who asked to review whom (None: the campaign's other reviewers)."""
    return {
        p.get_username(): managers[p.pk].get_username() if managers[p.pk] else None for p in people
    }


def _empties_the_security_role(item: AccessReviewItem) -> bool:
    """Removing this person from a group would leave nobody to place or lift locks,
    or to lift a review's removal."""
    if not item.review.group_name or not is_security(item.person):
        return False
    return not users_matching(security_principals()).exclude(pk=item.person_id).exists()


def _decide(item: AccessReviewItem, decision: str, note: str, by, info) -> None:
    if decision == Decision.REMOVE and _empties_the_security_role(item):
        if by is not None:
            raise Conflict(f"removing {item.person} would leave the security role with nobody")
        decision, note = Decision.KEEP, KEPT_FOR_SECURITY
    now = timezone.now()
    item.decision, item.note, item.decided_by, item.decided_at = decision, note, by, now
    item.unreviewed = by is None
    item.save(update_fields=["decision", "note", "decided_by", "decided_at", "unreviewed"])
    review = item.review
    trail.record(
        action=Action.ACCESS_REVIEW_DECIDED,
        info=info,
        actor=by,
        target=review,
        reason=note,
        data={
            "name": review.name,
            "subject": review.subject,
            "person": item.person.get_username(),
            "decision": decision,
            **({"unreviewed": True} if by is None else {"as": decided_as(by, item)}),
            **({"manager": item.manager.get_username()} if item.manager_id else {}),
        },
    )
    if decision != Decision.REMOVE:
        return
    ReviewRemoval.objects.create(
        item=item,
        person=item.person,
        profile=review.profile,
        group_name=review.group_name,
        removed_at=now,
    )
    # Whatever the catalog's on_eligibility_lost says, this decision is about the
    # access: registered before the group's own signal, so it runs first.
    transaction.on_commit(
        partial(
            access_enforce_standing,
            user_ids=[item.person_id],
            profile_ids=[review.profile_id] if review.profile_id else None,
            never_keep=True,
        )
    )
    group = Group.objects.filter(name=review.group_name).first() if review.group_name else None
    if group is not None:
        group.user_set.remove(item.person)


def access_review_close(*, review_id: UUID | str, info: trail.RequestInfo) -> AccessReview:
    """Settle whoever is left by the campaign's rule, then seal the evidence."""
    with transaction.atomic():
        review = (
            AccessReview.objects.select_for_update(of=("self",))
            .select_related("profile")
            .filter(pk=review_id)
            .first()
        )
        if review is None:
            raise NotFound("no such review")
        if review.status == AccessReview.Status.CLOSED:
            return review
        left = review.items.select_for_update().filter(decision=Decision.PENDING)
        for item in left.select_related("person"):
            _decide(item, review.unreviewed, NOT_REVIEWED, None, trail.SYSTEM)
        review.status, review.closed_at = AccessReview.Status.CLOSED, timezone.now()
        review.evidence = _evidence(review)
        review.save(update_fields=["status", "closed_at", "evidence"])
        trail.record(
            action=Action.ACCESS_REVIEW_CLOSED,
            info=info,
            target=review,
            data={
                "name": review.name,
                "subject": review.subject,
                "evidence_sha256": hashlib.sha256(as_bytes(review.evidence)).hexdigest(),
                "signed": "signature" in review.evidence,
            },
        )
    return review


def _evidence(review: AccessReview) -> dict:
    """Who reviewed whom, when, what, with what facts shown: signed when the audit
    signing key is set (as it must be for evidence packs)."""
    items = review.items.select_related("person", "decided_by", "manager").order_by(
        "person__username"
    )
    document = {
        "format": REVIEW_FORMAT,
        "review": {
            "id": str(review.pk),
            "name": review.name,
            "subject": review.subject,
            "schedule": review.schedule,
            "started_by": review.started_by.get_username() if review.started_by else None,
            "started_at": utc_iso(review.started_at),
            "due_at": utc_iso(review.due_at),
            "closed_at": utc_iso(review.closed_at),
            "unreviewed_rule": review.unreviewed,
            "reminded_at": utc_iso(review.reminded_at) if review.reminded_at else None,
            "escalated_at": utc_iso(review.escalated_at) if review.escalated_at else None,
            "reviewers": sorted(reviewers_of(review).values_list("username", flat=True)),
            "by_managers": review.by_managers,
        },
        "items": [
            {
                "person": item.person.get_username(),
                "facts_shown": item.facts,
                "manager": item.manager.get_username() if item.manager else None,
                "decision": item.decision,
                "note": item.note,
                "decided_by": item.decided_by.get_username() if item.decided_by else None,
                "decided_at": utc_iso(item.decided_at) if item.decided_at else None,
                "unreviewed": item.unreviewed,
            }
            for item in items
        ],
    }
    signer = signing.signer()
    return seal(document, signer, utc_iso(timezone.now())) if signer else document


def access_reviews_tick(now: datetime | None = None) -> dict[str, int]:
    """Beat's: start what the catalog's schedules say is due, remind at half time,
    escalate to the security role at three quarters, close at the deadline."""
    now = now or timezone.now()
    counts = {"started": 0, "reminded": 0, "escalated": 0, "closed": 0}
    state = CatalogState.objects.first()
    for raw in state.reviews if state else []:
        try:
            counts["started"] += _start_if_due(ReviewSchedule.model_validate(raw), now)
        except (LifecycleError, ValueError):
            # One schedule that cannot start must not stop the others, nor the closing.
            logger.exception("access review schedule %s did not start", raw.get("name"))
    for review in AccessReview.objects.filter(status=AccessReview.Status.OPEN):
        if now >= review.due_at:
            try:
                access_review_close(review_id=review.pk, info=trail.SYSTEM)
            except LifecycleError:
                logger.exception("access review %s did not close", review.pk)
                continue
            counts["closed"] += 1
            continue
        share = (now - review.started_at) / (review.due_at - review.started_at)
        for field, action, from_share in (
            ("reminded_at", Action.ACCESS_REVIEW_REMINDED, 0.5),
            ("escalated_at", Action.ACCESS_REVIEW_ESCALATED, 0.75),
        ):
            if share >= from_share and _claim(review, field, now):
                review.refresh_from_db()
                with transaction.atomic():
                    pending = review.items.filter(decision=Decision.PENDING).count()
                    trail.record(
                        action=action,
                        info=trail.SYSTEM,
                        target=review,
                        data={
                            "name": review.name,
                            "pending": pending,
                            "due": utc_iso(review.due_at),
                            "reviewers": sorted(
                                reviewers_of(review).values_list("username", flat=True)
                            ),
                        },
                    )
                counts[field.removesuffix("_at")] += 1
    return counts


def _claim(review: AccessReview, field: str, now: datetime) -> bool:
    return bool(AccessReview.objects.filter(pk=review.pk, **{field: None}).update(**{field: now}))


def _start_if_due(schedule: ReviewSchedule, now: datetime) -> int:
    last = AccessReview.objects.filter(schedule=schedule.name).order_by("-started_at").first()
    if last is not None and now < last.started_at + schedule.every:
        return 0
    profile = None
    if schedule.profile:
        profile = AccessProfile.objects.filter(slug=schedule.profile, enabled=True).first()
        if profile is None:
            return 0
    try:
        access_review_start(
            name=f"{schedule.name} {now:%Y-%m-%d}",
            profile=profile,
            group_name=schedule.group or "",
            takes=schedule.takes,
            unreviewed=schedule.unreviewed,
            reviewers=None if schedule.reviewers == "managers" else schedule.reviewers,
            by_managers=schedule.reviewers == "managers",
            schedule=schedule.name,
            info=trail.SYSTEM,
        )
    except Conflict:
        return 0  # one of the same subject is still open (started on demand)
    return 1


def review_removal_lift(
    *, removal_id: int, actor, reason: str, info: trail.RequestInfo
) -> ReviewRemoval:
    """The security role (or an admin: a review may have emptied the role) undoes a
    removal (a mistake), after MFA. A group removal
    only stops keeping them out: the next catalog sync puts back whom the file lists."""
    reason = checked_reason(reason, "say why the removal is lifted")
    if not (is_security(actor) or actor.is_superuser):
        raise NotAllowed("only the security role and admins lift a review's removal")
    if locked := lock_refusal(actor):
        raise NotAllowed(f"not now: {locked}")
    if recent_step_up_record(actor) is None:
        raise StepUpRequired("verify your MFA code first")
    with transaction.atomic():
        removal = (
            ReviewRemoval.objects.select_for_update(of=("self",))
            .select_related("person", "profile", "item__review")
            .filter(pk=removal_id)
            .first()
        )
        if removal is None:
            raise NotFound("no such removal")
        if removal.lifted_at is not None:
            raise Conflict("this removal was lifted already")
        if removal.person_id == actor.pk:
            raise NotAllowed("someone else must lift a removal of your own access")
        removal.lifted_at, removal.lifted_by, removal.lift_reason = timezone.now(), actor, reason
        removal.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        trail.record(
            action=Action.ACCESS_REVIEW_REMOVAL_LIFTED,
            info=info,
            actor=actor,
            target=removal.item.review,
            reason=reason,
            data={
                "name": removal.item.review.name,
                "person": removal.person.get_username(),
                "subject": removal.item.review.subject,
            },
        )
    return removal
