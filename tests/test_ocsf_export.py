"""Every line of the OCSF export is valid OCSF 1.3.0: each is checked against the
JSON Schema of its class, with the profiles it declares, as the third-party
package ocsf-json-schema generates it from the OCSF schema (not as Airlock
thinks OCSF looks). Every kind of audit event is exported, most of them made
by the real flows, and grant and request events name whose access and to what."""

import json
from datetime import timedelta
from functools import cache

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from accounts.models import Authenticator
from accounts.oidc import oidc_identity_link
from accounts.services import (
    MfaError,
    mfa_backup_codes_regenerate,
    mfa_enrol_confirm,
    mfa_enrol_start,
    mfa_remove,
    mfa_step_up,
)
from accounts.tokens import token_create, token_revoke
from audit import trail
from audit.actions import Action
from audit.models import AuditEvent
from broker import anomalies, lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import (
    AccessProfile,
    AccessRequest,
    BreakGlassReview,
    Grant,
    Lock,
    ReviewRemoval,
)
from broker.policy.approvers import can_approve
from broker.reconcile import Orphan, revoke_orphan
from broker.riskmodel import store as riskmodel
from integrations.slack.linking import slack_link_by_code, slack_link_code_create, slack_unlink
from lib.durations import parse_duration
from lib.providers import GrantContext, get_provider
from tests.support.catalogs import POLICY_CATALOG
from tests.support.externals import invite_zoe, open_test_db_to_externals
from tests.support.grants import active_grant, extend, half_way, reveal
from tests.support.people import WEB, current_code, leave_quietly
from tests.support.trail import write_events

OCSF = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.3.0"))
UNREACHABLE = "postgresql://postgres:x@127.0.0.1:1/postgres"


@cache
def validator(class_uid: int, profiles: tuple[str, ...]) -> Draft202012Validator:
    """The OCSF 1.3.0 schema of a class with these profiles, checked itself first."""
    schema = OCSF.get_class_schema(
        class_name=OCSF.lookup_class_name_from_uid(class_uid), profiles=list(profiles)
    )
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(event: dict) -> list[str]:
    """What makes this line invalid OCSF, checked with the profiles it declares."""
    profiles = tuple(event.get("metadata", {}).get("profiles", []))
    return [
        f"{event['message']}: {'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in validator(event["class_uid"], profiles).iter_errors(event)
    ]


def export_ocsf(tmp_path, *args: str) -> list[dict]:
    out = tmp_path / "audit.ocsf.jsonl"
    call_command("export_audit", "--format", "ocsf", "--output", str(out), *args)
    return [json.loads(line) for line in out.read_text().splitlines()]


def record(action: Action, target=None, reason: str = "", **data) -> None:
    """An event the flows below cannot easily make, with the data its writer records."""
    with transaction.atomic():
        trail.record(action=action, info=trail.SYSTEM, target=target, reason=reason, data=data)


def approve(access_request, approver, step_up) -> None:
    step_up(approver)
    lifecycle.access_request_approve(request_id=access_request.pk, approver=approver, info=WEB)


def approved_grant(people, submit, step_up, slug: str = "test-db") -> Grant:
    access_request = submit(people.alice, slug=slug)
    approve(access_request, people.bob, step_up)
    return Grant.objects.get(request=access_request)


def sign_ins(client) -> None:
    """Through the sign-in page, as people do."""
    wrong = client.post("/login/", {"username": "alice", "password": "not her password"})
    assert wrong.status_code == 200
    assert client.post("/login/", {"username": "alice", "password": "x"}).status_code == 302


def mfa_life(people) -> None:
    charlie = people.charlie
    device = mfa_enrol_start(user=charlie)
    with pytest.raises(MfaError):
        mfa_enrol_confirm(user=charlie, device_id=device.pk, code="000000", info=WEB)
    device = mfa_enrol_start(user=charlie)  # a wrong code throttles the first: start again
    mfa_enrol_confirm(user=charlie, device_id=device.pk, code=current_code(device), info=WEB)
    with pytest.raises(MfaError):
        mfa_step_up(user=charlie, code="000000", info=WEB)
    mfa_backup_codes_regenerate(user=charlie, info=WEB)
    mfa_remove(user=charlie, info=WEB)
    assert not Authenticator.objects.filter(user=charlie).exists()


