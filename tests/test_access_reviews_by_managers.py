"""Access reviews by line managers: each person is reviewed by the manager the
identity provider names (a third party by their sponsor); whoever has no manager
Airlock may ask, by the campaign's other reviewers. A manager decides and sees
only their own reports; the security role steps in once escalated; the evidence
names the manager asked."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.models import ScimAccount
from audit import trail
from audit.models import AuditEvent
from audit.review_evidence import as_bytes
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessReview
from broker.policy.reviews import line_manager
from integrations.mail import notifier
from tests.support.catalogs import TEST_CATALOG
from tests.support.externals import invite_zoe, open_test_db_to_externals
from tests.support.people import WEB


def managed_by(person, manager) -> None:
    ScimAccount.objects.update_or_create(user=person, defaults={"manager": manager})


@pytest.fixture
def frank(people):
    """alice's line manager: no role in Airlock besides."""
    return get_user_model().objects.create_user("frank", "frank@example.com", "x")


@pytest.fixture
def by_managers(catalog, people, frank):
    """test-db's requesters alice (managed by frank) and charlie (no manager),
    reviewed by their managers; test-db's approvers are bob and carol."""
    Group.objects.get(name="engineers").user_set.add(people.charlie)
    managed_by(people.alice, frank)
    return lifecycle.access_review_start(
        name="Q4 test-db", profile=catalog["test-db"], takes=timedelta(days=14),
        by_managers=True, actor=people.carol, info=WEB,
    )  # fmt: skip


def decide(review, person, reviewer, step_up, decision="keep"):
    step_up(reviewer)
    item = review.items.get(person=person)
    return lifecycle.access_review_decide(
        item_id=item.pk, reviewer=reviewer, decision=decision, note="checked", info=WEB
    )


def test_each_person_goes_to_their_manager_and_the_rest_to_the_approvers(by_managers, people):
    managers = dict(by_managers.items.values_list("person__username", "manager__username"))
    assert managers == {"alice": "frank", "charlie": None}
    started = AuditEvent.objects.get(action="access_review.started")
    assert started.data["managers"] == {"alice": "frank", "charlie": None}
    assert started.data["reviewers"] == ["bob", "carol", "frank"]


def test_a_manager_decides_their_reports_and_nobody_elses(by_managers, people, frank, step_up):
    # The refusal names nobody: it would tell outsiders who is reviewed, and by whom.
    with pytest.raises(lifecycle.NotAllowed, match=r"^you are not asked to review this person$"):
        decide(by_managers, people.alice, people.bob, step_up)
    with pytest.raises(lifecycle.NotAllowed, match="not asked to review"):
        decide(by_managers, people.charlie, frank, step_up)
    assert decide(by_managers, people.alice, frank, step_up).decided_by == frank
    assert decide(by_managers, people.charlie, people.bob, step_up).decided_by == people.bob
    decided = AuditEvent.objects.filter(action="access_review.decided").order_by("seq")
    assert [(e.actor, e.data["as"], e.data.get("manager")) for e in decided] == [
        ("frank", "manager", "frank"), ("bob", "reviewer", None),
    ]  # fmt: skip


def test_the_security_role_steps_in_once_escalated(by_managers, people, step_up):
    with pytest.raises(lifecycle.NotAllowed):
        decide(by_managers, people.alice, people.erin, step_up)
    lifecycle.access_reviews_tick(now=by_managers.started_at + timedelta(days=11))
    assert decide(by_managers, people.alice, people.erin, step_up).decided_by == people.erin
    decided = AuditEvent.objects.get(action="access_review.decided")
    assert (decided.data["as"], decided.data["manager"]) == ("security", "frank")


def test_a_manager_sees_only_their_own_reports(by_managers, people, frank, client):
    page = f"/access-reviews/{by_managers.pk}/"
    client.force_login(frank)
    shown = client.get(page).content.decode()
    assert 'id="item-alice"' in shown and 'id="item-charlie"' not in shown
    assert "Q4 test-db" in client.get("/access-reviews/").content.decode()
    client.force_login(people.bob)  # an approver: whoever has no manager
    shown = client.get(page).content.decode()
    assert 'id="item-charlie"' in shown and 'id="item-alice"' not in shown
    client.force_login(people.erin)  # the security role oversees: everyone
    shown = client.get(page).content.decode()
    assert 'id="item-alice"' in shown and "reviewed by their manager, frank" in shown
    client.force_login(people.charlie)  # under review, reviewing nobody
    assert client.get(page).status_code == 404


def test_a_manager_gets_no_one_elses_evidence_patch_or_names(
    by_managers, people, frank, step_up, client, tmp_path, settings
):
    catalog_file = tmp_path / "access.yaml"
    catalog_file.write_text("groups:\n  engineers: [alice, charlie]\n")
    settings.AIRLOCK_CATALOG = str(catalog_file)
    decide(by_managers, people.charlie, people.bob, step_up, decision="remove")
    step_up(frank)
    client.force_login(frank)
    page = client.get(f"/access-reviews/{by_managers.pk}/").content.decode()
    assert "charlie" not in page  # neither listed nor in the catalog patch
    assert client.get(f"/access-reviews/{by_managers.pk}/catalog.patch").status_code == 404
    # Item ids are sequential: guessing one outside their share is a 404, naming nobody.
    charlies = by_managers.items.get(person=people.charlie).pk
    guessed = client.post(f"/access-reviews/{by_managers.pk}/people/{charlies}/decide/",
                          {"decision": "keep", "note": "x", "item": str(charlies)})  # fmt: skip
    assert guessed.status_code == 404 and "charlie" not in guessed.content.decode()
    decide(by_managers, people.alice, frank, step_up)  # the last: the review closes
    assert client.get(f"/access-reviews/{by_managers.pk}/evidence.json").status_code == 404
    client.force_login(people.dave)  # an auditor: the whole evidence
    evidence = client.get(f"/access-reviews/{by_managers.pk}/evidence.json")
    assert {item["person"] for item in json.loads(evidence.content)["items"]} == {
        "alice", "charlie",
    }  # fmt: skip


