"""Access reviews: a campaign certifies who may ask for a profile (or is in a
group); a removal takes the access away at once, at the source; the deadline
settles whoever is left; the campaign is sealed into evidence checked offline."""

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.catalog.spec import Principals
from broker.lifecycle import catalog_sync
from broker.models import AccessReview, AccessReviewItem, Grant, ReviewRemoval
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import credential_works
from tests.support.people import WEB


def start(catalog, by, *, slug="test-db", group="", takes=timedelta(days=14), unreviewed="keep"):
    return lifecycle.access_review_start(
        name="Q4 test-db", profile=None if group else catalog[slug], group_name=group,
        takes=takes, unreviewed=unreviewed, actor=by, info=WEB,
    )  # fmt: skip


def decide(review, person, reviewer, decision, note="", step_up=None):
    if step_up:
        step_up(reviewer)
    item = review.items.get(person=person)
    return lifecycle.access_review_decide(
        item_id=item.pk, reviewer=reviewer, decision=decision, note=note, info=WEB
    )


@pytest.fixture
def public_key(db, tmp_path) -> Path:
    path = tmp_path / "keyring.json"
    call_command("audit_keys", "--output", str(path))
    return path


def verify(path: Path, public_key: Path) -> str:
    out = io.StringIO()
    try:
        call_command("verify_audit", "--review", str(path), "--public-key", str(public_key),
                     stdout=out)  # fmt: skip
    except CommandError as exc:
        return str(exc)
    return out.getvalue()


def test_a_campaign_lists_everyone_eligible_with_the_facts_shown(catalog, people, held):
    review = start(catalog, people.carol)
    (item,) = review.items.all()
    assert item.person == people.alice and item.decision == "pending"
    assert item.facts["grants_90d"] == 1 and item.facts["last_profile"] == "test-db"
    assert item.facts["requests_90d"] == 1 and item.facts["profiles"] == ["test-db"]
    started = AuditEvent.objects.get(action="access_review.started")
    assert started.actor == "carol" and started.data["people"] == 1
    assert started.data["reviewers"] == ["bob", "carol"]  # test-db's approvers


def test_a_removal_takes_the_access_away_at_once_at_the_source(
    catalog, people, held, step_up, pg_target, django_capture_on_commit_callbacks
):
    grant, credential, _ = held
    review = start(catalog, people.carol)
    with django_capture_on_commit_callbacks(execute=True):
        decide(review, people.alice, people.bob, "remove", "left the payments team", step_up)

    grant.refresh_from_db()
    assert grant.status == "revoking"
    assert grant.end_reason == "alice was removed from test-db by the access review Q4 test-db"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert not credential_works(credential, pg_target, None)
    with pytest.raises(lifecycle.NotAllowed, match="you may not request test-db"):
        lifecycle.access_request_submit(
            requester=people.alice, profile=catalog["test-db"], reason="again", info=WEB
        )
    decided = AuditEvent.objects.get(action="access_review.decided")
    assert (decided.actor, decided.reason) == ("bob", "left the payments team")
    assert decided.data["person"] == "alice" and decided.data["decision"] == "remove"


def test_the_last_decision_closes_and_seals_it_and_it_verifies_offline(
    catalog, people, submit, step_up, public_key, tmp_path
):
    review = start(catalog, people.carol)
    decide(review, people.alice, people.bob, "keep", "still on call", step_up)
    review.refresh_from_db()
    assert review.status == "closed" and review.evidence["items"][0]["decided_by"] == "bob"
    assert review.evidence["items"][0]["facts_shown"]["requests_90d"] == 0
    closed = AuditEvent.objects.get(action="access_review.closed")
    assert closed.data["signed"] is True
    path = tmp_path / "review.json"
    path.write_text(json.dumps(review.evidence))
    result = verify(path, public_key)
    assert (
        "review: Q4 test-db (profile test-db): 1 person(s), 1 kept, 0 removed (0 of them" in result
    )
    assert result.endswith("verified\n")

    tampered = {**review.evidence, "items": [{**review.evidence["items"][0], "decision": "x"}]}
    path.write_text(json.dumps(tampered))
    assert "BROKEN: signature" in verify(path, public_key)
    moved = {**review.evidence, "signed_at": "2030-06-01T00:00:00+00:00"}
    path.write_text(json.dumps(moved))
    assert "BROKEN: signature" in verify(path, public_key)  # the time is signed too
    path.write_text("not json")
    assert "BROKEN: file: is not JSON" in verify(path, public_key)


