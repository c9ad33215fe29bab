"""The whole journey in a real Chromium, against a live server, a real Celery
worker and a real target database: alice asks, bob enrols MFA (with one typo)
and approves from his dashboard in one step-up, alice reveals the credential,
uses it, relinquishes it, and it stops working; dave, the auditor, downloads the
evidence pack and checks it with nothing but the public key. Every page is
checked with axe-core: no serious or critical accessibility violation."""

import os
import re
import subprocess
import sys
from pathlib import Path

import hvac
import psycopg
import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.db import connections
from hvac import exceptions as vault_errors

from accounts.models import StepUp
from broker import lifecycle
from broker.models import AccessRequest, Grant
from tests.support.browser import SHOTS, accessibility_problems, code_from_key, enrol, sign_in
from tests.support.people import WEB
from tests.support.pg_target import can_login, wait_until
from tests.support.sshd import SSHD, ThrowawaySshd

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_request_approve_reveal_relinquish_in_chromium(
    browser, live_server, pg_target, celery_worker, people, catalog
):
    base = live_server.url
    alice = browser.new_context().new_page()
    bob = browser.new_context().new_page()
    try:
        # alice asks for access.
        sign_in(alice, base, "alice")
        alice.get_by_role("link", name="Request access").first.click()
        alice.get_by_label("Access profile").select_option("test-db")
        alice.get_by_label("For how long").fill("10m")
        alice.get_by_label("Reason").fill("INC-42: payments stuck")
        alice.get_by_label("Ticket").fill("INC-42")
        alice.get_by_role("button", name="Submit request").click()
        alice.get_by_text("Request submitted").wait_for()
        alice.screenshot(path=SHOTS / "1-request-submitted.png", full_page=True)
        request_path = re.sub(r"^https?://[^/]+", "", alice.url)

        # bob enrols an authenticator (mistyping once), and sees the request waiting
        # on his dashboard.
        sign_in(bob, base, "bob")
        bob_key = enrol(bob, base, typo=True)
        bob.goto(f"{base}/")
        bob.get_by_text("1 waiting for you").wait_for()
        assert bob.locator("#approvals-count").inner_text() == "1"
        problems = accessibility_problems(bob)
        bob.goto(f"{base}/approvals/")
        bob.get_by_text("first time for test-db").wait_for()
        problems += accessibility_problems(bob)
        bob.screenshot(path=SHOTS / "2-approval-queue.png", full_page=True)
        bob.locator(f"a[href='{request_path}']").first.click()
        problems += accessibility_problems(bob)

        # His verification has lapsed: approving sends him through the verify page
        # and back, with his comment still there and one click left to approve.
        StepUp.objects.filter(user=people.bob).delete()
        bob.get_by_label("Comment (optional)").fill("ok for INC-42")
        bob.get_by_role("button", name="Approve").click()
        bob.get_by_text("Confirm it is you").wait_for()
        problems += accessibility_problems(bob)
        bob.get_by_label("Code").fill(code_from_key(bob_key, steps_ahead=1))
        bob.get_by_role("button", name="Verify").click()
        bob.get_by_text("nothing is decided yet").wait_for()
        bob.screenshot(path=SHOTS / "2b-confirm-after-step-up.png", full_page=True)
        assert bob.get_by_label("Comment (optional)").input_value() == "ok for INC-42"
        bob.get_by_role("button", name="Approve").click()
        bob.get_by_text("Approved.").wait_for()

        grant = Grant.objects.get(request__requester=people.alice)
        assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "active")

        # alice needs MFA to see the credential: she enrols, then reveals it once.
        enrol(alice, base)
        alice.goto(f"{base}/")
        alice.get_by_role("link", name="Test database, read-only").click()
        alice.get_by_role("button", name="Show credential (once)").click()
        alice.get_by_text("Shown once.").wait_for()
        alice.screenshot(path=SHOTS / "3-credential.png", full_page=True)
        url = alice.locator("#secret-1").inner_text().strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM payments").fetchone() == (2,)

        alice.get_by_role("link", name="Back to the grant").click()
        alice.get_by_role("button", name="Relinquish now").click()
        alice.get_by_text("Access is being revoked").wait_for()
        assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "revoked")
        assert not can_login(url)

        alice.goto(f"{base}{request_path}")
        timeline = alice.locator("ol.timeline").inner_text()
        for action in (
            "request.submitted", "request.decision.approve", "request.approved",
            "grant.activated", "grant.credential_revealed", "grant.revoke_requested",
            "grant.revoked",
        ):  # fmt: skip
            assert action in timeline
        assert "MFA verified" in timeline
        alice.screenshot(path=SHOTS / "4-timeline.png", full_page=True)
        problems += accessibility_problems(alice)
        alice.goto(f"{base}/")
        problems += accessibility_problems(alice)
        assert problems == [], problems
    except Exception:
        alice.screenshot(path=SHOTS / "failure-alice.png", full_page=True)
        bob.screenshot(path=SHOTS / "failure-bob.png", full_page=True)
        raise
    finally:
        # Under Playwright's event loop Django keeps this test's connection in a
        # context of its own, which pytest-django's teardown does not see.
        connections.close_all()


