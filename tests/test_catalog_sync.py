"""sync_catalog: applies a checked catalog, prints the diff, records it, never
deletes history, and says what it withdrew or revoked."""

import hashlib

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.models import AccessProfile
from tests.support.catalogs import TEST_CATALOG
from tests.support.people import WEB


@pytest.fixture
def catalog_file(tmp_path, people):
    path = tmp_path / "access.yaml"
    path.write_text(TEST_CATALOG)
    return path


def sync(path, capsys) -> str:
    call_command("sync_catalog", str(path))
    return capsys.readouterr().out


def test_first_sync_adds_profiles_groups_and_an_audit_event(catalog_file, people, capsys):
    declared = {p.id for p in parse_catalog(catalog_file.read_bytes()).spec.profiles}
    out = sync(catalog_file, capsys)
    assert "added: test-db" in out and f"{len(declared)} added, 0 changed, 0 removed" in out
    assert set(AccessProfile.objects.values_list("slug", flat=True)) == declared
    sre = Group.objects.get(name="sre").user_set.values_list("username", flat=True)
    assert set(sre) == {"bob", "carol"}
    event = AuditEvent.objects.get(action="catalog.synced")
    sha = hashlib.sha256(catalog_file.read_bytes()).hexdigest()
    assert event.data["sha256"] == sha and event.source == "cli"
    assert set(event.data["added"]) == declared


def test_sync_again_reports_no_changes(catalog_file, capsys):
    sync(catalog_file, capsys)
    assert "no profile changes" in sync(catalog_file, capsys)


def test_changed_and_removed_profiles(catalog_file, capsys, people, step_up):
    sync(catalog_file, capsys)
    request = lifecycle.access_request_submit(
        requester=people.alice,
        profile=AccessProfile.objects.get(slug="other-db"),
        reason="x",
        info=WEB,
    )
    text = catalog_file.read_text().replace("max_duration: 2h", "max_duration: 90m")
    start = text.index("  - id: other-db")
    catalog_file.write_text(text[:start])

    out = sync(catalog_file, capsys)

    assert "changed: test-db" in out
    assert "removed (disabled): other-db" in out
    assert (
        f"withdrawn: request {request.id} of alice for other-db "
        "(other-db was removed from the catalog)" in out
    )
    other = AccessProfile.objects.get(slug="other-db")  # history is kept
    assert other.enabled is False
    assert AccessProfile.objects.get(slug="test-db").definition.max_duration.total_seconds() == 5400
    request.refresh_from_db()
    assert request.status == "cancelled"  # it could never be approved, and it says so

    catalog_file.write_text(TEST_CATALOG)
    assert "changed: other-db" in sync(catalog_file, capsys)
    assert AccessProfile.objects.get(slug="other-db").enabled is True


def test_a_bad_catalog_is_refused_and_changes_nothing(catalog_file, capsys):
    sync(catalog_file, capsys)
    before = list(AccessProfile.objects.values_list("slug", "spec"))
    events = AuditEvent.objects.count()
    catalog_file.write_text(TEST_CATALOG.replace("max_duration: 2h", "max_duration: forever"))
    with pytest.raises(CommandError, match="refused"):
        call_command("sync_catalog", str(catalog_file))
    assert "max_duration: 'forever' is not a duration" in capsys.readouterr().err
    assert list(AccessProfile.objects.values_list("slug", "spec")) == before
    assert AuditEvent.objects.count() == events


def test_declared_groups_replace_membership_and_warn_about_unknown_users(
    catalog_file, capsys, people
):
    people.charlie.groups.add(Group.objects.create(name="sre"))
    catalog_file.write_text(TEST_CATALOG.replace("sre: [bob, carol]", "sre: [bob, carol, zoe]"))
    call_command("sync_catalog", str(catalog_file))
    assert "group 'sre': no such user(s): zoe" in capsys.readouterr().err
    members = set(Group.objects.get(name="sre").user_set.values_list("username", flat=True))
    assert members == {"bob", "carol"}
