"""How each kind of credential is shown to its owner, once."""

import os
from urllib.parse import quote

from integrations.aws.provider import FEDERATION_ENDPOINT, console_signin_url
from integrations.providers import ProviderError


def postgres_lines(c: dict) -> list[tuple[str, str]]:
    url = (
        f"postgresql://{quote(c['user'], safe='')}:{quote(c['password'], safe='')}"
        f"@{c['host']}:{c['port']}/{quote(c['dbname'], safe='')}"
    )
    return [
        ("Connection string", url),
        ("psql", f"psql '{url}'"),
        ("User", c["user"]),
        ("Password", c["password"]),
    ]


def vault_token_lines(c: dict) -> list[tuple[str, str]]:
    return [
        ("Shell", f"export VAULT_ADDR={c['address']}\nexport VAULT_TOKEN={c['token']}"),
        ("Token", c["token"]),
    ]


def vault_database_lines(c: dict) -> list[tuple[str, str]]:
    return [("User", c["username"]), ("Password", c["password"])]


def ssh_certificate_lines(c: dict) -> list[tuple[str, str]]:
    return [
        ("Certificate (save next to your key as <key>-cert.pub)", c["certificate"]),
    ]


def aws_lines(c: dict) -> list[tuple[str, str]]:
    shell = "\n".join(
        [
            f"export AWS_ACCESS_KEY_ID={c['access_key_id']}",
            f"export AWS_SECRET_ACCESS_KEY={c['secret_access_key']}",
            f"export AWS_SESSION_TOKEN={c['session_token']}",
            f"export AWS_REGION={c['region']}",
        ]
    )
    try:
        endpoint = os.environ.get("AWS_FEDERATION_ENDPOINT", FEDERATION_ENDPOINT)
        console = console_signin_url(c, endpoint=endpoint)
    except ProviderError as exc:
        console = f"unavailable ({exc}); use the shell lines"
    return [("Shell", shell), ("AWS console sign-in link (valid 15 minutes)", console)]


CREDENTIAL_VIEWS = {
    "aws": aws_lines,
    "ssh_certificate": ssh_certificate_lines,
    "postgres": postgres_lines,
    "vault_token": vault_token_lines,
    "vault_database": vault_database_lines,
}


def credential_lines(credential: dict) -> list[tuple[str, str]]:
    view = CREDENTIAL_VIEWS.get(credential.get("kind", ""))
    if view is None:
        # A kind without a view: show its fields as they are, never nothing.
        return [(key, str(value)) for key, value in credential.items() if key != "kind"]
    return view(credential)
