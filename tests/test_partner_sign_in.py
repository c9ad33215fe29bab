"""Third parties through their company's own identity provider: the invitee accepts
there (no password, ever), which binds the account to that issuer and subject;
later sign-ins match that binding only and only for the partner's own people,
never staff nor another company's. The whole code flow runs against a local
identity provider (tests/support/oidc_fake.py) that signs its ID tokens."""

import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import mozilla_django_oidc.auth as oidc_auth
import pytest
from django.contrib.auth import get_user
from django.utils import timezone

from accounts.models import OidcIdentity
from accounts.oidc import PartnerOIDCBackend
from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessProfile, ExternalAccess
from broker.policy.externals import invitation_digest
from lib.partner_idps import PartnerConfigError, parse_partners
from tests.support.externals import invite_zoe, open_test_db_to_externals
from tests.support.oidc_fake import CLIENT_ID, CLIENT_SECRET, FakeIdP
from tests.support.people import WEB

SECRET_ENV = "ACME_OIDC_CLIENT_SECRET"


@pytest.fixture(scope="module")
def acme_idp():
    idp = FakeIdP()
    yield idp
    idp.stop()


def acme_settings(idp: FakeIdP, **more) -> dict:
    return {
        "company": "Acme", "issuer": idp.issuer, "client_id": CLIENT_ID,
        "client_secret_env": SECRET_ENV, "authorization_endpoint": f"{idp.url}/authorize",
        "token_endpoint": f"{idp.url}/token", "sign_algo": "HS256", **more,
    }  # fmt: skip


@pytest.fixture
def acme(acme_idp, settings, monkeypatch, catalog):
    """Acme's identity provider signs in Acme's third parties."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    settings.AIRLOCK_PARTNER_OIDC = parse_partners({"acme": acme_settings(acme_idp)})
    open_test_db_to_externals()
    return acme_idp


def through_acme(client, idp: FakeIdP, start: str, *, subject: str, method="get", **claims):
    """The browser's part of the code flow from `start`; whom it signed in, or None."""
    started = getattr(client, method)(start)
    assert started.status_code == 302, started.status_code
    query = parse_qs(urlparse(started["Location"]).query)
    assert started["Location"].startswith(f"{idp.url}/authorize?")
    assert query["redirect_uri"] == ["http://testserver/partners/acme/callback/"]
    code = idp.issue(nonce=query["nonce"][0], sub=subject, id_token=claims, userinfo={})
    client.get("/partners/acme/callback/", {"code": code, "state": query["state"][0]})
    user = get_user(SimpleNamespace(session=client.session))
    return user if user.is_authenticated else None


def accept(client, idp, token, subject="acme-zoe-1", **claims):
    assert client.post("/externals/accept/", {"token": token}).status_code == 302
    return through_acme(
        client, idp, "/externals/accept/partner/", subject=subject, method="post", **claims
    )


def test_an_invitee_accepts_through_acme_then_signs_in_there(acme, client, people, step_up):
    access, token = invite_zoe(people, step_up, accept=False)
    client.post("/externals/accept/", {"token": token})
    page = client.get("/externals/accept/continue/").content.decode()
    assert "Accept with Acme's sign-in" in page and 'name="password"' not in page

    zoe = accept(client, acme, token)
    assert zoe == access.user and not zoe.has_usable_password()
    assert client.get("/").url == "/mfa/enrol/"  # MFA before anything else
    identity = OidcIdentity.objects.get(user=zoe)
    assert (identity.issuer, identity.subject, identity.linked_by) == (
        acme.issuer, "acme-zoe-1", "partner",
    )  # fmt: skip
    accepted = AuditEvent.objects.get(action="external.accepted")
    assert accepted.data == {"external": "zoe", "company": "Acme", "partner": "acme"}

    client.logout()
    assert "Acme: sign in with Acme's own sign-in" in client.get("/login/").content.decode()
    assert through_acme(client, acme, "/partners/acme/sign-in/", subject="acme-zoe-1") == zoe
    assert AuditEvent.objects.filter(action="auth.login", actor="zoe").count() == 2


def test_no_password_for_a_partners_people(acme, client, people, step_up):
    access, token = invite_zoe(people, step_up, accept=False)
    with pytest.raises(lifecycle.NotAllowed, match="Acme's own sign-in"):
        lifecycle.external_accept(
            invitation_sha256=invitation_digest(token), password="a long passphrase here",
            info=WEB,
        )  # fmt: skip
    client.post("/externals/accept/", {"token": token})
    client.post("/externals/accept/continue/", {"password": "a long passphrase here"})
    access.refresh_from_db()
    assert access.accepted_at is None and not access.user.has_usable_password()