def identities(people) -> None:
    token, _ = token_create(user=people.dave, name="siem", days=30, info=WEB)
    token_revoke(user=people.dave, token_id=token.pk, info=WEB)
    with transaction.atomic():
        oidc_identity_link(
            user=people.dave, issuer="https://idp.example.com", subject="d-1", how="email", info=WEB
        )
    code = slack_link_code_create(user=people.dave)
    assert slack_link_by_code(team_id="T1", slack_user_id="U_DAVE", code=code) == people.dave
    slack_unlink(user=people.dave, info=WEB)


def grant_lives(people, submit, step_up, monkeypatch, settings) -> None:
    """Activated, shown, extended, revoked; another expired; one whose revocation
    fails and is retried; one that never activates."""
    grant = active_grant(people, submit, step_up)
    reveal(grant, people.alice, step_up)
    half_way(grant)
    extension = extend(grant, people.alice)
    approve(extension, people.bob, step_up)
    lifecycle.grant_extend_execute(request_id=extension.pk)
    # Its writer records it when the source refuses the new credential for good.
    record(Action.GRANT_EXTENSION_FAILED, grant, "permission denied", request=str(extension.pk))
    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)

    expiring = active_grant(people, submit, step_up)
    Grant.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    lifecycle.grant_expire(grant_id=expiring.pk)

    stuck = active_grant(people, submit, step_up)
    settings.AIRLOCK_REVOKE_MAX_ATTEMPTS = 2
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", UNREACHABLE)
    lifecycle.grant_revoke(grant_id=stuck.pk, actor=people.bob, info=WEB)
    with pytest.raises(lifecycle.TryAgainLater):
        lifecycle.grant_revoke_execute(grant_id=stuck.pk)
    lifecycle.grant_revoke_execute(grant_id=stuck.pk)  # revoke_failed
    lifecycle.grant_retry_revocation(grant_id=stuck.pk, actor=people.admin, info=WEB)

    never = approved_grant(people, submit, step_up)
    for _ in range(lifecycle.ACTIVATION_MAX_ATTEMPTS - 1):
        with pytest.raises(lifecycle.TryAgainLater):
            lifecycle.grant_activate(grant_id=never.pk)
    lifecycle.grant_activate(grant_id=never.pk)  # failed for good
    monkeypatch.undo()
    lifecycle.grant_revoke_execute(grant_id=stuck.pk)
    assert Grant.objects.get(pk=stuck.pk).status == "revoked"
    assert Grant.objects.get(pk=never.pk).status == "failed"


def request_ends(people, submit, step_up) -> None:
    cancelled = submit(people.alice, slug="other-db")
    lifecycle.access_request_cancel(request_id=cancelled.pk, actor=people.alice, info=WEB)
    denied = submit(people.alice, slug="other-db")
    # What a notifier reports (tests/test_mail_notifications.py emails for real).
    lifecycle.approvers_notified(request_id=denied.pk, via="email", recipients=["erin"])
    step_up(people.erin)
    lifecycle.access_request_deny(
        request_id=denied.pk, approver=people.erin, reason="not this week", info=WEB
    )
    expiring = submit(people.alice, slug="other-db")
    AccessRequest.objects.filter(pk=expiring.pk).update(pending_until=timezone.now())
    assert lifecycle.access_requests_expire_pending() == 1
    # Charlie joins the engineers, asks, and leaves them behind Airlock's back.
    people.charlie.groups.add(people.alice.groups.get(name="engineers"))
    submit(people.charlie, slug="other-db")
    leave_quietly(people.charlie)
    lifecycle.access_enforce_standing(user_ids=[people.charlie.pk])


