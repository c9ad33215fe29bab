"""Third parties on the web: the invitation link is shown once, works once, and
leads to a password, then MFA enrolment before anything else."""

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
    assert "/externals/accept/" in link
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert ExternalAccess.objects.get().invitation_sha256 not in link
    assert token not in client.get("/externals/").content.decode()


def test_accepting_sets_a_password_then_mfa_comes_first(client, people, catalog, step_up):
    open_test_db_to_externals()
    _, token = invite_zoe(people, step_up, accept=False)
    client.logout()
    assert client.get("/externals/accept/not-a-token/").status_code == 404
    differ = client.post(f"/externals/accept/{token}/", {"password": PASSWORD, "again": "no"})
    # 200, with the form's errors: a 4xx would log the URL, and the token in it.
    assert differ.status_code == 200 and "the two passwords differ" in differ.content.decode()
    weak = client.post(f"/externals/accept/{token}/", {"password": "zoe", "again": "zoe"})
    assert weak.status_code == 200 and "This password is too short" in weak.content.decode()
    accepted = client.post(f"/externals/accept/{token}/", {"password": PASSWORD, "again": PASSWORD})
    assert accepted["Location"] == "/mfa/enrol/"
    assert client.get("/")["Location"] == "/mfa/enrol/"  # signed in, but MFA first
    client.logout()
    assert client.get(f"/externals/accept/{token}/").status_code == 404  # once only
