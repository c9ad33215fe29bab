"""The web pages in this issue: sign-in, the dashboard, health, admin."""

import pytest
from django.urls import reverse

from broker import lifecycle
from broker.models import Grant
from tests.support.grants import active_grant
from tests.support.people import verified


def test_anonymous_users_are_sent_to_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_sign_in_page_has_strict_headers(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_wrong_password_is_refused(client, people):
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and b"did not match" in response.content
    assert "_auth_user_id" not in client.session


def test_alice_sees_her_own_requests_and_profiles_only(client, people, submit):
    submit(people.alice, ticket="INC-9")
    client.force_login(people.alice)
    page = client.get("/").content.decode()
    assert "test-db" in page and "pending" in page and "Another team" in page
    client.force_login(people.charlie)
    page = client.get("/").content.decode()
    assert "No requests yet" in page and "test-db" not in page


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_admin_revoke_action_goes_through_the_lifecycle(
    client, pg_target, people, submit, step_up, settings
):
    settings.AIRLOCK_ADMIN_ENABLED = True
    grant = active_grant(people, submit, step_up)
    verified(client, people.admin)
    changelist = reverse("admin:broker_grant_changelist")
    page = client.get(reverse("admin:broker_grant_change", args=[grant.pk])).content.decode()
    assert grant.secret and "Secret" not in page  # the encrypted credential is not shown
    response = client.post(
        changelist, {"action": "revoke", "_selected_action": [str(grant.pk)]}, follow=True
    )
    assert "revocation requested" in response.content.decode()
    grant.refresh_from_db()
    assert grant.status == Grant.Status.REVOKING and grant.end_reason == "revoked in admin"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)


def test_non_staff_cannot_use_the_admin(client, people, settings):
    settings.AIRLOCK_ADMIN_ENABLED = True
    client.force_login(people.bob)
    response = client.get("/admin/broker/grant/")
    assert response.status_code == 302 and "/admin/login/" in response.url
