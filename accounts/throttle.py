"""Sign-in throttling: failures are counted per username and per client address."""

from django.conf import settings
from django.core.cache import cache


def _keys(username: str, ip: str | None) -> list[tuple[str, int]]:
    limit = settings.AIRLOCK_LOGIN_MAX_FAILURES
    keys = [(f"login-fail:user:{username.lower()}", limit)]
    if ip:
        # One address may hold several people (an office NAT): allow more.
        keys.append((f"login-fail:ip:{ip}", limit * 4))
    return keys


def login_locked(username: str, ip: str | None) -> bool:
    return any(cache.get(key, 0) >= limit for key, limit in _keys(username, ip))


def login_failed(username: str, ip: str | None) -> None:
    timeout = int(settings.AIRLOCK_LOGIN_LOCKOUT.total_seconds())
    for key, _ in _keys(username, ip):
        cache.add(key, 0, timeout)
        cache.incr(key)


def login_succeeded(username: str) -> None:
    cache.delete(f"login-fail:user:{username.lower()}")
