"""The risk policy where people meet it: break-glass on the web and the API,
reviews and alerts pages, and the loud Slack messages."""

import json

import pytest

from accounts.models import Authenticator
from audit import trail
from broker import anomalies, lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessRequest, BreakGlassReview
from tests.support.catalogs import POLICY_CATALOG
from tests.support.people import WEB, current_code, phone_of
from tests.support.slack_requests import deliver_notifications


@pytest.fixture
def policy_catalog(people):
    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)


def test_break_glass_on_the_web_asks_for_mfa_then_grants(client, policy_catalog, people, step_up):
    client.force_login(people.alice)
    form = {"profile": "crown-jewels", "duration": "20m", "reason": "INC-500 payments down",
            "break_glass": "on"}  # fmt: skip
    response = client.post("/requests/new/", form)
    assert response.status_code == 302 and "/mfa/verify/" in response["Location"]
    assert not AccessRequest.objects.exists()
    # Back from the verify page, the form still holds what alice typed.
    step_up(people.alice)
    page = client.get("/requests/new/").content.decode()
    assert "INC-500 payments down" in page
    response = client.post("/requests/new/", form)
    request = AccessRequest.objects.get()
    assert response["Location"] == f"/requests/{request.pk}/"
    assert request.break_glass and request.status == "approved"
    detail = client.get(response["Location"]).content.decode()
    assert "Emergency access without approval" in detail and "review open" in detail


def test_break_glass_through_the_api_needs_a_code(api, policy_catalog, people):
    client = api(people.alice)
    body = {"profile": "crown-jewels", "duration": "20m", "reason": "down", "otp": "000000"}
    phone_of(people.alice)
    assert client.post("/api/v1/requests/break-glass/", body, format="json").status_code == 403
    assert not AccessRequest.objects.exists()
    # (django-otp slows the next try after a failure; the throttle is not under test here.)
    Authenticator.objects.filter(user=people.alice).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    body["otp"] = current_code(phone_of(people.alice))
    response = client.post("/api/v1/requests/break-glass/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["break_glass"] is True and response.json()["status"] == "approved"


def test_reviews_page_lists_and_closes(client, policy_catalog, people, step_up):
    from broker.models import AccessProfile
    from lib.durations import parse_duration

    step_up(people.alice)
    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="crown-jewels"),
        duration=parse_duration("10m"), reason="prod down", break_glass=True, info=WEB,
    )  # fmt: skip
    client.force_login(people.bob)
    page = client.get("/reviews/").content.decode()
    assert "alice took crown-jewels" in page and "prod down" in page
    client.post(f"/reviews/{request.pk}/close/", {"notes": "session log checked"})
    review = BreakGlassReview.objects.get()
    assert review.closed_by == people.bob and review.notes == "session log checked"
    client.force_login(people.charlie)
    assert "alice took crown-jewels" not in client.get("/reviews/").content.decode()
    client.force_login(people.dave)  # auditors see all
    assert "session log checked" in client.get("/reviews/").content.decode()


def test_slack_is_loud_about_break_glass_reminders_and_alerts(
    slack, settings, policy_catalog, people, step_up
):
    from datetime import timedelta

    from broker.models import AccessProfile
    from lib.durations import parse_duration

    settings.SLACK_SECURITY_CHANNEL = "#security"
    step_up(people.alice)
    profile = AccessProfile.objects.get(slug="crown-jewels")
    lifecycle.access_request_submit(
        requester=people.alice, profile=profile, duration=parse_duration("10m"),
        reason="<!channel> prod down", break_glass=True, info=WEB,
    )  # fmt: skip
    seen = deliver_notifications()
    posts = slack.made("chat.postMessage")
    security = [p for p in posts if p["channel"] == "#security"]
    assert len(security) == 1 and "BREAK-GLASS: alice took *crown-jewels*" in security[0]["text"]
    assert "<!channel>" not in security[0]["text"]
    assert {p["channel"] for p in posts if "BREAK-GLASS" in p["text"]} >= {"U_BOB", "U_CAROL"}

    slack.clear()
    anomalies.detect()
    deliver_notifications(seen)
    (alert,) = [p for p in slack.made("chat.postMessage") if p["channel"] == "#security"]
    assert alert["text"].startswith(":rotating_light: break_glass")
    assert "alice used break-glass" in json.dumps(alert["blocks"])

    # A reminder goes to the approvers of the step it waits for.
    spec = dict(profile.spec)
    spec["policy"] = {**spec["policy"], "deny_above": 500}
    AccessProfile.objects.filter(pk=profile.pk).update(spec=spec)
    AccessRequest.objects.update(status="cancelled")
    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(pk=profile.pk),
        duration=parse_duration("10m"), reason="audit", info=WEB,
    )  # fmt: skip
    seen = deliver_notifications()
    slack.clear()
    lifecycle.remind_pending(request.created_at + timedelta(minutes=15))
    deliver_notifications(seen)
    reminders = [p for p in slack.made("chat.postMessage") if p["text"].startswith("Reminder:")]
    assert {p["channel"] for p in reminders} == {"U_BOB", "U_CAROL"}
    assert "risk" in json.dumps(reminders[0]["blocks"])
