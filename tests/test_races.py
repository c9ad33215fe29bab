"""Concurrent decisions on one request end in exactly one outcome.

Each thread has its own PostgreSQL connection, so the row locks are real.
"""

import threading
from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connections

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Approval, Grant
from tests.support.people import WEB

pytestmark = pytest.mark.django_db(transaction=True)
CLOSING = {"request.approved", "request.denied", "request.cancelled"}


def race(calls: list[Callable[[], object]]) -> list[str]:
    """Run the calls at the same moment; return each one's outcome."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = [""] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            call()
            outcomes[index] = "ok"
        except lifecycle.LifecycleError as exc:
            outcomes[index] = type(exc).__name__
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def contenders(people, request_id) -> list[Callable[[], object]]:
    """bob approves (twice), carol denies, alice cancels: all at once."""
    approve = partial(
        lifecycle.access_request_approve, request_id=request_id, approver=people.bob, info=WEB
    )
    deny = partial(
        lifecycle.access_request_deny,
        request_id=request_id,
        approver=people.carol,
        reason="no",
        info=WEB,
    )
    cancel = partial(
        lifecycle.access_request_cancel, request_id=request_id, actor=people.alice, info=WEB
    )
    return [approve, deny, cancel, approve]


def test_approve_deny_and_cancel_at_once_have_one_winner(people, submit, step_up):
    step_up(people.bob)
    step_up(people.carol)
    winners = Counter()
    for _ in range(12):
        request = submit(people.alice)
        outcomes = race(contenders(people, request.id))
        assert outcomes.count("ok") == 1, outcomes
        assert set(outcomes) == {"ok", "Conflict"}, outcomes

        request.refresh_from_db()
        winners[request.status] += 1
        events = list(
            AuditEvent.objects.filter(target_id=str(request.id)).values_list("action", flat=True)
        )
        assert sum(action in CLOSING for action in events) == 1, events
        decisions = Approval.objects.filter(request=request).count()
        assert (
            events.count("request.decision.approve") + events.count("request.decision.deny")
            == decisions
        )
        assert Grant.objects.filter(request=request).count() == (
            1 if request.status == AccessRequest.Status.APPROVED else 0
        )
    assert sum(winners.values()) == 12


def test_the_same_approver_clicking_many_times_counts_once(people, submit, step_up):
    request = submit(people.alice, slug="test-db-critical", ticket="INC-1")
    step_up(people.bob)
    outcomes = race(
        [
            lambda: lifecycle.access_request_approve(
                request_id=request.id, approver=people.bob, info=WEB
            )
        ]
        * 8
    )
    assert sorted(outcomes) == ["Conflict"] * 7 + ["ok"]
    assert Approval.objects.filter(request=request).count() == 1
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING  # needs carol too