@pytest.mark.parametrize(
    ("who", "decision", "note", "error", "match"),
    [
        ("alice", "keep", "", lifecycle.NotAllowed, "someone else must review your own"),
        ("charlie", "keep", "", lifecycle.NotAllowed, "not asked to review"),
        ("dave", "keep", "", lifecycle.NotAllowed, "not asked to review"),
        ("bob", "remove", "", lifecycle.InvalidRequest, "say why"),
        ("bob", "remove", "bad\x1bnote", lifecycle.InvalidRequest, "control characters"),
        ("bob", "maybe", "", lifecycle.InvalidRequest, "keep or remove"),
    ],
)
def test_who_may_decide_and_what(catalog, people, step_up, who, decision, note, error, match):
    people.alice.groups.add(Group.objects.get(name="sre"))  # an approver of test-db too
    review = start(catalog, people.carol)
    step_up(getattr(people, who))
    with pytest.raises(error, match=match):
        decide(review, people.alice, getattr(people, who), decision, note)
    assert not AccessReviewItem.objects.exclude(decision="pending").exists()
    assert not ReviewRemoval.objects.exists()


def test_a_decision_needs_mfa_and_is_final(catalog, people, step_up):
    Group.objects.get(name="engineers").user_set.add(people.charlie)
    review = start(catalog, people.carol)
    with pytest.raises(lifecycle.StepUpRequired):
        decide(review, people.alice, people.bob, "keep")
    decide(review, people.alice, people.bob, "keep", step_up=step_up)
    with pytest.raises(lifecycle.NotAllowed, match="already reviewed: keep"):
        decide(review, people.alice, people.carol, "remove", "no", step_up)


def test_only_the_security_role_or_an_admin_starts_one_and_one_at_a_time(catalog, people):
    with pytest.raises(lifecycle.NotAllowed, match="security role and admins"):
        start(catalog, people.bob)
    start(catalog, people.admin)
    with pytest.raises(lifecycle.Conflict, match="open already"):
        start(catalog, people.carol)
    with pytest.raises(lifecycle.InvalidRequest):
        start(catalog, people.carol, slug="test-db-critical", takes=timedelta(hours=1))
    with pytest.raises(lifecycle.InvalidRequest):
        start(catalog, people.carol, group="no-such-group")


def test_the_deadline_keeps_with_a_flag_or_removes_by_the_campaigns_rule(
    catalog, people, public_key, tmp_path
):
    Group.objects.get(name="engineers").user_set.add(people.charlie)
    kept = start(catalog, people.carol)
    start(catalog, people.carol, slug="test-db-critical", unreviewed="remove")
    counts = lifecycle.access_reviews_tick(now=timezone.now() + timedelta(days=15))
    assert counts["closed"] == 2
    kept.refresh_from_db()
    assert {i.person.username: (i.decision, i.unreviewed) for i in kept.items.all()} == {
        "alice": ("keep", True), "charlie": ("keep", True)
    }  # fmt: skip
    assert set(ReviewRemoval.objects.values_list("person__username", "profile__slug")) == {
        ("alice", "test-db-critical"), ("charlie", "test-db-critical")
    }  # fmt: skip
    path = tmp_path / "kept.json"
    path.write_text(json.dumps(kept.evidence))
    assert "2 kept, 0 removed (2 of them not reviewed by the deadline" in verify(path, public_key)


