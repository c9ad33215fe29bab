"""How each kind of credential is shown to its owner, once."""

from urllib.parse import quote


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


CREDENTIAL_VIEWS = {
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
