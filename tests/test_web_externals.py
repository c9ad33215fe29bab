"""Third parties on the web: the invitation link is shown once, works once, and
leads to a password, then MFA enrolment before anything else."""

import logging

from django.utils import timezone

from audit.models import AuditEvent
from broker.models import ExternalAccess
from tests.support.externals import PASSWORD, invite_zoe, open_test_db_to_externals


def test_the_sponsor_invites_and_sees_the_link_once(client, people, catalog, step_up):
    open_test_db_to_externals()
    step_up(people.alice)
    client.force_login(people.alice)
    page = client.get("/externals/").content.decode()
    assert "Invite a third party" in page and "test-db: Test database" in page
    shown = client.post("/externals/invite/", {
        "username": "zoe", "email": "", "company": "Acme", "contract_ends": "2099-01-01",
        "profiles": ["test-db"],
    })  # fmt: skip
    assert shown.status_code == 400  # at most a year ahead
    from datetime import date, timedelta

    ends = (date.today() + timedelta(days=60)).isoformat()
    shown = client.post("/externals/invite/", {
        "username": "zoe", "email": "", "company": "Acme", "contract_ends": ends,
        "profiles": ["test-db"],
    })  # fmt: skip
    assert shown.status_code == 200
    link = shown.content.decode().split('id="invitation-link">')[1].split("<")[0]
    address, token = link.split("#")
    assert address == "http://testserver/externals/accept/"  # the code: never sent
    assert ExternalAccess.objects.get().invitation_sha256 not in link
    assert token not in client.get("/externals/").content.decode()


def test_accepting_sets_a_password_then_mfa_comes_first(client, people, catalog, step_up):
    open_test_db_to_externals()
    _, token = invite_zoe(people, step_up, accept=False)
    client.logout()
    wrong = client.post("/externals/accept/", {"token": "not-a-token"})
    assert wrong.status_code == 400 and "this invitation is not valid" in wrong.content.decode()
    assert client.get("/externals/accept/continue/")["Location"] == "/externals/accept/"
    opened = client.post("/externals/accept/", {"token": token})
    assert opened["Location"] == "/externals/accept/continue/"
    assert token not in str(dict(client.session))  # only its digest waits there
    page = "/externals/accept/continue/"
    differ = client.post(page, {"password": PASSWORD, "again": "no"})
    assert differ.status_code == 400 and "the two passwords differ" in differ.content.decode()
    weak = client.post(page, {"password": "zoe", "again": "zoe"})
    assert weak.status_code == 400 and "This password is too short" in weak.content.decode()
    accepted = client.post(page, {"password": PASSWORD, "again": PASSWORD})
    assert accepted["Location"] == "/mfa/enrol/"
    assert client.get("/")["Location"] == "/mfa/enrol/"  # signed in, but MFA first
    client.logout()
    assert client.post("/externals/accept/", {"token": token}).status_code == 400  # once only


def test_a_contract_past_its_end_ends_the_session_before_beat_runs(
    client, people, catalog, step_up
):
    open_test_db_to_externals()
    access, _ = invite_zoe(people, step_up)
    client.force_login(access.user)
    assert client.get("/")["Location"] == "/mfa/enrol/"  # signed in
    ExternalAccess.objects.filter(pk=access.pk).update(contract_ends_at=timezone.now())
    assert client.get("/")["Location"] == "/login/?next=/"  # no session of hers restored


def test_the_second_page_says_whose_account_it_is(client, people, catalog, step_up):
    open_test_db_to_externals()
    _, token = invite_zoe(people, step_up, accept=False)
    client.logout()
    client.post("/externals/accept/", {"token": token})
    page = client.get("/externals/accept/continue/").content.decode()
    assert "Your Airlock account: zoe" in page and "<strong>Acme</strong> by alice" in page


def test_a_link_of_before_the_code_moved_still_works_and_logs_nothing(
    client, people, catalog, step_up, caplog
):
    open_test_db_to_externals()
    _, token = invite_zoe(people, step_up, accept=False)
    client.logout()
    with caplog.at_level(logging.INFO, logger="django.request"):
        old = client.get(f"/externals/accept/{token}/")
        wrong = client.get("/externals/accept/not-a-token/")
    assert old["Location"] == "/externals/accept/continue/"
    assert wrong["Location"] == "/externals/accept/"
    assert token not in caplog.text and "not-a-token" not in caplog.text
    accepted = client.post("/externals/accept/continue/", {"password": PASSWORD, "again": PASSWORD})
    assert accepted["Location"] == "/mfa/enrol/"


def test_a_contract_past_its_end_does_not_sign_in_with_its_password(
    client, people, catalog, step_up
):
    open_test_db_to_externals()
    access, _ = invite_zoe(people, step_up)
    client.logout()
    ExternalAccess.objects.filter(pk=access.pk).update(contract_ends_at=timezone.now())
    client.post("/login/", {"username": "zoe", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="auth.login", actor="zoe").exists()
    assert AuditEvent.objects.filter(action="auth.login_failed").exists()
