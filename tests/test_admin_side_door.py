"""The Django admin is no side door: off unless AIRLOCK_ADMIN_ENABLED; when on,
it signs in only through Airlock's own throttled sign-in, needs MFA verified in
the session to look and a fresh step-up to change anything, shows no MFA seed,
and every change it makes is in the audit chain."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import StepUp
from accounts.selectors import MFA_SESSION_KEY
from audit.models import AuditEvent
from tests.support.people import add_user, phone_of, verified

User = get_user_model()


@pytest.fixture
def admin_on(settings):
    settings.AIRLOCK_ADMIN_ENABLED = True


@pytest.mark.parametrize("url", ["/admin/", "/admin/login/", "/admin/auth/user/"])
def test_the_admin_is_off_by_default(client, people, url):
    verified(client, people.admin)
    assert client.get(url).status_code == 404


def test_the_admins_own_password_form_signs_nobody_in(client, people, admin_on):
    people.admin.set_password("correct horse battery staple")
    people.admin.save()
    response = client.post(
        "/admin/login/", {"username": "admin", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").url.startswith("/admin/login/")


def test_signing_in_is_not_enough_mfa_comes_first(client, people, admin_on):
    client.force_login(people.admin)
    assert client.get("/admin/").url.startswith("/mfa/enrol/")  # no authenticator yet
    phone_of(people.admin)
    response = client.get("/admin/auth/user/")
    assert response.status_code == 302 and response.url.startswith("/mfa/verify/")
    verified(client, people.admin)
    assert client.get("/admin/auth/user/").status_code == 200


def test_a_change_needs_a_fresh_step_up(client, people, admin_on):
    verified(client, people.admin)
    StepUp.objects.filter(user=people.admin).update(verified_at=timezone.now() - timedelta(hours=1))
    response = add_user(client)
    assert response.status_code == 302 and response.url.startswith("/mfa/verify/")
    assert not User.objects.filter(username="mallory").exists()


def test_non_staff_cannot_use_it_at_all(client, people, admin_on):
    verified(client, people.bob)
    assert client.get("/admin/").status_code in (302, 403)
    assert client.get("/admin/login/").status_code == 403
    assert add_user(client).status_code in (302, 403)
    assert not User.objects.filter(username="mallory").exists()


def test_no_mfa_seed_can_be_read_or_planted(client, people, admin_on):
    verified(client, people.admin)
    for url in ("/admin/otp_totp/totpdevice/", "/admin/otp_totp/totpdevice/add/",
                "/admin/accounts/authenticator/", "/admin/accounts/backupcode/"):  # fmt: skip
        assert client.get(url).status_code == 404, url


def test_every_change_made_in_the_admin_is_in_the_audit_chain(client, people, admin_on):
    verified(client, people.admin)
    assert add_user(client).status_code == 302
    mallory = User.objects.get(username="mallory")
    created = AuditEvent.objects.get(action="data.account.created", target_id=str(mallory.pk))
    assert (created.actor, created.source) == ("admin", "web")
    assert created.data["fields"]["username"] == "mallory"
    assert created.data["fields"]["password"] == "(set)"
    assert "pbkdf2" not in str(created.data) and "md5" not in str(created.data)

    sre = Group.objects.get_or_create(name="sre")[0]
    response = client.post(
        f"/admin/auth/user/{mallory.pk}/change/",
        {"username": "mallory", "is_active": "on", "is_staff": "on", "groups": [sre.pk],
         "date_joined_0": "2026-11-30", "date_joined_1": "12:00:00"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = AuditEvent.objects.get(action="data.account.changed", target_id=str(mallory.pk))
    assert changed.actor == "admin"
    assert changed.data["fields"]["is_staff"] == [False, True]
    joined = AuditEvent.objects.get(action="data.account.groups_added", target_id=str(mallory.pk))
    assert (joined.actor, joined.data["groups"]) == ("admin", ["sre"])


def test_a_form_interrupted_by_the_step_up_leaves_no_password_in_the_session(
    client, people, admin_on
):
    verified(client, people.admin)
    StepUp.objects.filter(user=people.admin).update(verified_at=timezone.now() - timedelta(hours=1))
    session = client.session
    session[MFA_SESSION_KEY] = (timezone.now() - timedelta(hours=1)).isoformat()
    session.save()

    assert add_user(client).url.startswith("/mfa/verify/")

    # Sessions are stored in the database in clear: no password typed in the admin there.
    stored = Session.objects.get(session_key=client.session.session_key).session_data
    assert "a long passphrase 1" not in str(client.session.load()) + stored
