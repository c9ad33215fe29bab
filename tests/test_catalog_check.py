"""check_catalog: a table of bad catalogs, each with the error it must produce."""

import textwrap

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from broker.catalog.load import CatalogError, parse_catalog

BASE_PROFILE = """
  - id: db
    title: DB
    provider: {kind: postgres.role, config: {dsn_env: PG_DSN, granted_roles: [reader]}}
    requesters: {groups: [eng]}
    approvers: {groups: [sre]}
    max_duration: 1h
"""
GROUPS = "groups: {eng: [alice], sre: [bob, carol]}\n"


def catalog(profiles: str = BASE_PROFILE, groups: str = GROUPS) -> bytes:
    return ("version: 1\n" + groups + "profiles:" + textwrap.dedent(profiles)).encode()


def test_the_example_catalog_is_valid():
    with open("examples/access.yaml", "rb") as f:
        parsed = parse_catalog(f.read())
    assert [p.id for p in parsed.spec.profiles] == [
        "payments-db-readonly", "payments-db-write", "payments-secrets", "payments-hosts-ssh",
        "payments-aws-read", "core-db-readonly", "payments-aws-console",
    ]  # fmt: skip


BAD = [
    pytest.param(
        BASE_PROFILE.replace("postgres.role", "nosuch.kind"),
        "profile 'db': provider.kind: unknown provider kind 'nosuch.kind'",
        id="unknown-provider",
    ),
    pytest.param(
        BASE_PROFILE.replace("max_duration: 1h", "max_duration: 5 parsecs"),
        "profile 'db': max_duration: '5 parsecs' is not a duration",
        id="bad-duration",
    ),
    pytest.param(
        BASE_PROFILE.replace("max_duration: 1h", "max_duration: 30d"),
        "profile 'db': max_duration: at most 7d",
        id="duration-too-long",
    ),
    pytest.param(
        BASE_PROFILE + "    default_duration: 2h\n",
        "profile 'db': profile: default_duration 2h is longer than max_duration 1h",
        id="default-over-max",
    ),
    pytest.param(
        BASE_PROFILE + "    approvals_required: 3\n",
        "profile 'db': approvals_required: 3 approvals required but only 2 approver(s) declared",
        id="approvals-exceed-pool",
    ),
    pytest.param(
        BASE_PROFILE.replace("requesters: {groups: [eng]}", "requesters: {groups: [eng, sre]}")
        + "    approvals_required: 2\n",
        "profile 'db': approvers: 'bob' may request this profile and only 1 other approver(s)",
        id="self-approval-only-way",
    ),
    pytest.param(
        BASE_PROFILE + "    colour: blue\n",
        "profile 'db': colour: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        BASE_PROFILE.replace("{dsn_env: PG_DSN,", "{dsn_env: PG_DSN, passwrd: x,"),
        "profile 'db': provider.config: unknown keys: passwrd",
        id="unknown-provider-config-key",
    ),
    pytest.param(
        BASE_PROFILE + BASE_PROFILE,
        "profile 'db': id: duplicate profile id",
        id="duplicate-id",
    ),
    pytest.param(
        BASE_PROFILE + "    max_duration: 2h\n",
        "duplicate key 'max_duration'",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        BASE_PROFILE.replace("id: db", "id: Prod DB!"),
        "profile 'Prod DB!': id: String should match pattern",
        id="bad-id",
    ),
    pytest.param(
        BASE_PROFILE + "    ticket_pattern: '([unclosed'\n",
        "profile 'db': ticket_pattern: not a valid regular expression",
        id="bad-ticket-regex",
    ),
    pytest.param(
        BASE_PROFILE.replace("granted_roles: [reader]", "granted_roles: ['x; DROP TABLE y']"),
        "profile 'db': provider.config: granted_roles: 'x; DROP TABLE y' is not a plain role name",
        id="sql-in-role-name",
    ),
    pytest.param(
        BASE_PROFILE.replace("    title: DB\n", ""),
        "profile 'db': title: Field required",
        id="missing-title",
    ),
]


@pytest.mark.parametrize(("profiles", "expected"), BAD)
def test_bad_catalog_names_profile_and_field(profiles, expected):
    with pytest.raises(CatalogError) as caught:
        parse_catalog(catalog(profiles))
    assert any(expected in error for error in caught.value.errors), caught.value.errors


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"version: 1\nprofiles: [\n", "not valid YAML"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"version: 2\nprofiles: []\n", "version: Input should be 1"),
        (b"version: 1\n", "profiles: Field required"),
    ],
)
def test_malformed_files_get_a_clear_error(raw, expected):
    with pytest.raises(CatalogError) as caught:
        parse_catalog(raw)
    assert any(expected in error for error in caught.value.errors), caught.value.errors


def test_undeclared_group_is_a_warning_not_an_error():
    parsed = parse_catalog(catalog(groups="groups: {eng: [alice]}\n"))
    assert any("group 'sre' is not declared" in w for w in parsed.warnings)


def test_a_security_role_of_one_is_a_warning_since_lifting_takes_two():
    lone = "groups: {security: [carol]}\nsecurity: {groups: [security]}\n"
    assert any(
        "lifting a lock takes two" in w for w in parse_catalog(catalog(groups=lone)).warnings
    )
    pair = "groups: {security: [carol, erin]}\nsecurity: {groups: [security]}\n"
    assert not any("lifting" in w for w in parse_catalog(catalog(groups=pair)).warnings)


def test_check_catalog_command_exits_non_zero_and_prints_errors(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_bytes(catalog(BASE_PROFILE.replace("postgres.role", "nosuch.kind")))
    with pytest.raises(CommandError, match="1 error"):
        call_command("check_catalog", str(path))
    assert "provider.kind: unknown provider kind" in capsys.readouterr().err


def test_check_catalog_command_accepts_a_good_file(tmp_path, capsys):
    path = tmp_path / "good.yaml"
    path.write_bytes(catalog())
    call_command("check_catalog", str(path))
    assert "OK, 1 profile(s)" in capsys.readouterr().out


def test_check_catalog_does_not_touch_the_database(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_bytes(catalog())
    # No `db` fixture: pytest-django makes any query fail, so this proves none is made.
    call_command("check_catalog", str(path))


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(CommandError):
        call_command("check_catalog", str(tmp_path / "nope.yaml"))
