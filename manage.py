#!/usr/bin/env python
import os
import sys
from pathlib import Path

# Run from a checkout on embedded defaults (no DATABASE_URL: `make run`'s SQLite),
# commands find the keys `make` generated in var/ unless the environment names
# its own. A deployment (which names its database) never picks them up.
LOCAL_KEYS = {
    "DJANGO_SECRET_KEY": "django-secret-key",
    "AIRLOCK_ENCRYPTION_KEY": "encryption-key",
    "AIRLOCK_EXPORT_HMAC_KEY": "export-hmac-key",
    "AIRLOCK_AUDIT_SIGNING_KEY": "audit-signing-key",
}


def use_local_keys() -> None:
    if os.environ.get("DATABASE_URL"):
        return
    var = Path(__file__).resolve().parent / "var"
    for name, file_name in LOCAL_KEYS.items():
        if (
            name not in os.environ
            and f"{name}_FILE" not in os.environ
            and (var / file_name).exists()
        ):
            os.environ[f"{name}_FILE"] = str(var / file_name)


if __name__ == "__main__":
    use_local_keys()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "airlock.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
