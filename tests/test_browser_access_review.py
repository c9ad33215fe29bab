"""An access review in a real Chromium, from start to evidence: carol of the
security role starts one for test-db, bob (its approver) removes alice after MFA,
which takes test-db away from her at once, the review closes, and its sealed
evidence downloads and verifies offline. axe-core finds no serious problem."""

import pytest
from django.core.management import call_command

from accounts.models import StepUp
from audit.offline import main as airlock_verify
from tests.support.browser import SHOTS, accessibility_problems, code_from_key, enrol, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_review_from_start_to_evidence_in_chromium(
    browser, live_server, people, catalog, tmp_path, capsys
):
    base = live_server.url
    carol = browser.new_context().new_page()
    bob = browser.new_context(accept_downloads=True).new_page()
    alice = browser.new_context().new_page()

    sign_in(carol, base, "carol")
    carol.get_by_role("link", name="Access reviews").click()
    carol.get_by_label("Name").fill("Q4 test-db")
    carol.get_by_label("Review", exact=True).select_option("profile:test-db")
    carol.get_by_label("Days to review").fill("7")
    carol.get_by_role("button", name="Start the review").click()
    carol.get_by_text("Started Q4 test-db: 1 person(s).").wait_for()
    problems = accessibility_problems(carol)

    sign_in(bob, base, "bob")
    key = enrol(bob, base)
    StepUp.objects.filter(user=people.bob).delete()  # his verification has lapsed
    bob.goto(f"{base}/")
    bob.get_by_role("link", name="Access reviews").click()
    bob.get_by_role("link", name="Q4 test-db").click()
    bob.locator("#item-alice").get_by_text("last use: never").wait_for()
    problems += accessibility_problems(bob)
    bob.get_by_label("Note for alice").fill("moved to the data team")
    bob.get_by_role("button", name="Remove").click()
    bob.get_by_text("Confirm it is you").wait_for()
    bob.get_by_label("Code").fill(code_from_key(key, steps_ahead=1))
    bob.get_by_role("button", name="Verify").click()
    bob.get_by_text("nothing is decided yet").wait_for()
    assert bob.get_by_label("Note for alice").input_value() == "moved to the data team"
    bob.get_by_role("button", name="Remove").click()
    bob.get_by_text("alice: remove.").wait_for()
    bob.locator("#review-status").get_by_text("closed").wait_for()
    problems += accessibility_problems(bob)
    bob.screenshot(path=SHOTS / "access-review-closed.png", full_page=True)

    with bob.expect_download() as downloading:
        bob.get_by_role("link", name="download its sealed evidence").click()
    evidence = tmp_path / "review.json"
    downloading.value.save_as(evidence)
    call_command("audit_keys", "--output", str(tmp_path / "keyring.json"))
    capsys.readouterr()
    verified = airlock_verify(
        ["--review", str(evidence), "--public-key", str(tmp_path / "keyring.json")]
    )
    assert verified == 0 and "0 kept, 1 removed (0 of them not reviewed" in (
        capsys.readouterr().out
    )

    # alice may no longer ask for test-db.
    sign_in(alice, base, "alice")
    alice.goto(f"{base}/requests/new/")
    options = alice.get_by_label("Access profile").locator("option").all_inner_texts()
    assert options and not any("Test database, read-only" in o for o in options)
    assert problems == []