def test_half_time_reminds_three_quarters_escalates_to_the_security_role(catalog, people, step_up):
    review = start(catalog, people.admin, takes=timedelta(days=4))
    assert lifecycle.access_reviews_tick(now=review.started_at + timedelta(days=1))["reminded"] == 0
    assert lifecycle.access_reviews_tick(now=review.started_at + timedelta(days=2))["reminded"] == 1
    assert lifecycle.access_reviews_tick(now=review.started_at + timedelta(days=2))["reminded"] == 0
    with pytest.raises(lifecycle.NotAllowed, match="not asked to review"):
        decide(review, people.alice, people.erin, "keep", step_up=step_up)  # erin: security
    ticked = lifecycle.access_reviews_tick(now=review.started_at + timedelta(days=3))
    assert ticked["escalated"] == 1
    decide(review, people.alice, people.erin, "keep", step_up=step_up)
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("access_review.reminded") == actions.count("access_review.escalated") == 1


def test_a_group_review_keeps_the_removed_out_of_the_group_whatever_the_file_says(
    catalog, people, step_up, capsys, tmp_path, settings
):
    review = start(catalog, people.carol, group="sre")  # reviewers: the security role
    assert set(review.items.values_list("person__username", flat=True)) == {"bob", "carol"}
    decide(review, people.bob, people.erin, "remove", "moved to sales", step_up)
    assert not people.bob.groups.filter(name="sre").exists()

    diff = catalog_sync(catalog=parse_catalog(TEST_CATALOG.encode()), info=trail.SYSTEM)
    assert not people.bob.groups.filter(name="sre").exists()  # still out
    # Nor does the IdP's group sync, the admin or a shell put him back, either way round.
    Group.objects.get(name="sre").user_set.add(people.bob)
    people.bob.groups.add(Group.objects.get(name="sre"))
    assert not people.bob.groups.filter(name="sre").exists()
    assert any("group 'sre' lists bob, whom the access review" in w for w in diff.warnings)
    path = tmp_path / "catalog.yaml"
    path.write_text(TEST_CATALOG)
    call_command("check_catalog", str(path), "--reviews")
    assert "group 'sre' lists bob" in capsys.readouterr().err

    removal = ReviewRemoval.objects.get()
    with pytest.raises(lifecycle.NotAllowed, match="only the security role"):
        lifecycle.review_removal_lift(removal_id=removal.pk, actor=people.bob, reason="x", info=WEB)
    step_up(people.carol)
    lifecycle.review_removal_lift(removal_id=removal.pk, actor=people.carol,
                                  reason="a mistake: he is back", info=WEB)  # fmt: skip
    catalog_sync(catalog=parse_catalog(TEST_CATALOG.encode()), info=trail.SYSTEM)
    assert people.bob.groups.filter(name="sre").exists()  # the file rules again
    lifted = AuditEvent.objects.get(action="access_review.removal_lifted")
    assert (lifted.actor, lifted.data["person"]) == ("carol", "bob")


