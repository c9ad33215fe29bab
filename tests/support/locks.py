"""Locks written straight to the table, as if the enforcement that follows
placing one never ran: each step must still refuse on its own."""

from django.utils import timezone

from broker.models import Lock


def lock_behind_its_back(placed_by, reason: str = "x", **subject) -> Lock:
    """`subject`: scope and user, profile or target, e.g. scope="user", user=alice."""
    return Lock.objects.create(
        placed_by=placed_by, placed_at=timezone.now(), reason=reason, **subject
    )
