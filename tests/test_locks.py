"""Locks: the security role (carol and erin in the test catalog) stops a user, a
profile or a provider target. Placing a lock takes away what is live in its
scope at the source and withdraws what waits; while it holds, every step
refuses, naming it; lifting it takes two people of the security role."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.models import AccessProfile, AccessRequest, BreakGlassReview, Grant, Lock
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import active_grant, credential_works, extend, reveal
from tests.support.locks import lock_behind_its_back
from tests.support.people import WEB

pytestmark = pytest.mark.usefixtures("pg_target")


def place(people, step_up, scope="user", subject="alice", by="carol", **kw):
    actor = getattr(people, by)
    step_up(actor)
    return lifecycle.lock_place(
        actor=actor,
        scope=scope,
        subject=subject,
        reason=kw.pop("reason", "laptop stolen"),
        info=WEB,
        **kw,
    )


def lift(people, step_up, lock, by, reason="laptop found and wiped"):
    actor = getattr(people, by)
    step_up(actor)
    return lifecycle.lock_lift(lock_id=lock.pk, actor=actor, reason=reason, info=WEB)


def assert_taken_away(held, pg_target, lock: Lock) -> None:
    grant, credential, pending = held
    grant.refresh_from_db()
    assert grant.status == "revoking" and str(lock.pk) in grant.end_reason
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert Grant.objects.get(pk=grant.pk).status == "revoked"
    assert not credential_works(credential, pg_target, None)
    pending.refresh_from_db()
    assert pending.status == "cancelled" and str(lock.pk) in pending.decision_reason


def test_a_lock_on_a_user_takes_their_access_away_at_the_source(held, people, step_up, pg_target):
    lock, changes = place(people, step_up)
    assert sorted(change.action for change in changes) == ["revoked", "withdrawn"]
    assert_taken_away(held, pg_target, lock)

    placed = AuditEvent.objects.get(action="lock.placed")
    assert (placed.actor, placed.reason) == ("carol", "laptop stolen")
    assert placed.target_id == str(lock.pk)
    assert placed.data["scope"] == "user" and placed.data["subject"] == "alice"
    assert placed.seq < AuditEvent.objects.get(action="grant.revoke_requested").seq


def test_a_lock_on_a_profile_takes_only_that_profile(people, submit, step_up, pg_target):
    grant = active_grant(people, submit, step_up)
    other = submit(people.alice, slug="other-db")
    lock, _ = place(people, step_up, scope="profile", subject="test-db")
    assert Grant.objects.get(pk=grant.pk).status == "revoking"
    assert AccessRequest.objects.get(pk=other.pk).status == "pending"
    assert lock.subject == "test-db"


def test_a_lock_on_a_target_takes_every_profile_whose_credentials_live_there(
    people, submit, step_up
):
    on_target = [submit(people.alice, slug=slug) for slug in ("test-db", "other-db")]
    elsewhere = submit(people.alice, slug="vault-token")
    place(people, step_up, scope="target", subject="postgres:AIRLOCK_PG_DSN_TEST")
    statuses = {r.profile.slug: AccessRequest.objects.get(pk=r.pk).status for r in on_target}
    assert statuses == {"test-db": "cancelled", "other-db": "cancelled"}
    assert AccessRequest.objects.get(pk=elsewhere.pk).status == "pending"
    with pytest.raises(lifecycle.NotAllowed, match="target postgres:AIRLOCK_PG_DSN_TEST is locked"):
        submit(people.alice, slug="test-db")


def test_while_it_holds_every_step_refuses_and_names_the_lock(people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    asked = submit(people.alice, slug="test-db-critical", ticket="INC-9")
    lock = lock_behind_its_back(
        people.carol, scope="user", user=people.alice, reason="under investigation"
    )
    named = f"user alice is locked \\(lock {lock.pk}\\); ask the security team"

    with pytest.raises(lifecycle.NotAllowed, match=f"not now: {named}"):
        submit(people.alice)
    step_up(people.bob)
    with pytest.raises(lifecycle.Conflict, match=named):
        lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
    with pytest.raises(lifecycle.LifecycleError, match=named):
        reveal(grant, people.alice, step_up)
    with pytest.raises(lifecycle.LifecycleError, match=named):
        extend(grant, people.alice)
    # The periodic watch takes the live grant away.
    lifecycle.access_enforce_standing(grants_only=True)
    assert Grant.objects.get(pk=grant.pk).status == "revoking"


def test_a_scheduled_grant_is_not_activated_under_a_lock(people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lock_behind_its_back(people.carol, scope="profile", profile=request.profile)
    lifecycle.grant_activate(grant_id=grant.pk)
    grant.refresh_from_db()
    assert grant.status != "active" and not grant.handle


def test_a_locked_approver_decides_nothing(people, submit, step_up):
    asked = submit(people.alice)
    place(people, step_up, subject="bob", reason="phished")
    step_up(people.bob)
    with pytest.raises(lifecycle.NotAllowed, match="you decide nothing while user bob is locked"):
        lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
    assert AccessRequest.objects.get(pk=asked.pk).status == "pending"


@pytest.mark.parametrize("who", ["alice", "bob", "charlie", "dave", "admin"])
def test_only_the_security_role_places_locks(people, catalog, step_up, who):
    with pytest.raises(lifecycle.NotAllowed, match="only the security role"):
        place(people, step_up, subject="erin", by=who)
    assert not Lock.objects.exists()


def test_placing_a_lock_needs_a_fresh_mfa_step_up(people, catalog):
    with pytest.raises(lifecycle.StepUpRequired):
        lifecycle.lock_place(
            actor=people.carol, scope="user", subject="alice", reason="x", info=WEB
        )
    assert not Lock.objects.exists()


@pytest.mark.parametrize(
    "scope, subject, field, message",
    [
        ("user", "mallory", "subject", "no user 'mallory'"),
        ("profile", "no-such-profile", "subject", "no profile 'no-such-profile'"),
        ("target", "postgres:ELSEWHERE", "subject", "known targets: aws:123456789012, "),
        ("group", "engineers", "scope", "one of user, profile, target"),
    ],
)
def test_a_lock_on_nothing_known_is_refused_clearly(
    people, catalog, step_up, scope, subject, field, message
):
    with pytest.raises(lifecycle.InvalidRequest) as refused:
        place(people, step_up, scope=scope, subject=subject)
    assert refused.value.fields[field].startswith(message)
    assert not Lock.objects.exists() and not AuditEvent.objects.filter(action="lock.placed")


def test_a_lock_needs_a_reason_and_a_positive_duration(people, catalog, step_up):
    with pytest.raises(lifecycle.InvalidRequest, match="say why"):
        place(people, step_up, reason="  ")
    with pytest.raises(lifecycle.InvalidRequest, match="a lock lasts a while"):
        place(people, step_up, duration=timedelta(seconds=-1))
    assert not Lock.objects.exists()


def test_lifting_takes_two_people_of_the_security_role(people, submit, step_up):
    lock, _ = place(people, step_up)
    proposed = lift(people, step_up, lock, "carol")
    assert proposed.ended_at is None and proposed.lift_proposed_by == people.carol
    with pytest.raises(lifecycle.Conflict, match="a second person of the security role"):
        lift(people, step_up, lock, "carol")
    with pytest.raises(lifecycle.NotAllowed, match="only the security role"):
        lift(people, step_up, lock, "bob")
    with pytest.raises(lifecycle.NotAllowed):
        submit(people.alice)  # still locked

    lifted = lift(people, step_up, lock, "erin", reason="")
    assert lifted.ended_by == people.erin
    assert submit(people.alice).status == "pending"
    event = AuditEvent.objects.get(action="lock.lifted")
    assert (event.actor, event.data["proposed_by"]) == ("erin", "carol")
    assert event.reason == "laptop found and wiped"  # the proposal's, when the confirmer gives none
    with pytest.raises(lifecycle.Conflict, match="already ended"):
        lift(people, step_up, lock, "carol")


def test_a_locked_security_member_neither_lifts_nor_places(people, catalog, step_up):
    on_erin, _ = place(people, step_up, subject="erin", reason="token leaked")
    with pytest.raises(lifecycle.NotAllowed, match="may not lift locks while user erin"):
        lift(people, step_up, on_erin, "erin")
    with pytest.raises(lifecycle.NotAllowed, match="may not place locks while user erin"):
        place(people, step_up, subject="alice", by="erin")


def test_a_proposal_to_lift_lapses(people, catalog, step_up):
    lock, _ = place(people, step_up)
    lift(people, step_up, lock, "carol")
    Lock.objects.filter(pk=lock.pk).update(lift_proposed_at=timezone.now() - timedelta(days=2))
    again = lift(people, step_up, lock, "erin", reason="erin's own look")
    assert again.ended_at is None and again.lift_proposed_by == people.erin


def test_a_lock_with_an_end_stops_holding_then_and_the_sweeper_records_it(people, submit, step_up):
    lock, _ = place(people, step_up, duration=timedelta(minutes=5))
    with pytest.raises(lifecycle.NotAllowed, match="until"):
        submit(people.alice)
    Lock.objects.filter(pk=lock.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert submit(people.alice).status == "pending"
    assert lifecycle.sweep()["locks_ended"] == 1
    assert lifecycle.sweep()["locks_ended"] == 0
    ended = AuditEvent.objects.get(action="lock.ended")
    assert ended.actor == "" and ended.target_id == str(lock.pk)


def test_a_lock_revokes_even_where_the_catalog_keeps_lost_eligibility(
    held, people, step_up, pg_target, tmp_path
):
    keep = TEST_CATALOG.replace("version: 1\n", "version: 1\non_eligibility_lost: keep\n")
    lifecycle.catalog_sync(catalog=parse_catalog(keep.encode()), info=trail.SYSTEM)
    lock, changes = place(people, step_up)
    assert "kept" not in {change.action for change in changes}
    assert_taken_away(held, pg_target, lock)


def test_a_refusal_names_the_lock_but_not_who_placed_it_or_why(people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    pending = submit(people.alice, slug="test-db-critical", ticket="INC-8")
    place(people, step_up, reason="HR case 42: suspected exfiltration, do not tip off")
    with pytest.raises(lifecycle.NotAllowed) as refused:
        submit(people.alice)
    told = [
        refused.value.message,
        AccessRequest.objects.get(pk=pending.pk).decision_reason,
        Grant.objects.get(pk=grant.pk).end_reason,
    ]
    assert not [text for text in told if "exfiltration" in text or "carol" in text]
    assert all("ask the security team" in text for text in told)
    placed = AuditEvent.objects.get(action="lock.placed")  # the trail keeps it all
    assert placed.reason.startswith("HR case 42") and placed.actor == "carol"


def test_a_locked_approvers_earlier_approval_no_longer_counts(people, submit, step_up):
    asked = submit(people.alice, slug="test-db-critical", ticket="INC-7")  # bob and carol
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
    place(people, step_up, subject="bob", by="erin", reason="bob phished")
    step_up(people.carol)
    lifecycle.access_request_approve(request_id=asked.pk, approver=people.carol, info=WEB)
    assert AccessRequest.objects.get(pk=asked.pk).status == "pending"


def test_a_locked_approver_acts_on_nobody_elses_access(people, submit, step_up, catalog):
    grant = active_grant(people, submit, step_up)
    request = submit(people.alice, slug="vault-token")
    BreakGlassReview.objects.create(request=request, due_at=timezone.now())
    place(people, step_up, subject="bob", reason="bob's laptop stolen")
    with pytest.raises(lifecycle.NotAllowed, match="may not close a review while user bob"):
        lifecycle.break_glass_review_close(
            request_id=request.pk, reviewer=people.bob, notes="all fine", info=WEB
        )
    with pytest.raises(lifecycle.NotAllowed, match="may not revoke others' access"):
        lifecycle.grant_revoke(grant_id=grant.pk, actor=people.bob, info=WEB)


def test_the_locked_may_still_give_their_own_access_back(people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    lock_behind_its_back(people.carol, scope="user", user=people.alice)
    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, reason="done", info=WEB)
    assert Grant.objects.get(pk=grant.pk).status == "revoking"


@pytest.mark.parametrize("since", ["locked", "out_of_the_role"])
def test_a_proposal_whose_proposer_can_no_longer_lift_lapses(people, catalog, step_up, since):
    on_alice, _ = place(people, step_up, by="erin")
    lift(people, step_up, on_alice, "carol", reason="trust me")
    if since == "locked":
        place(people, step_up, subject="carol", by="erin", reason="carol phished")
    else:
        text = TEST_CATALOG.replace("security: [carol, erin]", "security: [erin, dave]")
        lifecycle.catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)
    again = lift(people, step_up, on_alice, "erin", reason="erin's own look")
    assert again.ended_at is None and again.lift_proposed_by == people.erin


def test_a_target_whose_profiles_are_disabled_can_still_be_locked(people, catalog, step_up):
    AccessProfile.objects.update(enabled=False)
    lock, _ = place(people, step_up, scope="target", subject="postgres:AIRLOCK_PG_DSN_TEST")
    AccessProfile.objects.filter(slug="test-db").update(enabled=True)
    with pytest.raises(lifecycle.NotAllowed, match=str(lock.pk)):
        lifecycle.access_request_submit(
            requester=people.alice, profile=AccessProfile.objects.get(slug="test-db"),
            duration=timedelta(hours=1), reason="INC-1", info=WEB,
        )  # fmt: skip


@pytest.mark.parametrize("reason", ["ok\x00", "prod\x1b[2Kdown", "\x07"])
def test_control_characters_in_a_reason_are_refused(people, catalog, step_up, reason):
    with pytest.raises(lifecycle.InvalidRequest, match="control characters"):
        place(people, step_up, reason=reason)
    assert not Lock.objects.exists()


def test_a_lock_changed_behind_the_lifecycles_back_is_in_the_trail(people, catalog, step_up):
    lock, _ = place(people, step_up)
    lock.ended_at = timezone.now()
    lock.save()  # a shell, the admin: one person, no proposal
    changed = AuditEvent.objects.get(action="data.lock.changed")
    assert "ended_at" in changed.data["fields"]


def test_a_confirmers_reason_is_checked_as_any_other(people, catalog, step_up):
    lock, _ = place(people, step_up, by="erin")
    lift(people, step_up, lock, "erin", reason="found it")
    with pytest.raises(lifecycle.InvalidRequest, match="control characters"):
        lift(people, step_up, lock, "carol", reason="\x1b[2J\x1b[31mok")
    assert Lock.objects.get(pk=lock.pk).ended_at is None
    lift(people, step_up, lock, "carol", reason="")
    assert AuditEvent.objects.get(action="lock.lifted").reason == "found it"
