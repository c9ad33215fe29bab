"""MFA secrets at rest: the TOTP seed is encrypted like credentials and shown
only while the device is being set up; backup-code guesses are throttled like
TOTP codes, per person, whatever the channel."""

import base64
from binascii import hexlify
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import FREE_MISSES, Authenticator
from accounts.services import MfaError, mfa_enrol_confirm, mfa_enrol_start, mfa_step_up
from audit.models import AuditEvent
from tests.support.people import WEB, current_code


def enrolled(user) -> tuple[object, list[str]]:
    device = mfa_enrol_start(user=user)
    codes = mfa_enrol_confirm(user=user, device_id=device.pk, code=current_code(device), info=WEB)
    return device, codes


def test_the_seed_is_not_in_the_database_in_clear(people):
    device, _ = enrolled(people.bob)
    seed = device.bin_key
    table = connection.ops.quote_name(device._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [device.pk])
        row = cursor.fetchone()
    stored = b"".join(bytes(v) if isinstance(v, memoryview) else str(v).encode() for v in row)
    assert hexlify(seed) not in stored.lower() and seed not in stored
    assert base64.b32encode(seed) not in stored


def test_the_seed_is_shown_while_enrolling_and_never_after(client, people):
    client.force_login(people.bob)
    page = client.get("/mfa/enrol/").content.decode()
    device = Authenticator.objects.get(user=people.bob, confirmed=False)
    key = base64.b32encode(device.bin_key).decode()
    assert key in page
    client.post("/mfa/enrol/", {"code": current_code(device)})
    # Replacing the device shows a new seed, never the one in use.
    for url in ("/mfa/", "/", "/tokens/", "/mfa/enrol/"):
        assert key not in client.get(url).content.decode()
    assert not AuditEvent.objects.filter(data__icontains=key).exists()


def test_backup_code_guesses_are_throttled_like_totp_codes(people):
    device, codes = enrolled(people.bob)
    for attempt in range(FREE_MISSES):
        with pytest.raises(MfaError, match="not valid"):
            mfa_step_up(
                user=people.bob, code=f"0123456{attempt:03d}", info=WEB
            )  # wrong backup codes
    with pytest.raises(MfaError, match="too many wrong codes"):
        mfa_step_up(user=people.bob, code=codes[0], info=WEB)  # the right one, too soon
    with pytest.raises(MfaError, match="too many wrong codes"):
        mfa_step_up(user=people.bob, code=current_code(device, 1), info=WEB)  # TOTP too
    # Once the back-off has passed, the right code works.
    Authenticator.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(minutes=5)
    )
    mfa_step_up(user=people.bob, code=codes[0], info=WEB)


def test_a_typo_does_not_throttle_the_next_code(people):
    """One or two wrong codes in a row are typos: the right code right after works."""
    device, _ = enrolled(people.bob)
    for typos in range(1, FREE_MISSES):
        Authenticator.objects.filter(pk=device.pk).update(last_t=-1)  # this step's code unused
        right = current_code(device)
        for _ in range(typos):
            with pytest.raises(MfaError, match="not valid"):
                mfa_step_up(user=people.bob, code=f"{(int(right) + 500_000) % 10**6:06d}", info=WEB)
        mfa_step_up(user=people.bob, code=right, info=WEB)


def test_the_back_off_grows_with_each_wrong_backup_code(people):
    device, _ = enrolled(people.bob)
    for attempt in range(1, 4):
        Authenticator.objects.filter(pk=device.pk).update(
            throttling_failure_timestamp=timezone.now() - timedelta(minutes=5)
        )
        with pytest.raises(MfaError, match="not valid"):
            mfa_step_up(user=people.bob, code=f"badcode{attempt:03d}", info=WEB)
        device.refresh_from_db()
        assert device.throttling_failure_count == attempt


@pytest.mark.django_db(transaction=True)
def test_devices_move_to_encrypted_storage_and_back_with_the_migration(people):
    """Enrolled before the upgrade (django-otp's seed in clear): the migration moves
    each device, encrypted, and it keeps working; going back loses nobody's MFA."""
    from django.core.management import call_command

    device = mfa_enrol_start(user=people.bob)
    mfa_enrol_confirm(user=people.bob, device_id=device.pk, code=current_code(device), info=WEB)
    seed = device.bin_key
    call_command("migrate", "accounts", "0005_identity_binding", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, key, confirmed FROM otp_totp_totpdevice")
        assert cursor.fetchall() == [(people.bob.pk, hexlify(seed).decode(), True)]

    call_command("migrate", "accounts", verbosity=0)

    moved = Authenticator.objects.get(user=people.bob)
    assert moved.bin_key == seed and moved.confirmed
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM otp_totp_totpdevice")
        assert cursor.fetchone() == (0,)
    mfa_step_up(user=people.bob, code=current_code(moved, 1), info=WEB)
