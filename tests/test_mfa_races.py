"""MFA codes sent at the same moment are judged one after another: sending them
at once neither multiplies the guesses the back-off allows nor lets one code
work twice. Each thread has its own PostgreSQL connection, so the race is real."""

import threading

import pytest
from django.db import connections

from accounts.models import FREE_MISSES, Authenticator
from accounts.services import MfaError, mfa_step_up
from audit.models import AuditEvent
from tests.support.people import WEB, current_code, phone_of

pytestmark = pytest.mark.django_db(transaction=True)
AT_ONCE = 8


def at_once(user, codes: list[str]) -> list[str]:
    """Verify each code in a thread of its own, all at the same moment: "ok" or the error."""
    barrier = threading.Barrier(len(codes))
    outcomes = [""] * len(codes)

    def verify(index: int, code: str) -> None:
        try:
            barrier.wait()
            mfa_step_up(user=user, code=code, info=WEB)
            outcomes[index] = "ok"
        except MfaError as exc:
            outcomes[index] = str(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=verify, args=pair) for pair in enumerate(codes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_wrong_codes_sent_at_once_are_tried_one_at_a_time(people):
    device = phone_of(people.bob)
    right = current_code(device)
    guesses = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(500_000, 500_000 + AT_ONCE)]

    outcomes = at_once(people.bob, guesses)

    # The first few wrong codes are tried (typos) and start the back-off; the others
    # wait for them, one at a time, and meet it.
    tried = [o for o in outcomes if "not valid" in o]
    assert len(tried) == FREE_MISSES, outcomes
    assert all("too many wrong codes" in o for o in outcomes if o not in tried)
    assert Authenticator.objects.get(pk=device.pk).throttling_failure_count == FREE_MISSES


def test_a_code_sent_several_times_at_once_works_once(people):
    code = current_code(phone_of(people.bob))

    outcomes = at_once(people.bob, [code] * AT_ONCE)

    assert outcomes.count("ok") == 1, outcomes
    assert AuditEvent.objects.filter(action="mfa.verified").count() == 1