def shell_values(page) -> dict[str, str]:
    """The `export NAME=value` lines of the credential page's shell block."""
    text = page.locator("#secret-1").inner_text()
    return dict(re.findall(r"^export (\w+)=(\S+)$", text, re.M))


def test_vault_and_aws_credentials_work_then_stop_in_chromium(
    browser, live_server, vault, aws, celery_worker, people, catalog, submit, step_up
):
    """alice reveals a Vault token and an AWS session in the browser: each works at
    its source inside the window (the read-only AWS role cannot write), and stops
    working once she relinquishes it."""
    granted = {}
    step_up(people.bob)
    for slug in ("vault-token", "aws-reader"):
        asked = submit(people.alice, slug=slug, duration="20m")
        lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
        granted[slug] = Grant.objects.get(request=asked)
    for grant in granted.values():
        assert wait_until(lambda g=grant: Grant.objects.get(pk=g.pk).status == "active")
    base = live_server.url
    alice = browser.new_context().new_page()
    try:
        sign_in(alice, base, "alice")
        enrol(alice, base)
        shown = {}
        for slug, grant in granted.items():
            alice.goto(f"{base}/grants/{grant.pk}/")
            alice.get_by_role("button", name="Show credential (once)").click()
            alice.get_by_text("Shown once.").wait_for()
            alice.screenshot(path=SHOTS / f"6-credential-{slug}.png", full_page=True)
            shown[slug] = shell_values(alice)

        token = hvac.Client(url=shown["vault-token"]["VAULT_ADDR"],
                            token=shown["vault-token"]["VAULT_TOKEN"])  # fmt: skip
        assert token.secrets.kv.v2.read_secret_version("payments", raise_on_deleted_version=True)
        session = shown["aws-reader"]
        s3 = aws.client(
            "s3",
            aws_access_key_id=session["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=session["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=session["AWS_SESSION_TOKEN"],
        )
        s3.list_objects_v2(Bucket="payments")  # reading is what the role is for
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.put_object(Bucket="payments", Key="note.txt", Body=b"mine now")

        for grant in granted.values():
            alice.goto(f"{base}/grants/{grant.pk}/")
            alice.get_by_role("button", name="Relinquish now").click()
            alice.get_by_text("Access is being revoked").wait_for()
        for grant in granted.values():
            assert wait_until(lambda g=grant: Grant.objects.get(pk=g.pk).status == "revoked")
        with pytest.raises(vault_errors.Forbidden):
            token.secrets.kv.v2.read_secret_version("payments", raise_on_deleted_version=True)
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.list_objects_v2(Bucket="payments")
    except Exception:
        alice.screenshot(path=SHOTS / "failure-alice-vault-aws.png", full_page=True)
        raise
    finally:
        connections.close_all()


@pytest.fixture
def sshd(vault, tmp_path):
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: install Debian's openssh-server (.ci/run does)")
    ca = vault.client().adapter.get("/v1/ssh/public_key", json=False).text
    folder = tmp_path / "sshd"
    folder.mkdir()
    server = ThrowawaySshd(folder, ca)
    server.start()
    yield server
    server.stop()


def test_an_ssh_certificate_logs_in_then_is_refused_in_chromium(
    browser, live_server, sshd, celery_worker, people, catalog, step_up, tmp_path, capsys
):
    """alice pastes her public key, gets a certificate once approved, logs in to a
    host that trusts the CA, relinquishes, and the host's KRL refuses it."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    base = live_server.url
    alice = browser.new_context().new_page()
    try:
        sign_in(alice, base, "alice")
        alice.goto(f"{base}/requests/new/")
        alice.get_by_label("Access profile").select_option("vault-ssh")
        alice.get_by_label("For how long").fill("20m")
        alice.get_by_label("Reason").fill("INC-7: restart the payment daemon")
        alice.get_by_label("SSH public key").fill(Path(f"{key}.pub").read_text())
        alice.get_by_role("button", name="Submit request").click()
        alice.get_by_text("Request submitted").wait_for()
        asked = AccessRequest.objects.get(requester=people.alice, profile__slug="vault-ssh")
        step_up(people.bob)
        lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
        grant = Grant.objects.get(request=asked)
        assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "active")

        enrol(alice, base)
        alice.goto(f"{base}/grants/{grant.pk}/")
        alice.get_by_role("button", name="Show credential (once)").click()
        alice.get_by_text("Shown once.").wait_for()
        alice.screenshot(path=SHOTS / "7-ssh-certificate.png", full_page=True)
        certificate = tmp_path / "id_ed25519-cert.pub"
        certificate.write_text(alice.locator("#secret-1").inner_text().strip() + "\n")
        inside = sshd.run(key, certificate, "echo logged-in")
        assert inside.returncode == 0 and "logged-in" in inside.stdout, inside.stderr

        alice.goto(f"{base}/grants/{grant.pk}/")
        alice.get_by_role("button", name="Relinquish now").click()
        alice.get_by_text("Access is being revoked").wait_for()
        assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "revoked")
        capsys.readouterr()
        call_command("ssh_revoked_serials")  # what the hosts' KRL job runs
        sshd.revoke(capsys.readouterr().out)
        refused = sshd.run(key, certificate, "echo logged-in")
        assert refused.returncode != 0 and "logged-in" not in refused.stdout
    except Exception:
        alice.screenshot(path=SHOTS / "failure-alice-ssh.png", full_page=True)
        raise
    finally:
        connections.close_all()


def test_the_auditor_downloads_a_pack_and_verifies_it_offline(
    browser, live_server, people, submit, tmp_path
):
    submit(people.alice, reason="x" * 400)  # a long reason must wrap, not widen the page
    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    dave = context.new_page()
    try:
        sign_in(dave, base, "dave")
        dave.goto(f"{base}/audit/")
        dave.get_by_text("request.submitted").first.wait_for()
        # Nothing wider than the window at 1280 px; dates on one line.
        assert dave.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        problems = accessibility_problems(dave)
        dave.screenshot(path=SHOTS / "5-audit-log.png", full_page=True)
        with dave.expect_download() as keyring_download:
            dave.get_by_role("link", name="Download the keyring").click()
        keyring = tmp_path / "keyring.json"
        keyring_download.value.save_as(keyring)
        with dave.expect_download() as pack_download:
            dave.get_by_role("button", name="Download the evidence pack").click()
        pack = tmp_path / "pack.zip"
        pack_download.value.save_as(pack)
        checked = subprocess.run(
            [str(Path(sys.executable).parent / "airlock-verify"), "--pack", str(pack),
             "--public-key", str(keyring)],
            env={k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "AIRLOCK"))},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        assert "verified" in checked.stdout
        for path in ("/", "/requests/new/", "/mfa/", "/notifications/", "/tokens/"):
            dave.goto(f"{base}{path}")
            problems += accessibility_problems(dave)
        assert problems == [], problems
    except Exception:
        dave.screenshot(path=SHOTS / "failure-dave.png", full_page=True)
        raise
    finally:
        connections.close_all()


def test_the_api_docs_render_under_the_strict_csp(browser, live_server, people):
    page = browser.new_context().new_page()
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else 0)
    try:
        sign_in(page, live_server.url, "alice")
        page.goto(f"{live_server.url}/api/docs/")
        page.get_by_text("/api/v1/requests/create/").first.wait_for(timeout=15000)
        page.screenshot(path=SHOTS / "api-docs.png")
        # Only Swagger UI's cosmetic inline <style> is refused; no script is.
        assert not [text for text in blocked if "script" in text.lower()]
    finally:
        connections.close_all()