def test_the_catalog_schedules_reviews(people):
    scheduled = TEST_CATALOG.replace(
        "security: {groups: [security]}\n",
        "security: {groups: [security]}\nreviews:\n"
        "  - {name: test-db-quarterly, profile: test-db, every: 90d, takes: 14d}\n",
    )
    catalog_sync(catalog=parse_catalog(scheduled.encode()), info=trail.SYSTEM)
    now = timezone.now()
    assert lifecycle.access_reviews_tick(now=now)["started"] == 1
    assert lifecycle.access_reviews_tick(now=now + timedelta(days=30))["started"] == 0
    first = AccessReview.objects.get()
    assert first.schedule == "test-db-quarterly" and first.started_by is None
    assert lifecycle.access_reviews_tick(now=now + timedelta(days=91))["closed"] == 1
    assert lifecycle.access_reviews_tick(now=first.started_at + timedelta(days=91))["started"] == 1


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("{name: q, profile: nope, every: 90d}", "no profile 'nope'"),
        ("{name: q, group: nope, every: 90d}", "no group 'nope'"),
        ("{name: q, profile: test-db, group: sre, every: 90d}", "one profile or one group"),
        ("{name: q, profile: test-db, every: 10d, takes: 14d}", "shorter than every"),
        ("{name: q, profile: test-db, every: 180d, takes: 100d}", "from 1d to 90d"),
    ],
)
def test_a_bad_schedule_is_refused(schedule, error):
    bad = TEST_CATALOG.replace(
        "security: {groups: [security]}\n",
        f"security: {{groups: [security]}}\nreviews:\n  - {schedule}\n",
    )
    with pytest.raises(Exception, match=error):
        parse_catalog(bad.encode())


def test_nobody_to_review_closes_at_once(catalog, people):
    Group.objects.get(name="engineers").user_set.clear()
    review = start(catalog, people.carol)
    assert review.status == "closed" and review.evidence["items"] == []
    assert Grant.objects.count() == 0


def test_a_review_cannot_leave_the_security_role_empty(catalog, people, step_up):
    review = lifecycle.access_review_start(
        name="security", group_name="security", takes=timedelta(days=14), unreviewed="remove",
        reviewers=Principals(users=["bob"]), actor=people.admin, info=WEB,
    )  # fmt: skip
    decide(review, people.erin, people.bob, "remove", "left the company", step_up)
    with pytest.raises(lifecycle.Conflict, match="security role with nobody"):
        decide(review, people.carol, people.bob, "remove", "and her too")
    lifecycle.access_reviews_tick(now=timezone.now() + timedelta(days=15))
    (carol,) = review.items.filter(person=people.carol)
    assert (carol.decision, carol.note, carol.unreviewed) == (
        "keep", "kept: removing them would leave the security role with nobody", True
    )  # fmt: skip
    # An admin may lift a removal too: a review may have left the role short.
    step_up(people.admin)
    removal = ReviewRemoval.objects.get(person=people.erin)
    lifecycle.review_removal_lift(removal_id=removal.pk, actor=people.admin, reason="rehired",
                                  info=WEB)  # fmt: skip
    assert ReviewRemoval.objects.get(pk=removal.pk).lifted_by == people.admin


def test_the_keep_rule_does_not_keep_what_a_review_removed(
    catalog, people, held, step_up, django_capture_on_commit_callbacks
):
    keeping = TEST_CATALOG.replace("version: 1\n", "version: 1\non_eligibility_lost: keep\n")
    catalog_sync(catalog=parse_catalog(keeping.encode()), info=trail.SYSTEM)
    grant, _, _ = held
    review = start(catalog, people.carol)
    with django_capture_on_commit_callbacks(execute=True):
        decide(review, people.alice, people.bob, "remove", "left the team", step_up)
    grant.refresh_from_db()
    assert grant.status == "revoking"


def test_renaming_a_group_does_not_bring_the_removed_back(catalog, people, step_up):
    review = start(catalog, people.carol, group="sre")
    decide(review, people.bob, people.erin, "remove", "moved to sales", step_up)
    sre = Group.objects.get(name="sre")
    sre.name = "sre-tmp"
    sre.save()
    sre.user_set.add(people.bob)  # allowed: he is kept out of "sre" only
    sre.name = "sre"
    sre.save()
    assert not people.bob.groups.filter(name="sre").exists()


def test_two_open_reviews_of_one_subject_cannot_exist(catalog, people):
    from django.db import IntegrityError, transaction

    review = start(catalog, people.carol)
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessReview.objects.create(
            name="again", profile=review.profile, unreviewed="keep",
            started_at=review.started_at, due_at=review.due_at,
        )  # fmt: skip
