"""Sign-in, throttling and the headers every page carries."""

import pytest
from django.core.cache import cache

from audit.models import AuditEvent


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def full_width(text: str) -> str:
    """The text as a full-width keyboard types it (NFKC turns it back)."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def sign_in(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_alice_signs_in(client, people):
    response = sign_in(client, "alice", "x")
    assert response.status_code == 302 and response.url == "/"
    assert AuditEvent.objects.filter(action="auth.login", actor="alice").exists()


def test_repeated_failures_lock_the_username_even_for_the_right_password(client, people, settings):
    for _ in range(settings.AIRLOCK_LOGIN_MAX_FAILURES):
        assert sign_in(client, "alice", "wrong").status_code == 200
    response = sign_in(client, "alice", "x")
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 5
    assert sign_in(client, "bob", "x").status_code == 302  # others are not locked out


@pytest.mark.parametrize(
    "spelling",
    [
        " carol",
        "carol\t",
        "\u3000carol\n",
        full_width("carol"),
        "Carol",
        full_width("CAROL"),
        " " * 300 + "carol",
    ],
)
def test_every_spelling_of_a_username_shares_its_counter(client, people, settings, spelling):
    for _ in range(settings.AIRLOCK_LOGIN_MAX_FAILURES):
        assert sign_in(client, spelling, "wrong").status_code == 200
    assert sign_in(client, "carol", "x").status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_spellings_django_accepts_reach_the_same_account(client, people):
    # Why they must share a counter: the sign-in form strips and NFKC-normalises.
    for spelling in [" carol", "carol\t", full_width("carol"), " " * 300 + "carol"]:
        client.logout()
        assert sign_in(client, spelling, "x").status_code == 302
        assert client.session["_auth_user_id"] == str(people.carol.pk)


def test_variants_of_an_unknown_name_share_one_counter(client, people, settings):
    variants = ["mallory", "Mallory", " MALLORY", full_width("mallory") + "\t", "MaLlOrY"]
    for spelling in variants:
        assert sign_in(client, spelling, "wrong").status_code == 200
    assert sign_in(client, "mallory", "wrong").status_code == 429
    assert sign_in(client, "carol", "x").status_code == 302  # others are not locked out


def test_a_success_clears_the_counter_of_every_spelling(client, people, settings):
    for _ in range(settings.AIRLOCK_LOGIN_MAX_FAILURES - 1):
        sign_in(client, "carol", "wrong")
    assert sign_in(client, " " + full_width("carol"), "x").status_code == 302
    client.logout()
    assert sign_in(client, "carol", "wrong").status_code == 200
    assert sign_in(client, "carol", "x").status_code == 302


def test_every_page_has_strict_security_headers(client, people):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_signed_in_pages_are_never_cached(client, people):
    client.force_login(people.alice)
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_sign_out_needs_a_post(client, people):
    client.force_login(people.alice)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_csrf_is_enforced(people):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people.alice)
    assert strict.post("/requests/new/", {"profile": "test-db"}).status_code == 403


def test_session_cookie_settings(settings):
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600


@pytest.mark.parametrize(
    "pages", ["/", "/requests/new/", "/approvals/", "/audit/", "/ops/", "/mfa/", "/mfa/verify/"]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, db, pages):
    response = client.get(pages)
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.django_db(transaction=True)
def test_guesses_sent_at_the_same_moment_are_counted_before_they_are_checked(people, settings):
    """16 wrong passwords at once for carol: only the allowance is checked."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connections
    from django.test import Client

    settings.AIRLOCK_LOGIN_MAX_FAILURES = 5
    start = Barrier(16)

    def guess(number: int) -> int:
        try:
            client = Client()
            start.wait()
            return sign_in(client, "carol", f"guess-{number}").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(guess, range(16)))

    assert answers.count(429) == 11 and answers.count(200) == 5
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 5


def test_a_success_gives_its_attempt_back_to_the_address(client, people, settings):
    settings.AIRLOCK_LOGIN_MAX_FAILURES = 1  # 4 attempts per address
    for _ in range(6):  # an office behind one address signing in all morning
        assert sign_in(client, "alice", "x").status_code == 302
        client.logout()
    assert sign_in(client, "bob", "x").status_code == 302
