"""Changes of who may do what are in the audit chain whatever the path: the ORM
from a shell, a management command, the admin (tests/test_admin_side_door.py),
the web and the API. Secret values never are."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from accounts.models import ApiToken, Authenticator, BackupCode, OidcIdentity, Preferences
from audit import trail
from audit.models import AuditEvent
from broker.models import AccessProfile
from integrations.slack.models import SlackIdentity
from tests.support.chaos import airlock_database_url

User = get_user_model()


def events(action: str, target=None) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(action=action)
    if target is not None:
        found = found.filter(target_id=str(target.pk))
    return list(found)


def test_a_user_made_and_promoted_from_a_shell(people):
    mallory = User.objects.create_user("mallory", "m@example.com", "a long passphrase 1")
    (created,) = events("data.account.created", mallory)
    assert created.actor == "" and created.data["fields"]["password"] == "(set)"
    assert created.data["via"]  # which command or program made it

    mallory.is_superuser = True
    mallory.set_password("another long passphrase")
    mallory.save()
    (changed,) = events("data.account.changed", mallory)
    assert changed.data["fields"] == {"is_superuser": [False, True], "password": "(changed)"}
    assert mallory.password not in str(changed.data)


def test_signing_in_is_not_a_change(people):
    from django.contrib.auth.models import update_last_login

    update_last_login(None, people.alice)
    assert events("data.account.changed", people.alice) == []


@pytest.mark.parametrize("side", ["user", "group"])
def test_group_membership_from_either_side(people, side):
    sre = Group.objects.get_or_create(name="sre")[0]
    if side == "user":
        people.charlie.groups.add(sre)
        people.charlie.groups.remove(sre)
        people.charlie.groups.add(sre)
        people.charlie.groups.clear()
    else:
        sre.user_set.add(people.charlie)
        sre.user_set.remove(people.charlie)
        sre.user_set.add(people.charlie)
        sre.user_set.clear()
    added = events("data.account.groups_added", people.charlie)
    removed = events("data.account.groups_removed", people.charlie)
    assert [e.data["groups"] for e in added] == [["sre"], ["sre"]]
    assert [e.data["groups"] for e in removed] == [["sre"], ["sre"]]


def test_permissions_and_groups_themselves(people):
    group = Group.objects.create(name="root-ish")
    permission = Permission.objects.get(codename="add_user")
    group.permissions.add(permission)
    people.charlie.user_permissions.add(permission)
    group.name = "renamed"
    group.save()
    group.delete()
    assert events("data.group.created") and events("data.group.permissions_added")
    assert events("data.account.user_permissions_added", people.charlie)
    assert events("data.group.changed")[0].data["fields"] == {"name": ["root-ish", "renamed"]}
    assert events("data.group.deleted")[0].data["was"] == {"name": "renamed", "user_set": []}


def test_a_deletion_names_the_memberships_it_takes(people):
    sre = Group.objects.get_or_create(name="sre")[0]
    sre.user_set.add(people.charlie, people.erin)
    sre.delete()
    (deleted,) = events("data.group.deleted")
    assert deleted.data["was"] == {"name": "sre", "user_set": ["charlie", "erin"]}
    people.erin.groups.add(Group.objects.create(name="dba2"))
    erin = people.erin.pk
    people.erin.delete()
    (gone,) = [e for e in events("data.account.deleted") if e.target_id == str(erin)]
    assert gone.data["was"] == {"username": "erin", "groups": ["dba2"]}


def test_an_mfa_device_or_backup_code_planted_from_a_shell(people):
    device = Authenticator.objects.create(user=people.charlie, name="planted", confirmed=True)
    BackupCode.objects.create(user=people.charlie, code_hash="0" * 64)
    (created,) = events("data.mfa_device.created", device)
    assert created.data["fields"]["encrypted_key"] == "(set)"
    assert created.data["fields"]["user_id"] == people.charlie.pk
    assert events("data.backup_code.created")[0].data["fields"]["code_hash"] == "(set)"
    seed = device.bin_key.hex()
    assert not AuditEvent.objects.filter(data__icontains=seed).exists()
    device.delete()
    assert events("data.mfa_device.deleted")[0].data["was"]["user"] == "charlie"


def test_tokens_slack_links_time_zones_and_profiles(people, catalog):
    from django.utils import timezone

    token = ApiToken.objects.create(user=people.alice, name="x", prefix="airlock_ab",
                                    token_hash="f" * 64, created_at=timezone.now(),
                                    expires_at=timezone.now())  # fmt: skip
    SlackIdentity.objects.create(user=people.charlie, team_id="T1", slack_user_id="U_BOB",
                                 linked_at=timezone.now(), linked_by="shell")  # fmt: skip
    OidcIdentity.objects.create(
        user=people.charlie, issuer="https://idp.example", subject="bob",
        linked_at=timezone.now(), linked_by="shell",
    )  # fmt: skip
    Preferences.objects.create(user=people.alice, timezone="Asia/Tokyo")
    profile = AccessProfile.objects.get(slug="test-db")
    profile.spec = {**profile.spec, "requesters": {"groups": ["everyone"], "users": []}}
    profile.save()
    assert events("data.api_token.created", token)[0].data["fields"]["token_hash"] == "(set)"
    assert events("data.slack_link.created")[0].data["fields"]["slack_user_id"] == "U_BOB"
    assert events("data.preferences.created")[0].data["fields"]["timezone"] == "Asia/Tokyo"
    assert events("data.profile.changed", profile)[0].data["fields"] == {"spec": "(changed)"}


def test_the_chain_still_verifies(people):
    User.objects.create_user("mallory")
    assert trail.verify_chain().intact


@pytest.mark.django_db(transaction=True)
def test_a_management_command_is_named(tmp_path):
    """createsuperuser in its own process, as an operator would run it."""
    env = {**os.environ, "DJANGO_SUPERUSER_PASSWORD": "a long passphrase 1",
           "DATABASE_URL": airlock_database_url()}  # fmt: skip
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput",
         "--username", "root2", "--email", "r@example.com"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    root = User.objects.get(username="root2")
    (created,) = events("data.account.created", root)
    assert created.data["via"] == "manage.py createsuperuser"
    assert created.data["fields"]["is_superuser"] is True


def test_a_third_partys_sponsor_profiles_and_a_review_removal_from_a_shell(
    people, catalog, step_up
):
    """Who a third party may ask for, and what a review removed, decide access as
    much as groups do: changed behind the lifecycle's back, they are on record."""
    from datetime import timedelta

    from broker import lifecycle
    from broker.models import ReviewRemoval
    from tests.support.externals import invite_zoe, open_test_db_to_externals
    from tests.support.people import WEB

    open_test_db_to_externals()
    access = invite_zoe(people, step_up)[0]
    access.profiles.add(AccessProfile.objects.get(slug="vault-token"))
    invited, added = events("data.external_access.profiles_added", access)
    assert (invited.data["profiles"], added.data["profiles"]) == (["test-db"], ["vault-token"])
    access.sponsor = people.bob
    access.save()
    (changed,) = events("data.external_access.changed", access)
    assert changed.data["fields"] == {"sponsor_id": [people.alice.pk, people.bob.pk]}

    review = lifecycle.access_review_start(
        name="Q4", profile=catalog["test-db"], takes=timedelta(days=7), actor=people.carol,
        info=WEB,
    )  # fmt: skip
    step_up(people.bob)
    lifecycle.access_review_decide(item_id=review.items.get(person=people.alice).pk,
                                   reviewer=people.bob, decision="remove", note="moved",
                                   info=WEB)  # fmt: skip
    removal = ReviewRemoval.objects.get(person=people.alice)
    removal.delete()  # a removal silently lifted
    (deleted,) = events("data.review_removal.deleted")
    assert deleted.data["was"]["person"] == "alice"
