"""What the personas (tests/conftest.py) do beyond existing: where they act from,
their authenticator app, signing in with MFA, changes made behind Airlock's back."""

from django.contrib.auth import get_user_model
from django_otp.oath import totp

from accounts.models import Authenticator
from audit import trail
from audit.models import Source

WEB = trail.RequestInfo(source=Source.WEB, ip="203.0.113.7", user_agent="pytest")


def current_code(device: Authenticator, steps_ahead: int = 0) -> str:
    """The code the user's phone shows now (or `steps_ahead` steps later, which the
    device's tolerance accepts: a code is good only once, so a second verification
    within the same 30 s uses the next one)."""
    t0 = device.t0 - steps_ahead * device.step
    code = totp(device.bin_key, step=device.step, t0=t0, digits=device.digits)
    return f"{code:0{device.digits}d}"


def phone_of(user) -> Authenticator:
    """The user's enrolled authenticator (enrolled on first use)."""
    device, _ = Authenticator.objects.get_or_create(user=user, name="phone", confirmed=True)
    return device


def verified(client, user) -> None:
    """Sign in through Airlock and pass MFA in this session."""
    client.force_login(user)
    device = phone_of(user)
    assert client.post("/mfa/verify/", {"code": current_code(device)}).status_code == 302


def add_user(client, username="mallory"):
    return client.post(
        "/admin/auth/user/add/",
        {"username": username, "usable_password": "true",
         "password1": "a long passphrase 1", "password2": "a long passphrase 1"},
    )  # fmt: skip


def leave_quietly(user, group_name: str = "engineers") -> None:
    get_user_model().groups.through.objects.filter(user=user, group__name=group_name).delete()
