"""Extensions keep every limit the access was given under: a break-glass grant is
never extended without a human and never past its cap, and the catalog refuses
an automatic extension of access that needs more than one person's approval."""

import pytest

from audit import trail
from broker import lifecycle
from broker.catalog.load import CatalogError, parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessRequest, Grant
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import extend
from tests.support.people import WEB

pytestmark = pytest.mark.usefixtures("pg_target")

DB = "{kind: postgres.role, config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}}"
GLASS_PROFILE = f"""
  - id: glass-db
    title: Break-glass with automatic extensions
    provider: {DB}
    requesters: {{groups: [engineers]}}
    approvers: {{groups: [sre]}}
    max_duration: 1h
    extension: {{max_total: 8h, after_share: 0, approval: auto}}
    policy:
      break_glass: {{max_duration: 15m}}
"""


@pytest.fixture
def glass_catalog(people):
    catalog_sync(catalog=parse_catalog((TEST_CATALOG + GLASS_PROFILE).encode()), info=trail.SYSTEM)


def active(access_request) -> Grant:
    grant = Grant.objects.get(request=access_request)
    lifecycle.grant_activate(grant_id=grant.pk)
    return Grant.objects.get(pk=grant.pk)


def broken_glass(people, step_up, duration="10m") -> Grant:
    from lib.durations import parse_duration

    step_up(people.alice)
    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="glass-db"),
        duration=parse_duration(duration), reason="prod down", break_glass=True, info=WEB,
    )  # fmt: skip
    return active(request)


def test_a_break_glass_grant_is_never_extended_past_its_cap(glass_catalog, people, step_up):
    grant = broken_glass(people, step_up)
    with pytest.raises(lifecycle.InvalidRequest) as refused:
        extend(grant, people.alice, "30m")
    assert refused.value.fields["duration"] == (
        "at most 5m more (15m in all for break-glass access to glass-db)"
    )
    assert not AccessRequest.objects.filter(extends=grant).exists()


def test_a_break_glass_grant_is_never_extended_without_a_human(glass_catalog, people, step_up):
    grant = broken_glass(people, step_up)
    extension = extend(grant, people.alice, "5m")
    assert extension.status == "pending"  # the profile's `approval: auto` does not apply
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=extension.pk, approver=people.bob, info=WEB)
    assert AccessRequest.objects.get(pk=extension.pk).status == "approved"


def test_an_ordinary_grant_of_the_same_profile_is_extended_by_the_policy(
    glass_catalog, people, step_up
):
    from lib.durations import parse_duration

    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="glass-db"),
        duration=parse_duration("1h"), reason="migration", info=WEB,
    )  # fmt: skip
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    assert extend(active(request), people.alice, "3h").status == "approved"


def test_without_break_glass_in_the_catalog_any_more_its_grants_are_not_extended(
    glass_catalog, people, step_up
):
    grant = broken_glass(people, step_up)
    without = TEST_CATALOG + GLASS_PROFILE.replace("      break_glass: {max_duration: 15m}\n", "")
    catalog_sync(catalog=parse_catalog(without.replace("    policy:\n", "").encode()),
                 info=trail.SYSTEM)  # fmt: skip
    with pytest.raises(lifecycle.NotAllowed, match="no longer allows break-glass"):
        extend(grant, people.alice, "5m")


@pytest.mark.parametrize(
    "needs_more",
    [
        "approvals_required: 2",
        "policy: {steps: [{approvers: {groups: [sre]}}, {approvers: {groups: [dba]}}]}",
        "policy: {extra_approvals_above: {risk: 40}}",
    ],
)
def test_the_catalog_refuses_automatic_extensions_of_access_needing_more_approvers(needs_more):
    profile = GLASS_PROFILE.replace(
        "    policy:\n      break_glass: {max_duration: 15m}\n", f"    {needs_more}\n"
    )
    with pytest.raises(CatalogError, match=r"extension\.approval: auto"):
        parse_catalog((TEST_CATALOG + profile).encode())


def test_a_profile_stored_before_the_rule_still_loads(people, catalog, client):
    """The rule refuses such a file; a profile synced before it keeps working (until
    the next sync is refused), rather than failing every page that reads it."""
    profile = AccessProfile.objects.get(slug="test-db-critical")  # 2 approvals
    profile.spec = {**profile.spec, "extension": {"max_total": "3h", "approval": "auto"}}
    profile.save()
    stored = AccessProfile.objects.get(pk=profile.pk)
    assert stored.definition.extension.approval == "auto"
    client.force_login(people.alice)
    assert client.get("/").status_code == 200


def test_the_web_page_and_slack_offer_what_the_lifecycle_allows(
    glass_catalog, people, step_up, client
):
    from integrations.slack import blocks
    from lib.durations import parse_duration

    grant = broken_glass(people, step_up)
    client.force_login(people.alice)
    page = client.get(f"/grants/{grant.pk}/").content.decode()
    assert "Up to 15m in all for break-glass access to glass-db" in page
    assert "approvers decide" in page and "approved by policy" not in page
    hint = blocks.extend_modal(grant)["blocks"][0]["hint"]["text"]
    assert hint == "at most 5m more"
    Grant.objects.filter(pk=grant.pk).update(duration=parse_duration("15m"))  # cap reached
    grant.refresh_from_db()
    assert "Need more time?" not in client.get(f"/grants/{grant.pk}/").content.decode()
    assert len(blocks.expiry_warning(grant, "ends soon")) == 1  # no Extend button
