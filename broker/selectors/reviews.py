"""Who sees an access review, and what its page lists."""

from django.db.models import QuerySet
from django.http import Http404

from broker.models import AccessReview
from broker.policy.reviews import is_reviewer, reviewable_items
from broker.selectors.requests import is_overseer


def sees_whole_review(user, review: AccessReview) -> bool:
    """Who sees every person of a campaign (the evidence, the catalog patch):
    overseers, and its reviewers unless it is by managers, whose reviewers each
    see only their share."""
    return is_overseer(user) or (not review.by_managers and is_reviewer(user, review))


def may_see_review(user, review: AccessReview) -> bool:
    return is_overseer(user) or is_reviewer(user, review)


def visible_reviews(user) -> list[AccessReview]:
    reviews = AccessReview.objects.select_related("profile").order_by("-started_at")[:200]
    if is_overseer(user):
        return list(reviews)
    return [r for r in reviews if is_reviewer(user, r)]


def visible_review(user, review_id) -> AccessReview:
    """The campaign, or 404 for someone who may not see it (as for requests)."""
    review = AccessReview.objects.select_related("profile").filter(pk=review_id).first()
    if review is None or not may_see_review(user, review):
        raise Http404("no such review")
    return review


def review_items(user, review: AccessReview) -> QuerySet:
    """The people the page lists: all of them for overseers; for a reviewer, those
    they are asked to review (in a review by managers, a manager sees their own
    reports, not their colleagues')."""
    items = review.items.all() if is_overseer(user) else reviewable_items(user, review)
    return items.select_related("person", "decided_by", "removal", "manager")


def whole_review(user, review_id) -> AccessReview:
    """The campaign with everyone in it (its evidence, its catalog patch), or 404
    for who sees only their share of it, or none."""
    review = visible_review(user, review_id)
    if not sees_whole_review(user, review):
        raise Http404("no such review")
    return review