def policy_flows(people, step_up) -> None:
    """Break-glass with its review and alert; reminders and an escalation."""
    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)
    crown_jewels = AccessProfile.objects.get(slug="crown-jewels")
    step_up(people.alice)
    broken = lifecycle.access_request_submit(
        requester=people.alice,
        profile=crown_jewels,
        duration=parse_duration("30m"),
        reason="prod down, INC-77",
        break_glass=True,
        info=WEB,
    )
    review = BreakGlassReview.objects.get(request=broken)
    assert lifecycle.remind_reviews(review.due_at + timedelta(minutes=1)) == 1
    lifecycle.break_glass_review_close(
        request_id=broken.pk, reviewer=people.bob, notes="checked the session log", info=WEB
    )
    assert "break_glass" in [alert.kind for alert in anomalies.detect()]
    spec = {**crown_jewels.spec, "policy": {**crown_jewels.spec["policy"], "deny_above": 200}}
    AccessProfile.objects.filter(pk=crown_jewels.pk).update(spec=spec)
    crown_jewels = AccessProfile.objects.get(pk=crown_jewels.pk)  # its definition is cached
    waiting = lifecycle.access_request_submit(
        requester=people.alice,
        profile=crown_jewels,
        duration=parse_duration("30m"),
        reason="INC-78",
        info=WEB,
    )
    assert lifecycle.remind_pending(waiting.created_at + timedelta(hours=1)) == {
        "reminded": 1,
        "escalated": 1,
    }


def orphans(catalog) -> None:
    """A credential minted behind Airlock's back, found and revoked."""
    spec = catalog["test-db"].definition.provider
    issued = get_provider(spec.kind).grant(
        GrantContext(
            grant_id="00000000-0000-4000-8000-000000000001",
            request_id="00000000-0000-4000-8000-000000000002",
            profile_id="test-db",
            username="mallory",
            config=spec.config,
            expires_at=timezone.now() + timedelta(minutes=10),
        )
    )
    # What reconcile_orphans records (it would also ask Vault and AWS, absent here).
    record(Action.RECONCILE_ORPHANS_FOUND, orphans=[{"kind": spec.kind, "handle": issued.handle}])
    revoke_orphan(Orphan(spec.kind, "test-db", issued.handle), info=trail.SYSTEM)
    # What archive_audit records (tests/test_audit_archive.py archives for real).
    record(
        Action.AUDIT_ARCHIVED,
        first_seq=1,
        last_seq=2,
        last_hash="f" * 64,
        last_created_at="2000-01-01T00:00:00.000000+00:00",
        count=2,
        file_sha256="e" * 64,
        location="s3://witness/archive/1-2.jsonl",
    )


def locks(people, step_up) -> None:
    """A lock placed, its lift proposed and confirmed; another ended by its time."""
    for member in (people.carol, people.erin):
        step_up(member)
    lifted, _ = lifecycle.lock_place(
        actor=people.carol, scope="user", subject="charlie", reason="phished", info=WEB
    )
    lifecycle.lock_lift(lock_id=lifted.pk, actor=people.carol, reason="reset", info=WEB)
    lifecycle.lock_lift(lock_id=lifted.pk, actor=people.erin, info=WEB)
    timed, _ = lifecycle.lock_place(
        actor=people.carol,
        scope="target",
        subject="postgres:AIRLOCK_PG_DSN_TEST",
        reason="patching",
        duration=timedelta(minutes=1),
        info=WEB,
    )
    Lock.objects.filter(pk=timed.pk).update(ends_at=timezone.now())
    assert lifecycle.locks_end_expired() == 1


