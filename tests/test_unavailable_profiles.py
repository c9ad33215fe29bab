"""A profile whose source this deployment has not configured (a postgres.role
profile's admin DSN not set: `make run` on a machine without PostgreSQL) is
offered as unavailable before anyone asks, and a request for it is refused at
once: never a grant that fails after approval."""

import pytest

from broker.models import AccessRequest


@pytest.fixture
def no_test_dsn(monkeypatch, catalog):
    monkeypatch.delenv("AIRLOCK_PG_DSN_TEST", raising=False)
    monkeypatch.delenv("AIRLOCK_PG_DSN_TEST_FILE", raising=False)


def test_the_form_says_so_and_refuses_it(client, people, no_test_dsn):
    client.force_login(people.alice)
    page = client.get("/requests/new/").content.decode()
    assert "Test database, read-only (unavailable here)" in page
    assert "Unavailable here:</strong> AIRLOCK_PG_DSN_TEST (the admin DSN) is not set" in page
    answer = client.post(
        "/requests/new/", {"profile": "test-db", "duration": "30m", "reason": "INC-1"}
    )
    assert answer.status_code == 400
    assert "test-db is unavailable here" in answer.content.decode()
    assert not AccessRequest.objects.exists()


def test_the_api_says_so_and_refuses_it(api, people, no_test_dsn):
    alice = api(people.alice)
    profiles = {p["id"]: p for p in alice.get("/api/v1/profiles/").json()}
    assert profiles["test-db"]["unavailable_because"] == (
        "AIRLOCK_PG_DSN_TEST (the admin DSN) is not set"
    )
    answer = alice.post(
        "/api/v1/requests/create/",
        {"profile": "test-db", "duration": "30m", "reason": "INC-1"},
        format="json",
    )
    assert answer.status_code == 400 and "unavailable here" in answer.json()["error"]["message"]
    assert not AccessRequest.objects.exists()


def test_a_configured_profile_is_available(api, people, catalog, monkeypatch):
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", "postgresql://airlock@127.0.0.1:1/postgres")
    profiles = {p["id"]: p for p in api(people.alice).get("/api/v1/profiles/").json()}
    assert profiles["test-db"]["unavailable_because"] is None
