"""Single sign-on: an IdP identity is its issuer and subject (`iss`, `sub`), bound to
one Airlock account at the first sign-in and matched on that pair only; never on a
username, an email only when the IdP says it is verified, and never to staff.

The whole code flow runs: Airlock's /oidc/authenticate/ and /oidc/callback/
(mozilla-django-oidc) against a local IdP (tests/support/oidc_fake.py) that signs its ID
tokens."""

from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.oidc import groups_from_claims
from audit.models import AuditEvent
from broker import lifecycle
from tests.support.grants import active_grant, credential_works, reveal
from tests.support.oidc_fake import CLIENT_ID, CLIENT_SECRET, FakeIdP

MAPPING = {"okta-sre": "sre", "okta-eng": "engineers"}


@pytest.fixture(scope="session")
def idp_server():
    idp = FakeIdP()
    yield idp
    idp.stop()


@pytest.fixture
def idp(idp_server, settings, db):
    """OIDC turned on against the local IdP."""
    settings.ROOT_URLCONF = "tests.support.oidc_urls"
    settings.AUTHENTICATION_BACKENDS = [
        "accounts.oidc.AirlockOIDCBackend",
        "broker.web.auth.PasswordBackend",
    ]
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SIGN_ALGO = "HS256"
    settings.OIDC_OP_ISSUER = idp_server.issuer
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{idp_server.url}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{idp_server.url}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{idp_server.url}/userinfo"
    settings.AIRLOCK_OIDC_GROUP_MAP = MAPPING
    return idp_server


def sign_in(client, idp: FakeIdP, *, subject: str, id_token: dict | None = None, **userinfo):
    """Go through the code flow as the browser would; the account it signs in, or None."""
    client.logout()
    start = client.get("/oidc/authenticate/")
    query = parse_qs(urlparse(start["Location"]).query)
    code = idp.issue(
        nonce=query["nonce"][0], sub=subject, id_token=id_token or {}, userinfo=userinfo
    )
    client.get("/oidc/callback/", {"code": code, "state": query["state"][0]})
    user = get_user(SimpleNamespace(session=client.session))
    return user if user.is_authenticated else None


def frank(**more) -> dict:
    return {"preferred_username": "frank", "email": "frank@example.com", "email_verified": True,
            **more}  # fmt: skip


def test_groups_from_claims():
    assert groups_from_claims({"groups": ["okta-sre", "other"]}, "groups", MAPPING) == {"sre"}
    assert groups_from_claims({"groups": "okta-eng"}, "groups", MAPPING) == {"engineers"}
    assert groups_from_claims({}, "groups", MAPPING) == set()


def test_the_first_sign_in_creates_the_account_and_binds_issuer_and_subject(client, idp):
    from accounts.models import OidcIdentity

    user = sign_in(client, idp, subject="sub-frank", **frank(groups=["okta-sre", "okta-eng"]))
    assert user.username == "frank" and user.email == "frank@example.com"
    assert set(user.groups.values_list("name", flat=True)) == {"sre", "engineers"}
    identity = OidcIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (idp.issuer, "sub-frank")
    linked = AuditEvent.objects.get(action="oidc.linked")
    assert linked.actor == "frank"
    assert linked.data == {"issuer": idp.issuer, "subject": "sub-frank", "by": "created"}


def test_groups_follow_the_idp_but_only_the_mapped_ones(client, idp):
    user = sign_in(client, idp, subject="sub-frank", **frank(groups=["okta-sre", "okta-eng"]))
    user.groups.add(Group.objects.create(name="auditors"))  # granted in Airlock, not by the IdP
    sign_in(client, idp, subject="sub-frank", **frank(groups=["okta-eng"]))
    assert set(user.groups.values_list("name", flat=True)) == {"engineers", "auditors"}