def test_acme_never_signs_in_staff_or_another_companys_people(acme, client, people, step_up):
    # Bound by a mistake or an admin: still not Acme's to sign in.
    OidcIdentity.objects.create(user=people.alice, issuer=acme.issuer, subject="acme-alice",
                                linked_at=timezone.now(), linked_by="admin")  # fmt: skip
    assert through_acme(client, acme, "/partners/acme/sign-in/", subject="acme-alice") is None
    access, _ = invite_zoe(people, step_up, accept=False)
    ExternalAccess.objects.filter(pk=access.pk).update(
        company="Globex", accepted_at=timezone.now(), invitation_sha256=""
    )
    OidcIdentity.objects.create(user=access.user, issuer=acme.issuer, subject="acme-zoe",
                                linked_at=timezone.now(), linked_by="admin")  # fmt: skip
    assert through_acme(client, acme, "/partners/acme/sign-in/", subject="acme-zoe") is None
    failed = AuditEvent.objects.filter(action="auth.login_failed").order_by("seq")
    assert [(e.data["partner"], e.data["subject"]) for e in failed] == [
        ("acme", "acme-alice"), ("acme", "acme-zoe"),
    ]  # fmt: skip


def test_an_unbound_identity_is_told_to_ask_for_an_invitation(acme, client, people):
    assert through_acme(client, acme, "/partners/acme/sign-in/", subject="stranger") is None
    page = client.get("/login/").content.decode()
    assert "No active Airlock account is bound to this Acme identity" in page


def test_a_disabled_third_party_is_not_signed_in(acme, client, people, step_up):
    access, token = invite_zoe(people, step_up, accept=False)
    accept(client, acme, token)
    client.logout()
    step_up(people.alice)
    lifecycle.external_end(external_id=access.pk, actor=people.alice, reason="done", info=WEB)
    assert through_acme(client, acme, "/partners/acme/sign-in/", subject="acme-zoe-1") is None


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "another-client"},
        {"exp": int(time.time()) - 3600},
        {"nonce": "not-the-one-we-sent"},
    ],
    ids=["issuer", "audience", "expired", "nonce"],
)
def test_a_token_that_proves_nothing_accepts_nothing(acme, client, people, step_up, claims):
    access, token = invite_zoe(people, step_up, accept=False)
    assert accept(client, acme, token, **claims) is None
    access.refresh_from_db()
    assert access.accepted_at is None and not OidcIdentity.objects.exists()


def test_a_callback_nobody_started_or_a_replayed_one_signs_in_nobody(acme, client, people):
    code = acme.issue(nonce="n", sub="acme-zoe-1", id_token={}, userinfo={})
    client.get("/partners/acme/callback/", {"code": code, "state": "guessed"})
    assert not get_user(SimpleNamespace(session=client.session)).is_authenticated
    started = client.get("/partners/acme/sign-in/")
    state = parse_qs(urlparse(started["Location"]).query)["state"][0]
    client.get("/partners/acme/callback/", {"code": code, "state": state})  # unbound: refused
    again = client.get("/partners/acme/callback/", {"code": code, "state": state})
    assert again.status_code == 302 and again["Location"] == "/login/"
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1  # not the replay


def test_one_acme_identity_accepts_one_invitation(acme, client, people, step_up):
    _, first = invite_zoe(people, step_up, accept=False)
    accept(client, acme, first, subject="acme-shared")
    step_up(people.alice)
    second = lifecycle.external_invite(
        sponsor=people.alice, username="zed", email="zed@acme.example", company="acme",
        contract_ends_at=timezone.now() + timezone.timedelta(days=30),
        profiles=list(ExternalAccess.objects.get().profiles.all()), info=WEB,
    )[1]  # fmt: skip
    client.logout()
    assert accept(client, acme, second, subject="acme-shared") is None
    assert "already signs in to another Airlock account" in client.get("/login/").content.decode()


def test_an_unknown_partner_is_404(acme, client):
    assert client.get("/partners/globex/sign-in/").status_code == 404
    assert client.post("/externals/accept/partner/").status_code == 404  # no invitation


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"Acme Corp": {}}, "is not a partner name"),
        ({"acme": {"company": "Acme"}}, "issuer: Field required"),
        ({"acme": "yes"}, "Input should be a valid dictionary"),
        ([], "a JSON object"),
    ],
)
def test_a_bad_configuration_is_a_clear_error(raw, error):
    with pytest.raises(PartnerConfigError, match=error):
        parse_partners(raw)


