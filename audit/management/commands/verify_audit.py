from django.core.management.base import BaseCommand, CommandError

from audit import signing
from audit.anchors import (
    AnchorCheck,
    anchoring_stalled,
    anchors_in,
    verify_anchored_chain,
    witnessed_anchors,
)
from audit.evidence import check_pack, check_signed_file
from audit.manifest import manifest_path, read_manifest, stated_range, verify_export
from audit.review_evidence import verify_review
from audit.trail import ChainReport, verify_chain
from audit.witness import WitnessError, configured_witness
from lib.secrets import MissingSecret

CANNOT_CHECK = (OSError, ValueError, TypeError, KeyError, MissingSecret, WitnessError)


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain and check it against the anchors on the witness; "
        "exit non-zero at the first problem. With --export FILE, check an exported "
        "file against its manifest instead, offline: its Ed25519 signature with "
        "--public-key, else its HMAC."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--export", metavar="FILE", help="an export_audit file")
        parser.add_argument("--manifest", help="its manifest (default: FILE.manifest.json)")
        parser.add_argument(
            "--public-key",
            metavar="KEY",
            help="an Ed25519 public key (PEM) or a keyring (`audit_keys`, "
            "`/api/v1/audit/keys/`): check signatures with it, no secret needed",
        )
        parser.add_argument(
            "--pack",
            metavar="FILE",
            help="an evidence_pack zip: check all of it offline with --public-key",
        )
        parser.add_argument(
            "--review",
            metavar="FILE",
            help="an access review's evidence (JSON): check it offline with --public-key",
        )
        parser.add_argument(
            "--anchors",
            metavar="DIR",
            help="check against the anchors saved in DIR (default: the witness bucket, "
            "when one is configured)",
        )

    def handle(self, *args, export=None, manifest=None, public_key=None, anchors=None, **options):
        if options.get("review"):
            path = options["review"]
            check_signed_file("review", path, public_key, verify_review, self.stdout.write)
            return None
        if options.get("pack"):
            try:
                return check_pack(options["pack"], public_key, self.stdout.write)
            except CANNOT_CHECK as exc:
                raise CommandError(f"{options['pack']}: cannot check: {exc}") from None
        try:
            keyring = signing.read_keyring(public_key) if public_key else None
            if export:
                what, report, holds = (
                    f"export {export}",
                    *self._export(export, manifest, keyring, anchors),
                )
            else:
                what, report, holds = "audit chain", self._chain(keyring, anchors), ""
        except CANNOT_CHECK as exc:
            raise CommandError(f"{export or 'audit chain'}: cannot check: {exc}") from None
        if not report.intact:
            raise CommandError(
                f"{what} BROKEN: {report.error} ({report.count} event(s) verified before it)"
            )
        anchored = f"; agrees with {report.anchors} anchor(s)" if report.anchors else ""
        if report.anchored_through and report.count > report.anchored_through:
            # What the next anchor will cover; until then only the chain vouches for it.
            anchored += (
                f", the newest of event #{report.anchored_through}: "
                f"{report.count - report.anchored_through} later event(s) not anchored yet"
            )
        self.stdout.write(
            f"{what} intact: {report.count} event(s), head {report.head_hash}{holds}{anchored}"
        )
        if not export and not anchors and configured_witness() is None:
            self.stderr.write(
                "no witness is configured (AIRLOCK_WITNESS_BUCKET): the database's owner "
                "could have rewritten the chain and it would still link"
            )

    def _chain(self, keyring, folder) -> ChainReport:
        witness = configured_witness()
        if folder is None and witness is None:
            return verify_chain()
        anchors = anchors_in(folder) if folder else witnessed_anchors(witness)
        report = verify_anchored_chain(anchors, keyring or signing.listed_keyring(), witness)
        # Anchors that stopped coming leave the newest events unwitnessed.
        stalled = anchoring_stalled(anchors, report.count) if folder is None else None
        if report.intact and stalled:
            return ChainReport(report.count, report.head_hash, stalled, report.anchors)
        return report

    def _export(self, export, manifest, keyring, folder) -> tuple[ChainReport, str]:
        manifest = manifest or manifest_path(export)
        holds = f"; it holds {stated_range(read_manifest(manifest))}"
        if folder is None:
            return verify_export(export, manifest, keyring), holds
        if keyring is None:
            raise ValueError("anchors are signed: give --public-key to check them offline")
        check = AnchorCheck(anchors_in(folder), keyring)
        report = verify_export(export, manifest, keyring, watch=check.watch)
        problem = report.error or check.verdict(None)
        return ChainReport(report.count, report.head_hash, problem, anchors=check.met), holds
