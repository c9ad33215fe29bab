"""What users type is shown escaped everywhere, redirects stay home, and every
form needs its CSRF token."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.support.people import WEB

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_reason_and_ticket_are_escaped_on_every_page(client, people, submit):
    from broker import lifecycle
    from broker.models import AccessProfile
    from lib.durations import parse_duration

    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="other-db"),
        duration=parse_duration("10m"), reason=SCRIPT, ticket='"><b>x</b>', info=WEB,
    )  # fmt: skip
    pages = {
        "erin": [f"/requests/{request.pk}/", "/approvals/"],
        "dave": ["/audit/", f"/requests/{request.pk}/"],
        "alice": ["/", f"/requests/{request.pk}/"],
    }
    for user, paths in pages.items():
        client.force_login(getattr(people, user))
        for path in paths:
            page = client.get(path).content.decode()
            assert "<script>alert" not in page and "<img src=x" not in page, (user, path)
            assert '"><b>x</b>' not in page, (user, path)
        if user == "erin":
            assert "&lt;script&gt;alert" in client.get(f"/requests/{request.pk}/").content.decode()


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_next_never_leaves_airlock(client, people, target):
    from tests.support.people import current_code, phone_of

    client.force_login(people.alice)
    device = phone_of(people.alice)
    response = client.post("/mfa/verify/", {"code": current_code(device), "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/", response["Location"]
    login = Client()
    answer = login.post(f"/login/?next={target}", {"username": "bob", "password": "x"})
    assert answer.status_code == 302 and not answer["Location"].startswith(("http", "//", "java"))


@pytest.mark.parametrize(
    "name",
    ["request-new", "api-token-create", "mfa-verify", "slack-link"],
)
def test_forms_need_their_csrf_token(people, name):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people.alice)
    assert strict.post(reverse(name), {}).status_code == 403


def test_pages_cannot_be_framed(client, people):
    client.force_login(people.alice)
    response = client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
