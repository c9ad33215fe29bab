"""`airlock-verify`: check an export, a whole evidence pack or an access review's
evidence, on a machine that has none of Airlock's secrets, settings or database:
only the files and a public key (or keyring). It runs the same checks as
`manage.py verify_audit`."""

import argparse
import sys

import django
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airlock-verify",
        description="Check an Airlock audit export, evidence pack or access review's evidence "
        "offline, with a public key.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--export", metavar="FILE", help="an exported file (beside FILE.manifest.json)"
    )
    what.add_argument("--pack", metavar="ZIP", help="an evidence pack")
    what.add_argument("--review", metavar="FILE", help="an access review's evidence")
    parser.add_argument("--manifest", help="the export's manifest (default: FILE.manifest.json)")
    parser.add_argument("--anchors", metavar="DIR", help="anchors to check the export against")
    parser.add_argument(
        "--public-key", required=True, metavar="KEY", help="Ed25519 public key (PEM) or keyring"
    )
    args = parser.parse_args(argv)
    if not settings.configured:
        # Nothing of a deployment: no secret, and an empty in-memory database that
        # no check reads (the trail's module asks a database how to quote names).
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "audit"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            USE_TZ=True,
            AIRLOCK_WITNESS_BUCKET="",
        )
        django.setup()
    options = {"public_key": args.public_key}
    if args.pack:
        options["pack"] = args.pack
    elif args.review:
        options["review"] = args.review
    else:
        options.update(export=args.export, manifest=args.manifest, anchors=args.anchors)
    try:
        call_command("verify_audit", **options)
    except CommandError as exc:
        print(f"airlock-verify: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