def test_a_manager_who_leaves_hands_their_reports_to_the_other_reviewers(
    by_managers, people, frank, step_up, mailoutbox, settings
):
    settings.AIRLOCK_EMAIL_ENABLED = True
    frank.is_active = False
    frank.save()
    lifecycle.access_reviews_tick(now=by_managers.started_at + timedelta(days=8))
    reminded = AuditEvent.objects.get(action="access_review.reminded")
    assert reminded.data["reviewers"] == ["bob", "carol"]
    notifier.email_reviewers(reminded.pk)
    assert "frank@example.com" not in {message.to[0] for message in mailoutbox}
    assert decide(by_managers, people.alice, people.bob, step_up).decided_by == people.bob


def test_a_person_moved_to_another_manager_is_no_longer_the_old_ones(
    by_managers, people, frank, step_up
):
    managed_by(people.alice, people.erin)  # the IdP moves alice mid-review
    with pytest.raises(lifecycle.NotAllowed, match="not asked to review"):
        decide(by_managers, people.alice, frank, step_up, decision="remove")
    # Not erin either (the one asked is fixed at the start): the other reviewers.
    assert decide(by_managers, people.alice, people.bob, step_up).decided_by == people.bob


def test_two_who_manage_each_other_review_neither(people, frank):
    managed_by(people.alice, frank)
    managed_by(frank, people.alice)
    assert line_manager(people.alice) is None and line_manager(frank) is None


def test_each_reviewer_is_emailed_their_own_share(by_managers, people, mailoutbox, settings):
    settings.AIRLOCK_EMAIL_ENABLED = True
    started = AuditEvent.objects.get(action="access_review.started")
    notifier.email_reviewers(started.pk)
    to = {message.to[0]: message.body for message in mailoutbox}
    assert set(to) == {"bob@example.com", "carol@example.com", "frank@example.com"}
    assert "People for you to review: 1" in to["frank@example.com"]


@pytest.mark.parametrize("unusable", ["disabled", "external", "themselves"])
def test_a_manager_airlock_may_not_ask_is_no_manager(people, catalog, step_up, unusable):
    if unusable == "disabled":
        people.dave.is_active = False
        people.dave.save()
        managed_by(people.alice, people.dave)
        person = people.alice
    elif unusable == "external":
        open_test_db_to_externals()
        zoe = invite_zoe(people, step_up)[0].user
        managed_by(people.alice, zoe)
        person = people.alice
    else:
        ScimAccount.objects.update_or_create(user=people.alice)
        ScimAccount.objects.filter(user=people.alice).update(manager=people.alice)
        person = people.alice
    assert line_manager(person) is None


def test_a_third_party_is_reviewed_by_their_sponsor(people, catalog, step_up):
    open_test_db_to_externals()
    zoe = invite_zoe(people, step_up)[0].user  # sponsored by alice
    review = lifecycle.access_review_start(
        name="vendors", profile=AccessProfile.objects.get(slug="test-db"),
        takes=timedelta(days=7), by_managers=True, actor=people.carol, info=WEB,
    )  # fmt: skip
    assert review.items.get(person=zoe).manager == people.alice
    assert decide(review, zoe, people.alice, step_up).decided_by == people.alice


def test_the_evidence_names_the_manager_asked(by_managers, people, frank, step_up, tmp_path):
    decide(by_managers, people.alice, frank, step_up)
    decide(by_managers, people.charlie, people.bob, step_up, decision="remove")
    by_managers.refresh_from_db()
    evidence = by_managers.evidence
    assert by_managers.status == "closed" and evidence["review"]["by_managers"] is True
    rows = {item["person"]: item for item in evidence["items"]}
    assert (rows["alice"]["manager"], rows["alice"]["decided_by"]) == ("frank", "frank")
    assert (rows["charlie"]["manager"], rows["charlie"]["decided_by"]) == (None, "bob")
    (tmp_path / "review.json").write_bytes(as_bytes(evidence))
    call_command("audit_keys", "--output", str(tmp_path / "keyring.json"))
    out = io.StringIO()
    call_command(
        "verify_audit", "--review", str(tmp_path / "review.json"),
        "--public-key", str(tmp_path / "keyring.json"), stdout=out,
    )  # fmt: skip
    assert "2 person(s), 1 kept, 1 removed" in out.getvalue()


def test_the_catalog_schedules_a_review_by_managers(people):
    scheduled = TEST_CATALOG.replace(
        "security: {groups: [security]}\n",
        "security: {groups: [security]}\nreviews:\n"
        "  - {name: test-db-by-managers, profile: test-db, every: 90d, reviewers: managers}\n",
    )
    catalog_sync(catalog=parse_catalog(scheduled.encode()), info=trail.SYSTEM)
    managed_by(people.alice, people.dave)
    assert lifecycle.access_reviews_tick()["started"] == 1
    review = AccessReview.objects.get()
    assert review.by_managers and review.items.get().manager == people.dave


def test_a_misspelt_reviewers_value_is_refused(people):
    bad = TEST_CATALOG.replace(
        "security: {groups: [security]}\n",
        "security: {groups: [security]}\nreviews:\n"
        "  - {name: q, profile: test-db, every: 90d, reviewers: manager}\n",
    )
    with pytest.raises(Exception, match="reviewers"):
        parse_catalog(bad.encode())
