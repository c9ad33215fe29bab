"""When a requester loses their standing (leaves a requesting group, their account
is disabled, the profile leaves the catalog), whatever made the change, their
pending requests are withdrawn and their live grants follow the catalog's one
rule, `on_eligibility_lost`: revoked at once at the source (the default), or kept
until they expire."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Grant
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import active_grant, credential_works
from tests.support.people import WEB, leave_quietly

pytestmark = pytest.mark.usefixtures("pg_target")


def assert_taken_away(held, pg_target, why: str) -> None:
    grant, credential, pending = held
    grant.refresh_from_db()
    assert grant.status == "revoking" and grant.end_reason == why
    asked = AuditEvent.objects.get(action="grant.revoke_requested", target_id=str(grant.pk))
    assert (asked.actor, asked.reason) == ("", why)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert Grant.objects.get(pk=grant.pk).status == "revoked"
    assert not credential_works(credential, pg_target, None)

    pending.refresh_from_db()
    assert pending.status == "cancelled" and why.split(" may ")[0] in pending.decision_reason
    withdrawn = AuditEvent.objects.get(action="request.withdrawn", target_id=str(pending.pk))
    assert withdrawn.actor == "" and withdrawn.reason == pending.decision_reason


def test_leaving_the_requesting_group_takes_the_access_away(
    held, people, pg_target, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name="engineers").user_set.remove(people.alice)  # the admin's way
    assert_taken_away(held, pg_target, "alice may no longer request test-db")


def test_removing_the_group_from_the_user_does_too(
    held, people, pg_target, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        people.alice.groups.clear()
    assert_taken_away(held, pg_target, "alice may no longer request test-db")


def test_disabling_the_account_takes_the_access_away(
    held, people, pg_target, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        people.alice.is_active = False
        people.alice.save()
    assert_taken_away(held, pg_target, "alice's account is disabled")


def test_another_member_keeps_hers(people, submit, step_up, django_capture_on_commit_callbacks):
    grant = active_grant(people, submit, step_up)
    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name="sre").user_set.remove(people.carol)
    assert Grant.objects.get(pk=grant.pk).status == "active"


def test_the_watch_catches_a_change_made_behind_airlocks_back(held, people, pg_target):
    leave_quietly(people.alice)  # raw SQL: no signal fires
    changes = lifecycle.access_enforce_standing(grants_only=True)
    assert [change.action for change in changes] == ["revoked"]
    grant = Grant.objects.get(pk=held[0].pk)
    assert grant.status == "revoking" and grant.end_reason == "alice may no longer request test-db"
    assert AccessRequest.objects.get(pk=held[2].pk).status == "pending"  # grants only
    assert lifecycle.access_enforce_standing(grants_only=True) == []  # once


def sync(tmp_path, text: str, capsys) -> str:
    path = tmp_path / "access.yaml"
    path.write_text(text)
    call_command("sync_catalog", str(path))
    return capsys.readouterr().out


def without_test_db(text: str) -> str:
    start = text.index("  - id: test-db\n")
    return text[:start] + text[text.index("  - id: test-db-critical\n") :]


def test_sync_catalog_revokes_the_grants_of_a_removed_profile_and_says_so(
    held, tmp_path, capsys, pg_target
):
    grant, credential, pending = held
    out = sync(tmp_path, without_test_db(TEST_CATALOG), capsys)
    assert f"revoked: grant {grant.pk} of alice for test-db (test-db was removed" in out
    assert AccessRequest.objects.get(pk=pending.pk).status == "pending"  # another profile
    grant.refresh_from_db()
    assert grant.status == "revoking"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    assert not credential_works(credential, pg_target, None)


def test_sync_catalog_revokes_the_grants_of_someone_it_takes_out_of_a_group(
    held, tmp_path, capsys, pg_target
):
    grant, _, pending = held
    out = sync(tmp_path, TEST_CATALOG.replace("engineers: [alice]", "engineers: []"), capsys)
    assert f"revoked: grant {grant.pk} of alice for test-db (alice may no longer request" in out
    assert f"withdrawn: request {pending.pk} of alice for test-db-critical" in out


def test_with_the_keep_rule_grants_run_to_their_end(held, tmp_path, capsys):
    grant, _, pending = held
    keep = TEST_CATALOG.replace("version: 1\n", "version: 1\non_eligibility_lost: keep\n")
    out = sync(tmp_path, keep.replace("engineers: [alice]", "engineers: []"), capsys)
    assert f"still open: grant {grant.pk} of alice for test-db until" in out
    assert "(alice may no longer request test-db; on_eligibility_lost: keep)" in out
    assert Grant.objects.get(pk=grant.pk).status == "active"
    assert AccessRequest.objects.get(pk=pending.pk).status == "cancelled"  # can never be approved
    # The watch keeps it too.
    assert [c.action for c in lifecycle.access_enforce_standing(grants_only=True)] == ["kept"]


def test_deleting_the_requesting_group_takes_the_access_away(
    held, people, pg_target, django_capture_on_commit_callbacks
):
    # A membership deleted with its group sends no m2m_changed signal.
    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name="engineers").delete()
    assert_taken_away(held, pg_target, "alice may no longer request test-db")


def test_renaming_the_requesting_group_takes_the_access_away(
    held, people, pg_target, django_capture_on_commit_callbacks
):
    # The catalog names groups: members of a renamed one are no longer requesters.
    with django_capture_on_commit_callbacks(execute=True):
        group = Group.objects.get(name="engineers")
        group.name = "former-engineers"
        group.save()
    assert_taken_away(held, pg_target, "alice may no longer request test-db")


def test_renaming_an_account_the_catalog_names_takes_the_access_away(
    people, submit, step_up, tmp_path, capsys, pg_target, django_capture_on_commit_callbacks
):
    # requesters.users names accounts by username: renamed, alice is no longer one.
    # The first profile is test-db.
    by_name = TEST_CATALOG.replace(
        "requesters: {groups: [engineers]}", "requesters: {users: [alice]}", 1
    )
    assert by_name != TEST_CATALOG
    sync(tmp_path, by_name, capsys)
    Group.objects.get(name="engineers").user_set.remove(people.alice)  # by name only now
    grant = active_grant(people, submit, step_up)
    with django_capture_on_commit_callbacks(execute=True):
        people.alice.username = "alice.smith"
        people.alice.save()
    grant.refresh_from_db()
    assert grant.status == "revoking"
    assert grant.end_reason == "alice.smith may no longer request test-db"


def test_with_the_keep_rule_a_grant_not_yet_active_ends_now(
    people, submit, step_up, tmp_path, capsys
):
    request = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    keep = TEST_CATALOG.replace("version: 1\n", "version: 1\non_eligibility_lost: keep\n")
    out = sync(tmp_path, keep.replace("engineers: [alice]", "engineers: []"), capsys)
    assert f"revoked: grant {grant.pk} of alice for test-db" in out
    assert Grant.objects.get(pk=grant.pk).status == "revoked"  # nothing was minted


def test_with_the_keep_rule_a_disabled_account_still_loses_its_access(
    held, people, tmp_path, capsys, pg_target, django_capture_on_commit_callbacks
):
    """`keep` spares grants from a change of who may request what (a team moved, a
    profile retired); disabling an account is how someone is offboarded, and their
    live credential dies with it at the source."""
    keep = TEST_CATALOG.replace("version: 1\n", "version: 1\non_eligibility_lost: keep\n")
    sync(tmp_path, keep, capsys)
    with django_capture_on_commit_callbacks(execute=True):
        people.alice.is_active = False
        people.alice.save()
    assert_taken_away(held, pg_target, "alice's account is disabled")
