import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERS = [
    # username, role shown to the person trying the demo, superuser
    ("alice", "requester (engineers)", False),
    ("bob", "approver (sre)", False),
    ("carol", "second approver (sre, security)", False),
    ("dave", "auditor", False),
    ("admin", "administrator", True),
]


class Command(BaseCommand):
    help = "Create the demo users with random passwords, written to var/demo-logins.txt."

    def handle(self, *args, **options):
        logins = Path(settings.VAR_DIR) / "demo-logins.txt"
        users = get_user_model().objects
        lines = []
        for username, role, superuser in DEMO_USERS:
            if users.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(12)
            user = users.create_user(
                username=username, password=password, email=f"{username}@example.com"
            )
            user.is_staff = user.is_superuser = superuser
            user.save()
            lines.append(f"{username:<6} {password}   {role}\n")
        if lines:
            logins.parent.mkdir(parents=True, exist_ok=True)
            with logins.open("a") as out:
                out.writelines(lines)
            logins.chmod(0o600)
            self.stdout.write(f"created {len(lines)} demo user(s); logins in {logins}")
        else:
            self.stdout.write(f"demo users exist; logins in {logins}")
