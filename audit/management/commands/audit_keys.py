import json

from django.core.management.base import BaseCommand, CommandError

from audit import signing
from lib.secrets import MissingSecret


class Command(BaseCommand):
    help = (
        "Print the keyring: every Ed25519 key that signed exports, anchors and archives, "
        "with its fingerprint and when it was in use (the file `verify_audit --public-key` "
        "reads). Record the fingerprints somewhere Airlock cannot write."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", help="write the keyring here instead of stdout")

    def handle(self, *args, output=None, **options):
        try:
            document = signing.keyring()
        except MissingSecret as exc:
            raise CommandError(str(exc)) from None
        text = json.dumps(document, indent=2) + "\n"
        if output:
            with open(output, "w") as out:
                out.write(text)
        else:
            self.stdout.write(text, ending="")
        for key in document["keys"]:
            until = key["valid_until"] or "now (current)"
            self.stderr.write(
                f"{key['key_id']}  {key['fingerprint']}  {key['valid_from']} to {until}"
            )
