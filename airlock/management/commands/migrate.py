from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from airlock.database_roles import connected_as_owner, grant_runtime_role


class Command(migrate.Command):
    help = (
        f"{migrate.Command.help} With DATABASE_MIGRATE_URL, connects as the tables' owner, "
        "then grants the role of DATABASE_URL, which Airlock runs as, what it needs and no "
        "more: on the audit trail, appending only."
    )

    def handle(self, *args, **options):
        alias = options["database"]
        if settings.AIRLOCK_DATABASE_OWNER is None or alias != DEFAULT_DB_ALIAS:
            return super().handle(*args, **options)
        runtime_role = connections[alias].settings_dict["USER"]
        with connected_as_owner(alias) as owner:
            super().handle(*args, **options)
            if options["plan"] or options["check_unapplied"] or options["prune"]:
                return None  # they only look, or prune the history
            try:
                grant_runtime_role(owner, runtime_role)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Granted {runtime_role} what Airlock needs (on the audit trail: append only)."
            )
        return None
