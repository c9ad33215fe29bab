"""Access reviews: who is reviewed, who reviews, and what a removal takes away."""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, QuerySet

from accounts.models import ScimAccount
from broker.catalog.spec import Principals
from broker.models import (
    AccessProfile,
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    Approval,
    Grant,
    ReviewRemoval,
    RiskLabel,
)
from broker.policy.approvers import can_approve, profile_approvers
from broker.policy.externals import external_of
from broker.policy.locks import is_security, lock_refusal, security_principals
from broker.policy.principals import principal_matches, users_matching

FACTS_OVER = timedelta(days=90)


def holding_removals() -> QuerySet:
    return ReviewRemoval.objects.filter(lifted_at__isnull=True)


def review_removal(user, profile: AccessProfile) -> ReviewRemoval | None:
    """The review that took `profile` away from `user`, while it holds."""
    return (
        holding_removals()
        .filter(person=user, profile=profile)
        .select_related("item__review")
        .first()
    )


def removal_behind(user, profile: AccessProfile) -> ReviewRemoval | None:
    """The review removal that takes `profile` from `user`: their own, or a third
    party's sponsor's (nobody holds what their sponsor may no longer ask for)."""
    if removal := review_removal(user, profile):
        return removal
    access = external_of(user)
    return review_removal(access.sponsor, profile) if access is not None else None


def kept_out_of(group_name: str) -> set[int]:
    """The people an access review removed from this group: the catalog's sync
    leaves them out whatever the file says."""
    return set(holding_removals().filter(group_name=group_name).values_list("person_id", flat=True))


def regranted_by_file(catalog) -> list[str]:
    """Where the catalog file grants again what an access review removed: the
    overlay keeps holding, and the file should follow (the review's patch)."""
    warnings = []
    removals = holding_removals().select_related("person", "profile", "item__review")
    for removal in removals:
        person, review = removal.person.get_username(), removal.item.review
        if removal.group_name:
            granted = person in catalog.spec.groups.get(removal.group_name, [])
            what = f"group {removal.group_name!r} lists"
        else:
            spec = next((p for p in catalog.spec.profiles if p.id == removal.profile.slug), None)
            if spec is None:
                warnings.append(
                    f"profile {removal.profile.slug!r}, which the access review {review.name!r} "
                    f"removed {person} from, is not in the file: if it was renamed, the "
                    "removal does not follow the new name (review the new profile)"
                )
                continue
            granted = spec is not None and (
                person in spec.requesters.users
                or any(person in catalog.spec.groups.get(g, []) for g in spec.requesters.groups)
            )
            what = f"profile {removal.profile.slug!r} lets"
        if granted:
            warnings.append(
                f"{what} {person}, whom the access review {review.name!r} removed on "
                f"{removal.removed_at:%Y-%m-%d}: Airlock keeps them out; apply the review's "
                "catalog patch"
            )
    return warnings


def people_under_review(*, profile: AccessProfile | None, group_name: str) -> QuerySet:
    """Who may ask for the profile today (removals already made left out), or who is
    in the group; active accounts only (a disabled one holds nothing)."""
    if profile is not None:
        # Staff the catalog names, and the third parties their sponsors gave it to.
        staff = users_matching(profile.definition.requesters)
        third_parties = (
            get_user_model()
            .objects.filter(
                is_active=True,
                external_access__profiles=profile,
                external_access__ended_at__isnull=True,
            )
            .distinct()
        )
        people = (staff | third_parties).exclude(
            pk__in=holding_removals().filter(profile=profile).values("person_id")
        )
    else:
        people = get_user_model().objects.filter(groups__name=group_name, is_active=True)
    return people.order_by("username").distinct()


def _manager_as_the_idp_says(person):
    """A third party's sponsor; anyone else's manager from SCIM; or None."""
    access = external_of(person)
    if access is not None:
        return access.sponsor
    link = ScimAccount.objects.select_related("manager").filter(user_id=person.pk).first()
    return link.manager if link else None


def line_manager(person):
    """Who reviews `person` in a review by managers: their manager as the identity
    provider says (SCIM), or a third party's sponsor. None when there is nobody
    Airlock may ask: no manager, or one disabled, a third party, themselves, or
    someone whose own manager is `person` (two who would keep each other)."""
    manager = _manager_as_the_idp_says(person)
    if manager is None or not manager.is_active or manager.pk == person.pk:
        return None
    if external_of(manager):
        return None
    mutual = _manager_as_the_idp_says(manager)
    return None if mutual is not None and mutual.pk == person.pk else manager


def asked_managers(review: AccessReview) -> dict[int, int | None]:
    """Each item's manager (by id) while they still are: the one asked at the start,
    still active and still the person's manager (SCIM, or a third party's
    sponsor). None: the campaign's other reviewers decide, as for whoever had no
    manager; one query for the whole campaign."""
    rows = review.items.values_list(
        "pk",
        "manager_id",
        "manager__is_active",
        "person__scim__manager_id",
        "person__external_access__sponsor_id",
    )
    return {
        pk: asked if asked and active and asked == (sponsor or idp_manager) else None
        for pk, asked, active, idp_manager, sponsor in rows
    }


