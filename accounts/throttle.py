"""Sign-in throttling: attempts are counted per username and per client address,
before the password is checked; a right password gives them back."""

import hashlib
import unicodedata

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache


def _username_key(username: str) -> str:
    """One key for every spelling the sign-in form could turn into the same account.

    The form strips the username and NFKC-normalises it before ModelBackend looks
    it up exactly, so " carol", "carol\\t" and a full-width "carol" all reach carol:
    counting them apart would multiply her allowance. Case is folded too although
    the lookup is case-sensitive, so "CAROL" (no account) cannot open a fresh
    counter for each variant either, and a case-insensitive backend added later
    inherits a throttle that already covers it. Hashed: the key stays short and
    free of the spaces and control characters memcached refuses, whatever was typed.
    """
    normalised = AbstractBaseUser.normalize_username(username.strip())
    folded = unicodedata.normalize("NFKC", normalised.casefold()).strip()
    return "login-fail:user:" + hashlib.sha256(folded.encode()).hexdigest()


def _keys(username: str, ip: str | None) -> list[tuple[str, int]]:
    limit = settings.AIRLOCK_LOGIN_MAX_FAILURES
    keys = [(_username_key(username), limit)]
    if ip:
        # One address may hold several people (an office NAT): allow more.
        keys.append((f"login-fail:ip:{ip}", limit * 4))
    return keys


def login_attempt(username: str, ip: str | None) -> bool:
    """Count a sign-in attempt before its password is checked; False once the
    username or the address is over its allowance. Counting first, atomically,
    means attempts sent at the same moment cannot all be checked."""
    timeout = int(settings.AIRLOCK_LOGIN_LOCKOUT.total_seconds())
    allowed = True
    for key, limit in _keys(username, ip):
        cache.add(key, 0, timeout)
        allowed = cache.incr(key) <= limit and allowed
    return allowed


def login_succeeded(username: str, ip: str | None) -> None:
    """A right password: the username starts afresh, and the address gets its
    attempt back (people behind one office address sign in all day)."""
    cache.delete(_username_key(username))
    if ip:
        key = f"login-fail:ip:{ip}"
        if cache.get(key, 0) > 0:
            cache.decr(key)
