from django.core.management.base import BaseCommand, CommandError

from audit.manifest import manifest_path, read_manifest, stated_range, verify_export
from audit.signing import read_keyring
from audit.trail import verify_chain
from lib.secrets import MissingSecret


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain; exit non-zero at the first broken link. With "
        "--export FILE, check an exported file against its manifest instead, offline: "
        "its Ed25519 signature with --public-key, else its HMAC."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--export", metavar="FILE", help="an export_audit file")
        parser.add_argument("--manifest", help="its manifest (default: FILE.manifest.json)")
        parser.add_argument(
            "--public-key",
            metavar="KEY",
            help="an Ed25519 public key (PEM) or a keyring (`/api/v1/audit/keys/`, "
            "`audit_keys`): check signatures with it, no secret needed",
        )

    def handle(self, *args, export=None, manifest=None, public_key=None, **options):
        holds = ""
        if export:
            manifest = manifest or manifest_path(export)
            try:
                keyring = read_keyring(public_key) if public_key else None
                holds = f"; it holds {stated_range(read_manifest(manifest))}"
                report = verify_export(export, manifest, keyring)
            except (OSError, ValueError, TypeError, KeyError, MissingSecret) as exc:
                raise CommandError(f"{export}: cannot check: {exc}") from None
            what = f"export {export}"
        else:
            report = verify_chain()
            what = "audit chain"
        if not report.intact:
            raise CommandError(
                f"{what} BROKEN: {report.error} ({report.count} event(s) verified before it)"
            )
        self.stdout.write(f"{what} intact: {report.count} event(s), head {report.head_hash}{holds}")