def test_each_sign_in_records_the_groups_it_changed_and_only_those(client, idp):
    def changes() -> list[tuple[str, list]]:
        events = AuditEvent.objects.filter(action__startswith="data.account.groups_")
        return [(e.action.rsplit("_", 1)[1], e.data["groups"]) for e in events.order_by("seq")]

    sign_in(client, idp, subject="sub-frank", **frank(groups=["okta-sre"]))
    sign_in(client, idp, subject="sub-frank", **frank(groups=["okta-sre"]))  # nothing changed
    sign_in(client, idp, subject="sub-frank", **frank(groups=["okta-eng"]))
    assert changes() == [("added", ["sre"]), ("removed", ["sre"]), ("added", ["engineers"])]


def test_a_bound_subject_is_the_same_account_whatever_its_username_and_email(client, idp):
    first = sign_in(client, idp, subject="sub-frank", **frank())
    again = sign_in(client, idp, subject="sub-frank", preferred_username="franky",
                    email="franky@example.com", email_verified=True)  # fmt: skip
    assert again == first and again.username == "frank"
    assert AuditEvent.objects.filter(action="oidc.linked").count() == 1


def test_a_username_never_signs_in_an_existing_account(client, idp, people):
    """Someone at the IdP whose preferred_username is "bob" is not bob."""
    mallory = {"preferred_username": "bob", "email": "mallory@example.net"}
    assert sign_in(client, idp, subject="sub-mallory", **mallory) is None
    # Another subject may not take an account bound to someone else either.
    sign_in(client, idp, subject="sub-frank", **frank())
    assert sign_in(client, idp, subject="sub-frank-2", **frank(email_verified=False)) is None


def test_a_verified_email_binds_an_existing_account_once_audited(client, idp, people):
    user = sign_in(client, idp, subject="sub-dave", preferred_username="d.smith",
                   email="dave@example.com", email_verified=True)  # fmt: skip
    assert user == people.dave
    linked = AuditEvent.objects.get(action="oidc.linked")
    assert linked.actor == "dave" and linked.data["by"] == "email"
    # Bound now: the subject signs in as dave even without the email.
    assert sign_in(client, idp, subject="sub-dave", preferred_username="d.smith") == people.dave
    # dave is bound: another subject with his verified email is not him.
    assert sign_in(client, idp, subject="sub-dave-2", preferred_username="dave2",
                   email="dave@example.com", email_verified=True) is None  # fmt: skip


@pytest.mark.parametrize("verified", ["false", "true", 1, None, False])
def test_an_email_not_verified_by_a_real_true_binds_nothing(client, idp, people, verified):
    user = sign_in(client, idp, subject="sub-d", preferred_username="d.smith",
                   email="dave@example.com", email_verified=verified)  # fmt: skip
    assert user != people.dave
    # The account made instead does not carry an address nobody vouched for.
    assert user is None or user.email == ""


@pytest.mark.parametrize("email", ["DAVE@example.com", "dave@example.com.evil.test"])
def test_email_matching_is_exact(client, idp, people, email):
    user = sign_in(client, idp, subject="sub-d", preferred_username="d.smith", email=email,
                   email_verified=True)  # fmt: skip
    assert user is not None and user != people.dave


def test_an_email_never_binds_staff_or_a_superuser(client, idp, people):
    people.erin.is_staff = True
    people.erin.save()
    for account in (people.admin, people.erin):
        user = sign_in(client, idp, subject=f"sub-{account.username}",
                       preferred_username=f"idp-{account.username}", email=account.email,
                       email_verified=True)  # fmt: skip
        assert user is None
    assert not AuditEvent.objects.filter(action="oidc.linked").exists()


def test_a_refused_sign_in_says_why(client, idp, people):
    sign_in(client, idp, subject="sub-mallory", preferred_username="bob", email="m@example.net")
    page = client.get("/", follow=True).content.decode()
    assert "already exists" in page and "bob" in page


