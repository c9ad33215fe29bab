"""The approver queue: only what I may decide, hints, history, constant queries."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from broker import lifecycle
from broker.models import AccessRequest
from tests.support.grants import active_grant
from tests.support.people import WEB


def test_bob_sees_alices_pending_request_with_hints(client, people, submit):
    request = submit(people.alice, duration="2h")
    client.force_login(people.bob)
    page = client.get("/approvals/").content.decode()
    assert f"/requests/{request.id}/" in page
    assert "first time for test-db" in page
    request.refresh_from_db()
    assert f"risk {request.risk_score}" in page and request.risk_score > 0


def test_outsiders_and_requesters_see_nothing_to_decide(client, people, submit):
    submit(people.alice)
    for user in (people.charlie, people.alice, people.erin):
        client.force_login(user)
        assert "Nothing is waiting for you" in client.get("/approvals/").content.decode()


def test_decided_requests_leave_my_queue(client, people, submit, step_up):
    request = submit(people.alice, slug="test-db-critical", ticket="INC-3")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    client.force_login(people.bob)
    assert f"/requests/{request.id}/" not in client.get("/approvals/").content.decode()
    client.force_login(people.carol)
    page = client.get("/approvals/").content.decode()
    assert f"/requests/{request.id}/" in page and "1/2 approvals" in page


def test_history_and_usual_duration(client, people, submit, step_up, pg_target):
    held = active_grant(people, submit, step_up, duration="10m")  # what she really held
    lifecycle.grant_revoke(grant_id=held.pk, actor=people.alice, info=WEB)
    cancelled = submit(people.alice, duration="5m")
    lifecycle.access_request_cancel(request_id=cancelled.id, actor=people.alice, info=WEB)
    submit(people.alice, duration="1h")
    client.force_login(people.bob)
    page = client.get("/approvals/").content.decode()
    assert "6x usual duration (10m)" in page
    assert ": cancelled" in page


def test_filters(client, people, submit):
    submit(people.alice)
    client.force_login(people.bob)
    assert "Nothing is waiting" in client.get("/approvals/?profile=other-db").content.decode()
    assert "Nothing is waiting" in client.get("/approvals/?requester=zoe").content.decode()
    assert "Nothing is waiting" in client.get("/approvals/?older_than=1h").content.decode()
    assert "test-db" in client.get("/approvals/?older_than=0s&requester=alice").content.decode()
    response = client.get("/approvals/?older_than=yesterday")
    assert response.status_code == 400 and b"not a duration" in response.content


def test_query_count_does_not_grow_with_rows(client, people, catalog):
    User = get_user_model()
    engineers = people.alice.groups.get(name="engineers")

    def add_requests(n: int) -> None:
        for i in range(n):
            user = User.objects.create_user(f"eng{AccessRequest.objects.count()}-{i}")
            user.groups.add(engineers)
            lifecycle.access_request_submit(
                requester=user, profile=catalog["test-db"], reason="x", info=WEB
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/approvals/").status_code == 200
        return len(captured)

    client.force_login(people.bob)
    add_requests(3)
    few = queries()
    add_requests(22)
    assert queries() == few
    AccessRequest.objects.update(created_at=timezone.now() - timedelta(hours=1))
