import time
from base64 import b32encode
from binascii import unhexlify
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import (
    MAX_THROTTLE_DELAY_SECONDS,
    Device,
    ThrottlingMixin,
    TimestampMixin,
    VerifyNotAllowed,
)
from django_otp.oath import TOTP
from django_otp.util import random_hex

from lib.secrets import decrypt_secret, encrypt_secret


class StepUp(models.Model):
    """When a user last proved an MFA factor. Approvals and reveals read it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="step_up"
    )
    verified_at = models.DateTimeField()
    method = models.CharField(max_length=16)  # totp or backup_code

    def __str__(self) -> str:
        return f"{self.user} verified at {self.verified_at:%Y-%m-%d %H:%M:%S}"


class NotificationSettings(models.Model):
    """How a person likes to be told; without a row, the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    # Email approvers about requests they may decide (when Airlock sends email).
    email_approvals = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"notification settings of {self.user}"


class BackupCode(models.Model):
    """A one-time recovery code. Only a keyed hash is stored (django-otp's static
    tokens keep the plaintext, which a database leak would turn into an MFA bypass)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backup_codes"
    )
    code_hash = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"backup code of {self.user} ({'used' if self.used_at else 'unused'})"


class ApiToken(models.Model):
    """A personal API token for the CLI and automation.

    Only a SHA-256 of the token is stored: tokens are 256-bit random strings,
    so an unkeyed hash cannot be reversed, and a database copy holds nothing usable.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters, shown in lists so people can tell their tokens apart.
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class OidcIdentity(models.Model):
    """Who someone is at the identity provider: the issuer and the subject it gives
    them (`iss`, `sub`), which OpenID Connect promises are never reassigned. Bound
    at the first sign-in (or by an admin); sign-ins match on this pair only, never
    on a username or an email the IdP may let people change."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)  # OIDC caps `sub` at 255 ASCII characters
    linked_at = models.DateTimeField()
    linked_by = models.CharField(max_length=16)  # created, email or admin

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_oidc_subject")
        ]

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject} → {self.user}"


class ScimAccount(models.Model):
    """An account the identity provider manages through SCIM: its `externalId`,
    and when the IdP deleted it (the account stays, disabled, for the trail)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scim"
    )
    external_id = models.CharField(max_length=255, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Their line manager, as the IdP says (SCIM's enterprise extension): access
    # reviews can ask managers to review their reports.
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="scim_reports",
    )

    def __str__(self) -> str:
        return f"SCIM account of {self.user}"


class Preferences(models.Model):
    """Per-user settings: the time zone weighs in "off-hours" risk."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    timezone = models.CharField(max_length=64, default="UTC")

    def __str__(self) -> str:
        return f"preferences of {self.user}"


def _new_encrypted_key() -> bytes:
    return encrypt_secret(random_hex(20))


# Wrong codes in a row that do not yet slow the person down; the back-off starts
# at the next one (OTP_TOTP_THROTTLE_FACTOR seconds, doubling with each miss).
FREE_MISSES = 3


class Authenticator(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP authenticator app (RFC 6238, the same codes as django-otp's TOTP
    device). Its seed is encrypted at rest with the key that protects
    credentials, so a copy of the database alone cannot compute codes, and it is
    shown only while the device is being set up.

    Failed codes, TOTP or backup, back off exponentially per person
    (`OTP_TOTP_THROTTLE_FACTOR`), whatever the channel, from the FREE_MISSES-th on:
    a mistyped code is a typo, not yet a guess."""

    encrypted_key = models.BinaryField(default=_new_encrypted_key, editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=6)
    # Steps of the phone's clock either side of ours that still count.
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    # The time step of the last code accepted: a code works once.
    last_t = models.BigIntegerField(default=-1)

    def __str__(self) -> str:
        return f"authenticator of {self.user}"

    @property
    def bin_key(self) -> bytes:
        return unhexlify(decrypt_secret(self.encrypted_key))

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_is_allowed(self) -> tuple[bool, dict | None]:
        misses, last_miss = self.throttling_failure_count, self.throttling_failure_timestamp
        if misses < FREE_MISSES or last_miss is None:
            return True, None
        delay = min(
            self.get_throttle_factor() * 2 ** (misses - FREE_MISSES), MAX_THROTTLE_DELAY_SECONDS
        )
        locked_until = last_miss + timedelta(seconds=delay)
        if timezone.now() < locked_until:
            reason = VerifyNotAllowed.N_FAILED_ATTEMPTS
            return False, {"reason": reason, "failure_count": misses, "locked_until": locked_until}
        return True, None

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
        totp.time = time.time()
        try:
            verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
        except ValueError:
            verified = False
        if not verified:
            self.throttle_increment(commit=True)
            return False
        self.last_t, self.drift = totp.t(), totp.drift
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True

    @property
    def config_url(self) -> str:
        """The otpauth:// URL an authenticator app scans (Key Uri Format)."""
        issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
        label = quote(f"{issuer}:{self.user.get_username()}")
        params = urlencode(
            {
                "secret": b32encode(self.bin_key).decode(),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
                "issuer": issuer,
            },
            quote_via=quote,
        )
        return f"otpauth://totp/{label}?{params}"