@pytest.mark.parametrize(
    ("id_token", "userinfo", "why"),
    [
        ({"iss": "https://idp.evil.test/"}, {}, "another identity provider"),
        ({"aud": "another-client"}, {}, "for another application"),
        ({"aud": ["another-client", "third"]}, {}, "for another application"),
        ({}, {"sub": "sub-admin"}, "about different people"),  # userinfo about someone else
        ({"sub": None}, {}, "names nobody"),  # no subject at all
        ({"sub": "x" * 256}, {"sub": "x" * 256}, "names nobody"),
    ],
)
def test_tokens_not_about_this_subject_for_this_client_from_this_issuer_are_refused(
    client, idp, people, id_token, userinfo, why
):
    user = sign_in(client, idp, subject="sub-frank", id_token=id_token, **{**frank(), **userinfo})
    assert user is None
    assert why in client.get("/", follow=True).content.decode()
    assert not AuditEvent.objects.filter(action="oidc.linked").exists()


def test_an_admin_binds_a_staff_account_by_hand_audited(client, idp, people):
    call_command("oidc_link", "admin", "sub-admin")
    assert sign_in(client, idp, subject="sub-admin", preferred_username="root") == people.admin
    linked = AuditEvent.objects.get(action="oidc.linked")
    assert linked.actor == "admin" and linked.data["by"] == "admin"
    with pytest.raises(CommandError, match="already bound"):
        call_command("oidc_link", "bob", "sub-admin")
    with pytest.raises(CommandError, match="no account named nobody"):
        call_command("oidc_link", "nobody", "sub-x")


def test_a_session_from_single_sign_on_ends_when_the_account_is_disabled(client, idp, people):
    """mozilla-django-oidc's backend restores any account from the session, disabled
    or not: a password session ends when the account is disabled, this one must too.
    Else frank, disabled as he leaves, keeps reading the audit trail."""
    user = sign_in(client, idp, subject="sub-frank", **frank())
    user.groups.add(Group.objects.create(name="auditors"))
    assert client.get("/audit/").status_code == 200
    user.is_active = False
    user.save()
    assert not get_user(SimpleNamespace(session=client.session)).is_authenticated
    assert client.get("/audit/").status_code == 302  # to the sign-in page


def test_signing_in_without_the_requesting_group_takes_the_access_away(
    client, idp, people, submit, step_up, pg_target, django_capture_on_commit_callbacks
):
    """The IdP's groups are applied at each sign-in: alice, whom the IdP no longer
    puts in okta-eng, loses engineers, and with it her live grant, at the source."""
    alice = {"preferred_username": "alice", "email": "alice@example.com", "email_verified": True}
    assert sign_in(client, idp, subject="sub-alice", groups=["okta-eng"], **alice) == people.alice
    grant = active_grant(people, submit, step_up)
    credential = reveal(grant, people.alice, step_up)
    assert credential_works(credential, pg_target, None)
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_in(client, idp, subject="sub-alice", groups=[], **alice) == people.alice
    grant.refresh_from_db()
    assert grant.status == "revoking"
    assert grant.end_reason == "alice may no longer request test-db"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert not credential_works(credential, pg_target, None)
    # The change of groups the sign-in made is on record.
    removed = AuditEvent.objects.filter(
        action="data.account.groups_removed", target_id=str(people.alice.pk)
    ).latest("seq")
    assert removed.data["groups"] == ["engineers"] and removed.source == "web"


def test_an_expired_id_token_is_a_refused_sign_in_not_a_server_error(client, idp):
    """PyJWT refuses an expired token with an error the library does not catch:
    once a 500."""
    import time

    start = client.get("/oidc/authenticate/")
    query = parse_qs(urlparse(start["Location"]).query)
    code = idp.issue(nonce=query["nonce"][0], sub="sub-frank",
                     id_token={"exp": int(time.time()) - 3600}, userinfo=frank())  # fmt: skip
    client.raise_request_exception = False
    answer = client.get("/oidc/callback/", {"code": code, "state": query["state"][0]})
    assert answer.status_code == 400
    assert not get_user(SimpleNamespace(session=client.session)).is_authenticated