def reviewer_principals(review: AccessReview) -> Principals | None:
    """The reviewers the campaign names; None: the profile's approvers."""
    if review.reviewers:
        return Principals.model_validate(review.reviewers)
    return None if review.profile_id else security_principals()


def _default_reviewers(review: AccessReview) -> QuerySet:
    """Who reviews the people no manager reviews: those named, or the profile's
    approvers (the security role for a group)."""
    named = reviewer_principals(review)
    return users_matching(named) if named is not None else profile_approvers(review.profile)


def _is_default_reviewer(user, review: AccessReview) -> bool:
    named = reviewer_principals(review)
    return (
        principal_matches(user, named) if named is not None else can_approve(user, review.profile)
    )


def reviewers_of(review: AccessReview) -> QuerySet:
    """Everyone who may decide some of the campaign's items now (the security role
    too, once it is escalated)."""
    chosen = Q(pk__in=_default_reviewers(review).values("pk"))
    if review.by_managers:
        managers = asked_managers(review)
        asked = Q(pk__in={manager for manager in managers.values() if manager})
        chosen = asked | chosen if None in managers.values() else asked
    if review.escalated_at is not None:
        chosen |= Q(pk__in=users_matching(security_principals()).values("pk"))
    return get_user_model().objects.filter(chosen)


def reviewable_items(user, review: AccessReview) -> QuerySet:
    """The campaign's items `user` is asked to decide (decided or not): all of
    them for its reviewers; in a review by managers, a manager's own reports
    (while they still are) and, for the other reviewers, everyone else; all once
    it is escalated to the security role."""
    items = review.items.all()
    if review.escalated_at is not None and is_security(user):
        return items
    default = _is_default_reviewer(user, review)
    if not review.by_managers:
        return items if default else items.none()
    theirs = [
        pk
        for pk, manager in asked_managers(review).items()
        if manager == user.pk or (manager is None and default)
    ]
    return items.filter(pk__in=theirs)


def decided_as(user, item: AccessReviewItem) -> str:
    """In what capacity `user` may decide the item (review_refusal said they may):
    its person's manager, one of the campaign's reviewers, or the security role
    after escalation. The trail says which."""
    review = item.review
    manager = asked_managers(review).get(item.pk) if review.by_managers else None
    if manager is not None:
        return "manager" if manager == user.pk else "security"
    return "reviewer" if _is_default_reviewer(user, review) else "security"


def is_reviewer(user, review: AccessReview) -> bool:
    return reviewable_items(user, review).exists()


def review_refusal(user, item: AccessReviewItem) -> str | None:
    """Why `user` may not decide this item, or None."""
    review = item.review
    if review.status != AccessReview.Status.OPEN:
        return "this review is closed"
    if item.person_id == user.pk:
        return "someone else must review your own access"
    if not reviewable_items(user, review).filter(pk=item.pk).exists():
        # Naming whose the item is would tell outsiders who is reviewed, and by whom.
        return "you are not asked to review this person"
    if item.decision != AccessReviewItem.Decision.PENDING:
        return f"{item.person} was already reviewed: {item.decision}"
    if locked := lock_refusal(user):
        return f"not now: {locked}"
    return None


def profiles_reviewed(review_profile: AccessProfile | None, group_name: str) -> list:
    """The profile, or every enabled profile the group may ask for."""
    if review_profile is not None:
        return [review_profile]
    return [
        p
        for p in AccessProfile.objects.filter(enabled=True)
        if group_name in p.definition.requesters.groups
    ]


def person_facts(person, profiles: list[AccessProfile], now: datetime) -> dict:
    """Last use, grants and requests of the last 90 days, their risk, and what
    approvers marked unusual: what the reviewer sees, kept in the evidence."""
    since = now - FACTS_OVER
    asked = AccessRequest.objects.filter(requester=person, profile__in=profiles)
    recent = asked.filter(created_at__gte=since).aggregate(
        requests=Count("pk"),
        denied=Count("pk", filter=Q(status=AccessRequest.Status.DENIED)),
        highest_risk=Max("risk_score"),
    )
    held = Grant.objects.filter(
        request__in=asked, activated_at__isnull=False, activated_at__gte=since
    )
    hours = sum(
        ((g.ended_at or now) - g.activated_at).total_seconds() / 3600
        for g in held.only("activated_at", "ended_at")
    )
    last = (
        Grant.objects.filter(request__in=asked, activated_at__isnull=False)
        .order_by("-activated_at")
        .values_list("activated_at", "request__profile__slug")
        .first()
    )
    decisions = Approval.objects.filter(approver=person, created_at__gte=since).count()
    unusual = RiskLabel.objects.filter(
        request__in=asked.filter(created_at__gte=since), label=RiskLabel.Label.UNUSUAL
    )
    return {
        "profiles": [p.slug for p in profiles],
        "last_used": last[0].isoformat() if last else None,
        "last_profile": last[1] if last else None,
        "grants_90d": held.count(),
        "hours_held_90d": round(hours, 1),
        "requests_90d": recent["requests"],
        "denied_90d": recent["denied"],
        "highest_risk_90d": recent["highest_risk"],
        "marked_unusual_90d": unusual.values("request").distinct().count(),
        # An approver group's members are judged by the decisions they gave.
        "decisions_given_90d": decisions,
    }
