"""What the approvers' email says, and to whom it goes: the people who may decide
the step the request waits for, who have an address and have not turned it off.
Plain text, no secrets: who asks for what, for how long and why, and a link to
the request (where deciding needs signing in and MFA)."""

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse

from accounts.selectors import wants_approval_emails
from audit.actions import Action
from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, AccessReview, AccessReviewItem, ExternalAccess
from broker.policy.approvers import eligible_approvers
from broker.policy.externals import person_label
from broker.policy.reviews import reviewable_items, reviewers_of
from lib.durations import format_duration

OPENINGS = {
    Action.REQUEST_SUBMITTED: "waits for your decision",
    Action.REQUEST_REMINDER: "still waits for a decision",
    Action.REQUEST_ESCALATED: "was escalated to you",
    Action.REQUEST_DECISION_APPROVE: "waits for your decision (its next step)",
}


def email_approvers(event_id: int) -> None:
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None or event.target_type != "accessrequest":
        return
    access_request = (
        AccessRequest.objects.select_related("profile", "requester")
        .filter(pk=event.target_id)
        .first()
    )
    if access_request is None or access_request.status != AccessRequest.Status.PENDING:
        return  # decided meanwhile (or an approval that completed it): nothing to ask
    recipients = [
        approver
        for approver in eligible_approvers(access_request)
        if approver.email and approver.is_active and wants_approval_emails(approver)
    ]
    opening = OPENINGS.get(event.action, "waits for your decision")
    who = person_label(access_request.requester)
    subject = f"[Airlock] {who} asks for {access_request.profile.slug}"
    link = settings.AIRLOCK_BASE_URL + reverse(
        "request-detail", kwargs={"request_id": access_request.pk}
    )
    body = (
        f"{who} asks for {access_request.profile.title} "
        f"({access_request.profile.slug}) for {format_duration(access_request.duration)}; "
        f"the request {opening}.\n\n"
        f"Reason: {access_request.reason or '(none)'}\n"
        f"Ticket: {access_request.ticket or '(none)'}\n"
        f"Risk score: {access_request.risk_score}\n\n"
        f"Decide here (sign-in and MFA required): {link}\n\n"
        "You get this email because you may approve this profile. Turn these emails "
        f"off at {settings.AIRLOCK_BASE_URL}{reverse('notifications')}.\n"
    )
    messages = [
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [approver.email])
        for approver in recipients
    ]  # one each: approvers never see each other's addresses
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
    lifecycle.approvers_notified(
        request_id=access_request.pk,
        via="email",
        recipients=[approver.get_username() for approver in recipients],
    )


REVIEW_OPENINGS = {
    Action.ACCESS_REVIEW_STARTED: "has started and needs your decisions",
    Action.ACCESS_REVIEW_REMINDED: "is half-way to its deadline with people still to review",
    Action.ACCESS_REVIEW_ESCALATED: "is late: it was escalated to the security role",
}


def email_reviewers(event_id: int) -> None:
    """An access review started, reminded or escalated: its reviewers (the security
    role too once escalated) are asked to decide, while someone is still pending."""
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None or event.target_type != "accessreview":
        return
    review = AccessReview.objects.select_related("profile").filter(pk=event.target_id).first()
    if review is None or review.status != AccessReview.Status.OPEN:
        return
    link = settings.AIRLOCK_BASE_URL + reverse("access-review", kwargs={"review_id": review.pk})
    messages = []
    for reviewer in reviewers_of(review):
        if not (reviewer.email and wants_approval_emails(reviewer)):
            continue
        # Each reviewer's own share: in a review by managers, their reports.
        pending = (
            reviewable_items(reviewer, review)
            .filter(decision=AccessReviewItem.Decision.PENDING)
            .exclude(person=reviewer)
            .count()
        )
        if not pending:
            continue
        body = (
            f"The access review {review.name} (who {_reviewed(review)}) "
            f"{REVIEW_OPENINGS.get(event.action, 'needs your decisions')}.\n\n"
            f"People for you to review: {pending}\n"
            f"Deadline: {review.due_at:%Y-%m-%d %H:%M} UTC; whoever is not reviewed by then is "
            f"{'kept, flagged' if review.unreviewed == 'keep' else 'removed'}.\n\n"
            f"Review here (sign-in and MFA required): {link}\n"
        )
        subject = f"[Airlock] Access review: {review.name}"
        messages.append(EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [reviewer.email]))
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)


def _reviewed(review: AccessReview) -> str:
    if review.profile_id:
        return f"may ask for {review.profile.slug}"
    return f"is in the group {review.group_name}"


def email_sponsor(event_id: int) -> None:
    """A third party's contract ends soon: their sponsor is told (and what to do)."""
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None or event.action != Action.EXTERNAL_CONTRACT_ENDING:
        return
    access = (
        ExternalAccess.objects.select_related("user", "sponsor")
        .filter(user_id=event.target_id, ended_at__isnull=True)
        .first()
    )
    if access is None or not access.sponsor.email or not access.sponsor.is_active:
        return
    link = settings.AIRLOCK_BASE_URL + reverse("externals")
    body = (
        f"{access.user} ({access.company}), whom you sponsor in Airlock, has a contract that "
        f"ends on {access.contract_ends_at:%Y-%m-%d} ({event.data.get('days_left')} day(s) "
        "left). Their account is disabled then, and their access revoked.\n\n"
        f"If the contract goes on, set its new end on {link}\n"
    )
    EmailMessage(
        f"[Airlock] {access.user}'s contract ends on {access.contract_ends_at:%Y-%m-%d}",
        body,
        settings.DEFAULT_FROM_EMAIL,
        [access.sponsor.email],
    ).send()
