"""Access reviews on the web: the security role starts one, an approver decides
after MFA, the page shows the catalog patch, and the sealed evidence is
downloaded and verified offline with the public key alone."""

import json
from datetime import timedelta

from django.core.management import call_command

from audit.offline import main as airlock_verify
from broker import lifecycle
from broker.models import AccessReview, ReviewRemoval
from tests.support.people import WEB


def test_a_review_from_start_to_evidence_on_the_web(
    client, people, catalog, step_up, tmp_path, settings, capsys
):
    catalog_file = tmp_path / "access.yaml"
    catalog_file.write_text("groups:\n  engineers: [alice]\nprofiles:\n  - id: test-db\n")
    settings.AIRLOCK_CATALOG = str(catalog_file)
    client.force_login(people.carol)
    started = client.post("/access-reviews/new/", {
        "name": "Q4 test-db", "subject": "profile:test-db", "days": "7", "unreviewed": "keep",
    })  # fmt: skip
    review = AccessReview.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/access-reviews/{review.pk}/"

    client.force_login(people.bob)
    page = client.get(f"/access-reviews/{review.pk}/").content.decode()
    assert "Q4 test-db" in page and 'id="item-alice"' in page and "last use: never" in page
    item = review.items.get()
    step_up(people.bob)
    decided = client.post(
        f"/access-reviews/{review.pk}/people/{item.pk}/decide/",
        {"decision": "remove", "note": "moved to the data team", "item": str(item.pk)},
    )
    assert decided.status_code == 302
    assert ReviewRemoval.objects.filter(person=people.alice, profile__slug="test-db").exists()

    page = client.get(f"/access-reviews/{review.pk}/").content.decode()
    assert "This review is <strong>closed</strong>" in page  # the last decision closed it
    assert "not named in test-db&#x27;s requesters.users" in page  # she has it by a group
    patch = client.get(f"/access-reviews/{review.pk}/catalog.patch").content.decode()
    assert patch.startswith("# alice: not named in test-db's requesters.users")

    evidence = client.get(f"/access-reviews/{review.pk}/evidence.json")
    assert evidence["Content-Disposition"].startswith("attachment;")
    (tmp_path / "review.json").write_bytes(evidence.content)
    call_command("audit_keys", "--output", str(tmp_path / "keyring.json"))
    capsys.readouterr()
    assert airlock_verify(["--review", str(tmp_path / "review.json"),
                           "--public-key", str(tmp_path / "keyring.json")]) == 0  # fmt: skip
    assert "1 removed" in capsys.readouterr().out
    assert json.loads(evidence.content)["items"][0]["note"] == "moved to the data team"


def test_a_removal_names_its_lines_in_the_catalog_patch(client, people, catalog, step_up,
                                                       tmp_path, settings):  # fmt: skip
    catalog_file = tmp_path / "access.yaml"
    catalog_file.write_text("groups:\n  sre: [bob, carol]\n  dba: [erin]\n")
    settings.AIRLOCK_CATALOG = str(catalog_file)
    review = lifecycle.access_review_start(
        name="sre", group_name="sre", takes=timedelta(days=7), actor=people.carol, info=WEB
    )
    step_up(people.erin)
    lifecycle.access_review_decide(
        item_id=review.items.get(person=people.bob).pk,
        reviewer=people.erin,
        decision="remove",
        note="left",
        info=WEB,
    )
    client.force_login(people.erin)
    patch = client.get(f"/access-reviews/{review.pk}/catalog.patch").content.decode()
    assert "-  sre: [bob, carol]\n+  sre: [carol]\n" in patch


def test_bad_input_to_start_a_review_changes_nothing(client, people, catalog):
    client.force_login(people.carol)
    for form in (
        {"name": "x", "subject": "profile:nope", "days": "7", "unreviewed": "keep"},
        {"name": "x", "subject": "profile:test-db", "days": "0", "unreviewed": "keep"},
        {"name": "x", "subject": "profile:test-db", "days": "7", "unreviewed": "maybe"},
        {"name": "", "subject": "group:sre", "days": "7", "unreviewed": "keep"},
        {"name": "x" * 500, "subject": "group:sre", "days": "abc", "unreviewed": "keep"},
    ):
        assert client.post("/access-reviews/new/", form).status_code == 400, form
    assert not AccessReview.objects.exists()


def test_the_note_survives_the_mfa_step(client, people, catalog):
    review = lifecycle.access_review_start(
        name="Q4", profile=catalog["test-db"], takes=timedelta(days=7), actor=people.carol,
        info=WEB,
    )  # fmt: skip
    item = review.items.get()
    client.force_login(people.bob)
    asked = client.post(
        f"/access-reviews/{review.pk}/people/{item.pk}/decide/",
        {"decision": "keep", "note": "still on call", "item": str(item.pk)},
    )
    assert "/mfa/verify/" in asked["Location"]
    page = client.get(f"/access-reviews/{review.pk}/").content.decode()
    assert 'value="still on call"' in page and "nothing is decided yet" in page
    assert review.items.get().decision == "pending"