def data_changes() -> None:
    """Changes to who may do what made through the ORM (the admin, a shell)."""
    mallory = get_user_model().objects.create_user("mallory", "mallory@example.com", "x")
    mallory.is_active = False
    mallory.save()
    permission = Permission.objects.get(codename="view_grant")
    mallory.user_permissions.add(permission)
    mallory.user_permissions.remove(permission)
    mallory.delete()
    group = Group.objects.create(name="contractors")
    group.permissions.add(permission)
    group.permissions.remove(permission)
    group.name = "vendors"
    group.save()
    group.delete()


def learning(people) -> None:
    """An approver marks a request; the model of usual access learns."""
    marked = next(
        r for r in AccessRequest.objects.select_related("profile")
        if r.requester_id != people.bob.pk and can_approve(people.bob, r.profile)
    )  # fmt: skip
    lifecycle.request_label(request_id=marked.pk, labeller=people.bob, label="unusual", info=WEB)
    assert riskmodel.retrain(timezone.now()) is not None


def reviewing(people, step_up) -> None:
    """An access review nudged twice, a person removed, closed; the removal lifted."""
    review = lifecycle.access_review_start(
        name="Q4", profile=AccessProfile.objects.get(slug="test-db"), takes=timedelta(days=4),
        actor=people.carol, info=WEB,
    )  # fmt: skip
    lifecycle.access_reviews_tick(now=review.started_at + timedelta(days=3))
    step_up(people.bob)
    lifecycle.access_review_decide(
        item_id=review.items.get(person=people.alice).pk, reviewer=people.bob,
        decision="remove", note="moved team", info=WEB,
    )  # fmt: skip
    lifecycle.access_review_close(review_id=review.pk, info=trail.SYSTEM)
    step_up(people.carol)
    lifecycle.review_removal_lift(
        removal_id=ReviewRemoval.objects.get(item__review=review).pk, actor=people.carol,
        reason="a mistake", info=WEB,
    )  # fmt: skip


def third_parties(people, step_up) -> None:
    """zoe of Acme: invited, accepted, her contract moved, reminded, handed over,
    suspended when her sponsor leaves, and ended."""
    open_test_db_to_externals()
    access, _ = invite_zoe(people, step_up, days=20)
    step_up(people.alice)
    lifecycle.external_contract_change(
        external_id=access.pk, actor=people.alice,
        contract_ends_at=timezone.now() + timedelta(days=10), info=WEB,
    )  # fmt: skip
    lifecycle.externals_tick()  # 10 days left: the sponsor is reminded
    Group.objects.get(name="engineers").user_set.add(people.bob)
    lifecycle.external_hand_over(
        external_id=access.pk, actor=people.alice, new_sponsor=people.bob, info=WEB
    )
    people.bob.is_active = False
    people.bob.save()
    lifecycle.externals_tick()  # her sponsor left: suspended
    step_up(people.erin)  # of the security role
    lifecycle.external_end(external_id=access.pk, actor=people.erin, reason="over", info=WEB)


@pytest.fixture
def every_event(
    client, people, catalog, submit, step_up, pg_target, monkeypatch, settings, tmp_path
):
    """The OCSF export of a history holding every kind of audit event."""
    sign_ins(client)
    mfa_life(people)
    identities(people)
    grant_lives(people, submit, step_up, monkeypatch, settings)
    request_ends(people, submit, step_up)
    policy_flows(people, step_up)
    orphans(catalog)
    locks(people, step_up)
    learning(people)
    reviewing(people, step_up)
    third_parties(people, step_up)
    data_changes()
    call_command("evidence_pack", "--since", "2026-01-01", "--output", str(tmp_path / "pack.zip"))
    write_events(1)  # an action Airlock has no mapping for
    # From just after the (recorded) archive's last event: the rest of the history.
    return export_ocsf(tmp_path, "--since", "2000-01-02")


def test_every_line_is_valid_ocsf_1_3_0_of_its_class(every_event):
    exported = {event["message"] for event in every_event}
    assert exported >= set(Action), f"not exported: {sorted(set(Action) - exported)}"
    assert any(action.startswith("data.") for action in exported)
    invalid = [problem for event in every_event for problem in problems(event)]
    assert not invalid, "\n".join(invalid[:40])


