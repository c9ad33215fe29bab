"""Secrets from the environment or from files, and encryption of stored credentials.

A secret named ``NAME`` is read from the environment variable ``NAME`` or, when
that is unset, from the file named by ``NAME_FILE`` (the Docker/Kubernetes
convention). Secrets never have defaults in code.
"""

import os
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class MissingSecret(RuntimeError):
    pass


def read_secret(name: str, *, required: bool = True) -> str | None:
    value = os.environ.get(name)
    if value:
        return value.strip()
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise MissingSecret(f"{name}_FILE={file_name} cannot be read: {exc.strerror}") from None
    if required:
        raise MissingSecret(f"Set {name} or {name}_FILE")
    return None


@cache
def _fernet() -> Fernet:
    key = read_secret("AIRLOCK_ENCRYPTION_KEY")
    try:
        return Fernet(key)
    except ValueError:
        # Never echo the key itself: say only what is wrong with it.
        raise MissingSecret(
            "AIRLOCK_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes)"
        ) from None


def encrypt_secret(plaintext: str) -> bytes:
    return _fernet().encrypt(plaintext.encode())


def decrypt_secret(token: bytes) -> str:
    try:
        return _fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise MissingSecret("stored credential cannot be decrypted with the current key") from None