def test_a_partner_never_shares_an_issuer_or_a_company(acme_idp, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    rs256 = acme_settings(acme_idp, sign_algo="RS256")
    with pytest.raises(PartnerConfigError, match="needs jwks_endpoint"):
        parse_partners({"acme": rs256})
    with pytest.raises(PartnerConfigError, match="the staff identity provider's"):
        parse_partners({"acme": acme_settings(acme_idp)}, staff_issuer=acme_idp.issuer)
    twice = {"acme": acme_settings(acme_idp), "acme2": acme_settings(acme_idp, company="ACME")}
    with pytest.raises(PartnerConfigError, match="one issuer and one company per partner"):
        parse_partners(twice)
    look_alike = acme_settings(acme_idp, company="\u0410cme", issuer="https://other.example")
    with pytest.raises(PartnerConfigError, match="one issuer and one company per partner"):
        parse_partners({"acme": acme_settings(acme_idp), "acme2": look_alike})


def test_a_partner_without_its_client_secret_stops_airlock_at_start(acme_idp, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(PartnerConfigError, match=f"acme.*Set {SECRET_ENV}"):
        parse_partners({"acme": acme_settings(acme_idp)})


@pytest.fixture
def globex(acme, settings):
    """A second partner, Globex, with its own identity provider (and, below, rogue)."""
    idp = FakeIdP()
    settings.AIRLOCK_PARTNER_OIDC = parse_partners({
        "acme": acme_settings(acme),
        "globex": acme_settings(idp, company="Globex"),
    })  # fmt: skip
    yield idp
    idp.stop()


def test_a_rogue_partner_never_receives_another_partners_code(
    acme, globex, monkeypatch, client, people, step_up
):
    """The identity provider mix-up: Globex's provider bounces a victim's browser,
    sent to Globex's sign-in, on to Acme's (where the victim is signed in) with
    Globex's state and the nonce of a flow its attacker started for Acme. Acme's
    code comes back to Acme's own callback, which refuses a flow started for
    Globex, and sends the code to nobody's token endpoint."""
    _, token = invite_zoe(people, step_up, accept=False)
    zoe = accept(client, acme, token)
    client.logout()
    posted = []
    real_post = oidc_auth.requests.post
    monkeypatch.setattr(
        oidc_auth.requests, "post",
        lambda url, data=None, **kw: posted.append(url) or real_post(url, data=data, **kw),
    )  # fmt: skip
    attacker, victim = type(client)(), type(client)()
    mine = parse_qs(urlparse(attacker.get("/partners/acme/sign-in/")["Location"]).query)
    to_globex = parse_qs(urlparse(victim.get("/partners/globex/sign-in/")["Location"]).query)
    code = acme.issue(nonce=mine["nonce"][0], sub="acme-zoe-1", id_token={}, userinfo={})
    # Acme answers at the callback registered with Acme, whatever flow it was.
    victim.get("/partners/acme/callback/", {"code": code, "state": to_globex["state"][0]})
    assert posted == []  # the code went to no token endpoint, Globex's least of all
    assert get_user(SimpleNamespace(session=victim.session)) != zoe
    # The attacker holds no code of zoe's; a fresh one of theirs signs in only theirs.
    assert not get_user(SimpleNamespace(session=attacker.session)).is_authenticated


def test_an_answer_naming_another_issuer_is_refused(acme, client, people, step_up):
    _, token = invite_zoe(people, step_up, accept=False)
    client.post("/externals/accept/", {"token": token})
    started = client.post("/externals/accept/partner/")
    query = parse_qs(urlparse(started["Location"]).query)
    code = acme.issue(nonce=query["nonce"][0], sub="acme-zoe-1", id_token={}, userinfo={})
    answer = {"code": code, "state": query["state"][0], "iss": "https://evil.example"}
    client.get("/partners/acme/callback/", answer)
    assert not OidcIdentity.objects.exists()


def test_a_token_answer_that_is_no_object_is_a_refused_sign_in(acme, client, monkeypatch):
    answer = SimpleNamespace(status_code=200, json=lambda: ["not", "an", "object"],
                             raise_for_status=lambda: None)  # fmt: skip
    monkeypatch.setattr(oidc_auth.requests, "post", lambda *a, **kw: answer)
    started = parse_qs(urlparse(client.get("/partners/acme/sign-in/")["Location"]).query)
    client.raise_request_exception = False
    answered = client.get("/partners/acme/callback/", {"code": "c", "state": started["state"][0]})
    assert (answered.status_code, answered["Location"]) == (302, "/login/")


def test_calls_to_identity_providers_time_out(acme, settings):
    backend = PartnerOIDCBackend(settings.AIRLOCK_PARTNER_OIDC["acme"], "https://x/")
    assert backend.get_settings("OIDC_TIMEOUT") == (5, 10)
    assert settings.OIDC_TIMEOUT == (5, 10)  # the staff identity provider too


@pytest.mark.parametrize("company", ["\u0410cme", "\uff21cme", "Acme\u200b", " ACME "])
def test_a_name_that_only_looks_like_acme_is_acme(acme, people, step_up, company):
    """Cyrillic A, full-width A, a zero-width space, other spacing and case: still
    Acme, so still no password."""
    step_up(people.alice)
    _, token = lifecycle.external_invite(
        sponsor=people.alice, username="zoe2", email="zoe2@acme.example", company=company,
        contract_ends_at=timezone.now() + timezone.timedelta(days=30),
        profiles=[AccessProfile.objects.get(slug="test-db")], info=WEB,
    )  # fmt: skip
    with pytest.raises(lifecycle.NotAllowed, match="own sign-in"):
        lifecycle.external_accept(
            invitation_sha256=invitation_digest(token), password="a long passphrase here",
            info=WEB,
        )  # fmt: skip


def test_a_contract_over_signs_in_nobody_even_before_beat_disables_it(
    acme, client, people, step_up
):
    access, token = invite_zoe(people, step_up, accept=False)
    accept(client, acme, token)
    client.logout()
    ExternalAccess.objects.filter(pk=access.pk).update(contract_ends_at=timezone.now())
    assert through_acme(client, acme, "/partners/acme/sign-in/", subject="acme-zoe-1") is None
