"""MFA step-up: a real TOTP code, verified server-side, audited either way."""

import pytest

from accounts.models import Authenticator, StepUp
from accounts.selectors import recent_step_up
from accounts.services import MfaError, mfa_step_up
from audit.models import AuditEvent
from tests.support.people import WEB, current_code


@pytest.fixture
def device(people):
    return Authenticator.objects.create(user=people.bob, name="phone", confirmed=True)


def test_a_current_code_records_the_step_up(people, device):
    mfa_step_up(user=people.bob, code=current_code(device), info=WEB)
    assert recent_step_up(people.bob) is not None
    assert AuditEvent.objects.filter(action="mfa.verified", actor="bob").count() == 1


@pytest.mark.parametrize("code", ["000000", "12345", "abcdef", "", "1" * 50])
def test_wrong_or_garbage_codes_are_refused_and_audited(people, device, code):
    with pytest.raises(MfaError, match="not valid"):
        mfa_step_up(user=people.bob, code=code, info=WEB)
    assert not StepUp.objects.exists()
    assert AuditEvent.objects.filter(action="mfa.failed", actor="bob").count() == 1


def test_a_code_cannot_be_replayed(people, device):
    code = current_code(device)
    mfa_step_up(user=people.bob, code=code, info=WEB)
    with pytest.raises(MfaError):
        mfa_step_up(user=people.bob, code=code, info=WEB)


def test_no_device_means_no_step_up(people):
    with pytest.raises(MfaError, match="no MFA device"):
        mfa_step_up(user=people.charlie, code="123456", info=WEB)


def test_an_unconfirmed_device_does_not_count(people):
    device = Authenticator.objects.create(user=people.carol, name="new", confirmed=False)
    with pytest.raises(MfaError, match="no MFA device"):
        mfa_step_up(user=people.carol, code=current_code(device), info=WEB)
