"""Personal API tokens: made on the web after MFA, shown once, stored hashed,
refused once expired or revoked, and each answer says why."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken
from accounts.tokens import LAST_USED_RESOLUTION
from audit.models import AuditEvent
from tests.support.people import verified


def test_creating_a_token_on_the_web_needs_mfa(client, people):
    client.force_login(people.alice)
    response = client.post("/tokens/create/", {"name": "laptop", "days": "30"})
    assert response.status_code == 302 and "/mfa/verify/" in response["Location"]
    assert not ApiToken.objects.exists()
    verified(client, people.alice)  # in this session: a token outlives it
    response = client.post("/tokens/create/", {"name": "laptop", "days": "30"})
    assert response.status_code == 200
    plaintext = response.context["plaintext"]
    assert plaintext.startswith("airlock_") and plaintext in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    # Only a hash is kept: the plaintext is nowhere in the row.
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in str(ApiToken.objects.values().get())
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    # The list shows its prefix, never the token again.
    page = client.get("/tokens/").content.decode()
    assert token.prefix in page and plaintext not in page
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor == "alice" and plaintext not in str(event.data)


@pytest.mark.parametrize(
    ("name", "days", "message"),
    [("", "30", "name"), ("x", "0", "from 1 to"), ("x", "91", "from 1 to"), ("x", "a", "from 1")],
)
def test_bad_token_settings_are_refused(client, people, name, days, message):
    verified(client, people.alice)
    response = client.post("/tokens/create/", {"name": name, "days": days}, follow=True)
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_token_authenticates_and_records_its_last_use(api, people):
    client = api(people.alice)
    body = client.get("/api/v1/me/").json()
    assert body["username"] == "alice" and body["token_name"] == "pytest"
    token = ApiToken.objects.get()
    first_use = token.last_used_at
    assert first_use is not None
    client.get("/api/v1/me/")
    token.refresh_from_db()
    assert token.last_used_at == first_use  # not a write per call
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - LAST_USED_RESOLUTION)
    client.get("/api/v1/me/")
    token.refresh_from_db()
    assert token.last_used_at > first_use - LAST_USED_RESOLUTION


def test_revoked_tokens_are_refused_with_the_reason(client, api, people):
    alice = api(people.alice)
    token = ApiToken.objects.get()
    client.force_login(people.alice)
    client.post(f"/tokens/{token.pk}/revoke/")
    response = alice.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("this API token was revoked")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


def test_only_the_owner_can_revoke_a_token(client, api, people):
    api(people.alice)
    token = ApiToken.objects.get()
    client.force_login(people.charlie)
    client.post(f"/tokens/{token.pk}/revoke/")
    assert ApiToken.objects.get().revoked_at is None


def test_expired_tokens_are_refused_with_the_reason(api, people):
    alice = api(people.alice)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = alice.get("/api/v1/me/")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_a_disabled_account_cannot_use_its_token(api, people):
    alice = api(people.alice)
    people.alice.is_active = False
    people.alice.save()
    assert alice.get("/api/v1/me/").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer airlock_nope",
        "Bearer not-a-token",
        "Bearer two parts",
        "Bearer airlock_\u00e9",
        "Bearer " + "airlock_" + "x" * 200,
    ],
)
def test_malformed_or_unknown_tokens_get_a_401(db, header):
    client = APIClient()
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_no_credentials_is_a_401(db):
    response = APIClient().get("/api/v1/profiles/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "Authentication credentials were not provided.",
            "fields": {},
        }
    }


def test_each_token_has_its_own_rate_limit(api, people, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"api": "3/minute"})
    first, second = api(people.alice), api(people.alice)
    assert [first.get("/api/v1/me/").status_code for _ in range(3)] == [200] * 3
    limited = first.get("/api/v1/me/")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) > 0
    assert second.get("/api/v1/me/").status_code == 200  # another token, its own budget
