"""MFA in the browser: enrolment, backup codes, step-up and its round trip."""

import re

import pytest

from accounts.models import Authenticator, BackupCode, StepUp
from audit.models import AuditEvent
from tests.support.people import current_code


def enrol(client) -> list[str]:
    page = client.get("/mfa/enrol/").content.decode()
    assert 'src="data:image/svg+xml' in page  # the QR code, rendered server-side
    device = Authenticator.objects.get(confirmed=False)
    response = client.post("/mfa/enrol/", {"code": current_code(device)})
    return re.findall(r"<li>([0-9a-f]{10})</li>", response.content.decode())


def test_bob_enrols_with_a_code_and_gets_backup_codes_once(client, people):
    client.force_login(people.bob)
    codes = enrol(client)
    assert len(codes) == 10
    assert Authenticator.objects.get(user=people.bob).confirmed
    assert not BackupCode.objects.filter(code_hash__in=codes).exists()  # only hashes stored
    assert AuditEvent.objects.filter(action="mfa.enrolled", actor="bob").exists()
    assert "backup codes left: <strong>10</strong>" in client.get("/mfa/").content.decode().lower()


def test_a_wrong_enrolment_code_confirms_nothing(client, people):
    client.force_login(people.bob)
    client.get("/mfa/enrol/")
    response = client.post("/mfa/enrol/", {"code": "000000"}, follow=True)
    assert b"does not match" in response.content
    assert not Authenticator.objects.filter(confirmed=True).exists()


def test_verify_page_steps_up_and_returns_to_a_safe_next(client, people, step_up):
    step_up(people.bob)
    StepUp.objects.all().delete()
    client.force_login(people.bob)
    device = Authenticator.objects.get(user=people.bob)
    wrong = client.post("/mfa/verify/", {"code": "000000", "next": "/approvals/"})
    assert wrong.status_code == 400 and b"not valid" in wrong.content
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    response = client.post(
        "/mfa/verify/", {"code": current_code(device, 1), "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response.url == "/"  # no open redirect
    assert StepUp.objects.filter(user=people.bob).exists()


def test_a_backup_code_works_once(client, people):
    client.force_login(people.carol)
    codes = enrol(client)
    StepUp.objects.all().delete()
    assert client.post("/mfa/verify/", {"code": codes[0]}).status_code == 302
    StepUp.objects.all().delete()
    assert client.post("/mfa/verify/", {"code": codes[0]}).status_code == 400
    assert AuditEvent.objects.filter(action="mfa.verified", data__method="backup_code").count() == 1


def test_replacing_or_removing_mfa_needs_a_fresh_verification(client, people):
    client.force_login(people.bob)
    enrol(client)
    StepUp.objects.all().delete()
    assert client.get("/mfa/enrol/").url.startswith("/mfa/verify/")
    response = client.post("/mfa/remove/")
    assert response.status_code == 302 and response.url.startswith("/mfa/verify/")
    assert Authenticator.objects.filter(user=people.bob).exists()

    device = Authenticator.objects.get(user=people.bob)
    # The enrolment used the current code already.
    assert client.post("/mfa/verify/", {"code": current_code(device, 1)}).status_code == 302
    client.post("/mfa/remove/")
    assert not Authenticator.objects.filter(user=people.bob).exists()
    assert not BackupCode.objects.filter(user=people.bob).exists()
    assert AuditEvent.objects.filter(action="mfa.removed", actor="bob").exists()


def test_step_up_round_trip_keeps_the_form(client, people, submit, step_up):
    """Approve without a fresh MFA: verify, come back, the comment is still there."""
    request = submit(people.alice)
    step_up(people.bob)
    StepUp.objects.all().delete()
    client.force_login(people.bob)
    detail = f"/requests/{request.id}/"
    response = client.post(
        f"{detail}decide/", {"decision": "approve", "comment": "looks fine <b>ok</b>"}
    )
    assert response.status_code == 302
    assert response.url == f"/mfa/verify/?next=%2Frequests%2F{request.id}%2F"
    request.refresh_from_db()
    assert request.status == "pending"  # nothing happened without MFA

    page = client.get(detail).content.decode()
    assert 'value="looks fine &lt;b&gt;ok&lt;/b&gt;"' in page  # restored, and escaped


@pytest.mark.parametrize("code", ["", "abc", "1" * 200, "' OR 1=1 --"])
def test_garbage_codes_get_a_clear_error(client, people, step_up, code):
    step_up(people.bob)
    client.force_login(people.bob)
    response = client.post("/mfa/verify/", {"code": code})
    assert response.status_code == 400 and b"not valid" in response.content