def test_each_line_keeps_the_original_event(every_event):
    assert [event["unmapped"]["seq"] for event in every_event] == list(
        AuditEvent.objects.order_by("seq").values_list("seq", flat=True)
    )
    for event in every_event:
        assert event["metadata"]["uid"] == event["unmapped"]["hash"]
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]


def by_action(events: list[dict], action: str) -> list[dict]:
    return [event for event in events if event["message"] == action]


def test_grant_and_request_events_name_whose_access_and_to_what(every_event, tmp_path):
    activated = by_action(every_event, Action.GRANT_ACTIVATED)[0]
    assert [activated[key] for key in ("class_uid", "activity_id", "status_id")] == [3005, 1, 1]
    assert activated["user"]["name"] == "alice" and activated["privileges"] == ["test-db"]
    assert activated["actor"] == {"app_name": "Airlock"}  # the worker, nobody in person
    assert activated["metadata"]["profiles"] == ["host"]  # where 3005 defines `actor`
    approved = by_action(every_event, Action.REQUEST_APPROVED)[0]
    assert approved["user"]["name"] == "alice" and approved["actor"]["user"]["name"] == "bob"
    failed = by_action(every_event, Action.GRANT_REVOKE_FAILED)[0]
    assert (failed["activity_id"], failed["status_id"], failed["severity_id"]) == (2, 2, 4)
    withdrawn = by_action(every_event, Action.REQUEST_WITHDRAWN)[0]
    assert withdrawn["user"]["name"] == "charlie" and withdrawn["privileges"] == ["other-db"]
    # A range that starts after the request was made still says whose grant it is.
    asked = AuditEvent.objects.filter(action=Action.REQUEST_SUBMITTED).first()
    since = AuditEvent.objects.filter(action=Action.GRANT_REVOKED).first().created_at
    later = export_ocsf(tmp_path, "--since", since.isoformat())
    assert later[0]["metadata"]["sequence"] > asked.seq
    revoked = by_action(later, Action.GRANT_REVOKED)[0]
    assert revoked["user"]["name"] == "alice" and revoked["privileges"] == ["test-db"]


def test_sign_ins_and_failures_are_authentications_of_the_person(every_event):
    login, failed = (by_action(every_event, a)[0] for a in ("auth.login", "auth.login_failed"))
    assert (login["class_uid"], login["activity_id"], login["status_id"]) == (3002, 1, 1)
    assert login["user"]["name"] == "alice" and login["service"] == {"name": "Airlock"}
    assert (failed["class_uid"], failed["status_id"]) == (3002, 2)
    assert failed["user"] == {"name": "alice"}  # the name tried; nobody signed in
    assert "actor" not in failed and failed["src_endpoint"] == {"ip": "127.0.0.1"}
    mfa_failed = by_action(every_event, Action.MFA_FAILED)[0]
    assert mfa_failed["is_mfa"] and mfa_failed["status_id"] == 2
    enrolled = by_action(every_event, Action.MFA_ENROLLED)[0]
    assert (enrolled["class_uid"], enrolled["activity_id"]) == (3001, 10)  # MFA Factor Enable


def test_an_action_without_a_mapping_is_a_base_event(every_event):
    unknown = by_action(every_event, "test.event0")[0]
    assert (unknown["class_uid"], unknown["activity_id"], unknown["type_uid"]) == (0, 99, 99)


def test_whose_access_reads_the_same_from_the_batch_or_the_trail(every_event, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    """Submissions and grants in the batch answer for themselves; in batches of
    one event, every subject is looked up in the trail instead: the same lines."""
    from audit import export

    monkeypatch.setattr(export, "OCSF_BATCH", 1)
    again = export_ocsf(tmp_path, "--since", "2000-01-02")
    assert again[: len(every_event)] == every_event  # then the first export's own event
    assert [event["activity_name"] for event in again[len(every_event) :]] == ["Export"]
