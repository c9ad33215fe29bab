"""The locks page: carol (security role) locks alice after MFA, sees what it took
away, and lifting takes erin too; auditors look; everyone else is refused; bad
input is shown on the form and changes nothing."""

import pytest

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Grant, Lock
from tests.support.grants import active_grant
from tests.support.people import WEB

pytestmark = pytest.mark.usefixtures("pg_target")

LOCK = {"scope": "user", "subject": "alice", "reason": "laptop stolen", "duration": "1d"}


def test_carol_locks_alice_from_the_web_after_mfa(client, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    pending = submit(people.alice, slug="test-db-critical", ticket="INC-3")
    client.force_login(people.carol)
    asked = client.post("/locks/new/", LOCK)
    assert asked.url == "/mfa/verify/?next=%2Flocks%2F"  # step-up first, form kept
    assert not Lock.objects.exists()
    assert client.get("/locks/").context["form"].initial["subject"] == "alice"

    step_up(people.carol)
    done = client.post("/locks/new/", LOCK, follow=True)
    page = done.content.decode()
    assert (
        "Locked user alice: 1 grant(s) being revoked at the source, 1 request(s) withdrawn" in page
    )
    lock = Lock.objects.get()
    assert lock.ends_at is not None and lock.placed_by == people.carol
    assert "laptop stolen" in page and str(lock.pk) in page
    assert Grant.objects.get(pk=grant.pk).status == "revoking"
    assert AccessRequest.objects.get(pk=pending.pk).status == "cancelled"
    assert AuditEvent.objects.get(action="lock.placed").source == "web"

    client.post(f"/locks/{lock.pk}/lift/", {"reason": "laptop found"})
    assert "Confirm lifting" in client.get("/locks/").content.decode()
    again = client.post(f"/locks/{lock.pk}/lift/", {"reason": ""}, follow=True)
    assert "a second person of the security role must confirm" in again.content.decode()

    client.force_login(people.erin)
    step_up(people.erin)
    lifted = client.post(f"/locks/{lock.pk}/lift/", {}, follow=True).content.decode()
    assert "Lifted the lock on user alice" in lifted
    assert "lifted by carol and erin" in lifted
    assert Lock.objects.get().ended_by == people.erin


@pytest.mark.parametrize(
    "body, message",
    [
        ({**LOCK, "subject": "mallory"}, "no user &#x27;mallory&#x27;"),
        ({**LOCK, "scope": "target", "subject": "mysql:core"}, "known targets: aws:123456789012"),
        ({**LOCK, "scope": "everyone"}, "Select a valid choice"),
        ({**LOCK, "duration": "forever"}, "not a duration"),
        ({**LOCK, "reason": ""}, "This field is required"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_changes_nothing(
    client, people, catalog, step_up, body, message
):
    client.force_login(people.carol)
    step_up(people.carol)
    response = client.post("/locks/new/", body)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Lock.objects.exists() and not AuditEvent.objects.filter(action="lock.placed")


def test_the_auditor_sees_locks_but_places_none(client, people, catalog, step_up):
    client.force_login(people.dave)
    page = client.get("/locks/").content.decode()
    assert "Place a lock" not in page and "postgres:AIRLOCK_PG_DSN_TEST" in page
    step_up(people.dave)
    assert client.post("/locks/new/", LOCK).status_code == 403
    assert not Lock.objects.exists()


def test_the_menu_shows_locks_to_security_and_auditors_only(client, people, catalog):
    for user, shown in [(people.carol, True), (people.dave, True), (people.alice, False)]:
        client.force_login(user)
        assert ('href="/locks/"' in client.get("/").content.decode()) is shown, user


def test_a_nul_in_a_lift_reason_is_refused_not_a_crash(client, people, catalog, step_up):
    step_up(people.erin)
    lock, _ = lifecycle.lock_place(
        actor=people.erin, scope="user", subject="alice", reason="x", info=WEB
    )
    client.force_login(people.carol)
    step_up(people.carol)
    response = client.post(f"/locks/{lock.pk}/lift/", {"reason": "ok\x00"}, follow=True)
    assert response.status_code == 200 and "control characters" in response.content.decode()
    assert Lock.objects.get().lift_proposed_by is None
