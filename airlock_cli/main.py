"""`airlock`: ask for, wait for, use and give back time-boxed access from a terminal.

Exit codes: 0 done; 1 error; 2 bad usage; 3 not logged in or the token expired
or was revoked; 4 forbidden, or the request was denied, cancelled or expired;
5 timed out waiting; 6 not found; 7 conflict (already decided, already shown);
8 rate limited. `airlock exec` exits with the command's own code.
"""

import argparse
import getpass
import json
import os
import shlex
import subprocess  # nosec B404  # exec runs the user's own command
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

from airlock_cli.client import (
    Api,
    CliError,
    ExitCode,
    Login,
    forget_login,
    load_login,
    printable,
    save_login,
)

POLL_SECONDS = float(os.environ.get("AIRLOCK_POLL_SECONDS", "2"))
ENDED = {"denied": "denied", "cancelled": "cancelled", "expired": "expired before a decision"}


def say(message: str) -> None:
    """Progress goes to stderr, so stdout stays clean for `eval $(airlock creds ...)`."""
    print(printable(message), file=sys.stderr, flush=True)


def show(line: str) -> None:
    """A line of a listing on stdout: what the server says may hold what people
    typed (a reason), whose control characters must not drive the terminal."""
    print(printable(line))


# --- credentials ------------------------------------------------------------


def credential_env(kind: str, c: dict) -> dict[str, str]:
    if kind == "postgres":
        return {
            "PGHOST": str(c["host"]),
            "PGPORT": str(c["port"]),
            "PGDATABASE": c["dbname"],
            "PGUSER": c["user"],
            "PGPASSWORD": c["password"],
            "DATABASE_URL": postgres_url(c),
        }
    if kind == "vault_token":
        return {"VAULT_ADDR": c["address"], "VAULT_TOKEN": c["token"]}
    if kind == "vault_database":
        return {"DB_USERNAME": c["username"], "DB_PASSWORD": c["password"]}
    if kind == "aws":
        return {
            "AWS_ACCESS_KEY_ID": c["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": c["secret_access_key"],
            "AWS_SESSION_TOKEN": c["session_token"],
            "AWS_REGION": c["region"],
            **({"AWS_ENDPOINT_URL": c["endpoint_url"]} if c.get("endpoint_url") else {}),
        }
    if kind == "ssh_certificate":
        return {"AIRLOCK_SSH_CERTIFICATE": c["certificate"]}
    return {f"AIRLOCK_{key.upper()}": str(value) for key, value in c.items()}


def postgres_url(c: dict) -> str:
    return (
        f"postgresql://{quote(c['user'], safe='')}:{quote(c['password'], safe='')}"
        f"@{c['host']}:{c['port']}/{quote(c['dbname'], safe='')}"
    )


def format_credential(kind: str, credential: dict, output: str) -> str:
    if output == "json":
        return json.dumps({"kind": kind, **credential}, indent=2)
    if output == "psql":
        if kind != "postgres":
            raise CliError(f"--format psql is for PostgreSQL roles; this is {kind}")
        return postgres_url(credential)
    return "\n".join(
        f"export {name}={shlex.quote(value)}"
        for name, value in credential_env(kind, credential).items()
    )


def ask_otp() -> str:
    """AIRLOCK_OTP for scripts; otherwise a prompt that does not echo."""
    return os.environ.get("AIRLOCK_OTP") or getpass.getpass("MFA code: ")


def reveal(api: Api, grant_id: str) -> tuple[str, dict]:
    shown = api.post(f"grants/{grant_id}/reveal/", {"otp": ask_otp().strip()})
    return shown["kind"], shown["credential"]


# --- waiting ----------------------------------------------------------------


def wait_for(check: Callable[[], tuple[bool, str]], timeout: float, what: str) -> None:
    """Poll `check` (done?, progress line) until done or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        done, progress = check()
        if progress != last:
            say(progress)
            last = progress
        if done:
            return
        if time.monotonic() >= deadline:
            raise CliError(f"gave up waiting {what} after {timeout:.0f} s", ExitCode.TIMEOUT)
        time.sleep(POLL_SECONDS)


def wait_until_active(api: Api, request_id: str, timeout: float) -> dict:
    """Wait for the decision, then for the credential; the active grant."""
    state: dict = {}

    def decided() -> tuple[bool, str]:
        request = state["request"] = api.get(f"requests/{request_id}/")
        if request["status"] in ENDED:
            reason = f": {request['decision_reason']}" if request["decision_reason"] else ""
            raise CliError(f"request {ENDED[request['status']]}{reason}", ExitCode.REFUSED)
        approvals = sum(1 for d in request["decisions"] if d["decision"] == "approve")
        if request["status"] == "approved":
            names = ", ".join(d["approver"] for d in request["decisions"]) or "the policy"
            return True, f"approved by {names}"
        return False, f"waiting for approval ({approvals}/{request['approvals_required']})…"

    wait_for(decided, timeout, "for a decision")
    grant_id = state["request"]["grant"]["id"]

    def activated() -> tuple[bool, str]:
        grant = state["grant"] = api.get(f"grants/{grant_id}/")
        if grant["status"] in ("failed", "revoked", "revoking", "revoke_failed"):
            raise CliError(f"the grant is {grant['status']}: {grant['end_reason']}")
        if grant["status"] == "active":
            return True, f"active until {grant['expires_at']} (grant {grant_id})"
        if state["request"]["start_at"]:
            return False, f"approved; starts at {state['request']['start_at']}…"
        return False, "minting the credential…"

    wait_for(activated, timeout, "for the credential")
    return state["grant"]


# --- commands ---------------------------------------------------------------


def cmd_login(args) -> int:
    url = args.url.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise CliError("--url must start with https:// (or http:// for a local server)",
                       ExitCode.USAGE)  # fmt: skip
    token = (sys.stdin.readline() if args.token_stdin else getpass.getpass("API token: ")).strip()
    if not token:
        raise CliError("no token given; create one on the web's API tokens page", ExitCode.USAGE)
    me = Api(Login(url=url, token=token)).get("me/")
    path = save_login(Login(url=url, token=token))
    say(
        f"logged in to {url} as {me['username']} (token {me['token_name']}, expires "
        f"{me['token_expires_at']}); saved in {path}"
    )
    return ExitCode.OK


def cmd_logout(args) -> int:
    say("logged out" if forget_login() else "was not logged in")
    return ExitCode.OK


def cmd_profiles(args) -> int:
    profiles = Api(load_login()).get("profiles/")
    if not profiles:
        say("there is no profile you may request")
    for p in profiles:
        needs = [
            label
            for label, on in (
                ("reason", p["reason_required"]),
                ("ticket", p["ticket_required"]),
                ("ssh key", p["needs_ssh_public_key"]),
            )
            if on
        ]
        show(
            f"{p['id']:<28} {p['provider']:<15} {p['default_duration']:>5} by default, "
            f"up to {p['max_duration']:<6} "
            f"{p['approvals_required']} approval(s)  needs: {', '.join(needs) or '-'}"
        )
    return ExitCode.OK


def submit(api: Api, args) -> dict:
    body = {"profile": args.profile, "reason": args.reason or ""}
    if args.duration:  # otherwise the server applies the profile's default
        body["duration"] = args.duration
    if args.ticket:
        body["ticket"] = args.ticket
    if getattr(args, "break_glass", False):
        say("BREAK-GLASS: access without approval; security and every approver are told")
        request = api.post("requests/break-glass/", {**body, "otp": ask_otp().strip()})
        say(f"request {request['id']} granted by break-glass; a review is now open")
        return request
    if getattr(args, "start", None):
        body["start_at"] = args.start
    if getattr(args, "ssh_key", None):
        try:
            with open(args.ssh_key) as key:
                body["ssh_public_key"] = key.read()
        except OSError as exc:
            raise CliError(f"{args.ssh_key}: {exc.strerror}", ExitCode.USAGE) from None
    request = api.post("requests/create/", body)
    say(f"request {request['id']} submitted for {request['profile']} ({request['duration']})")
    return request


def cmd_request(args) -> int:
    api = Api(load_login())
    request = submit(api, args)
    print(request["id"])
    if args.wait:
        grant = wait_until_active(api, request["id"], args.timeout)
        print(grant["id"])
    return ExitCode.OK


def cmd_status(args) -> int:
    api = Api(load_login())
    pending = api.get("requests/", status="pending")["results"]
    grants = [g for g in api.get("grants/")["results"] if g["status"] in ("scheduled", "active")]
    for r in pending:
        show(f"pending  {r['id']}  {r['profile']:<24} {r['duration']:<6} since {r['created_at']}")
    for g in grants:
        left = f"{g['seconds_left'] // 60}m left" if g["status"] == "active" else "starting"
        shown = "" if g["credential_available"] else "  (credential already shown)"
        show(f"{g['status']:<8} {g['id']}  {g['profile']:<24} {left}{shown}")
    if not pending and not grants:
        say("no pending requests and no active grants")
    return ExitCode.OK


def cmd_creds(args) -> int:
    kind, credential = reveal(Api(load_login()), args.grant)
    print(format_credential(kind, credential, args.format))
    return ExitCode.OK


def cmd_revoke(args) -> int:
    api = Api(load_login())
    try:
        grant = api.post(f"grants/{args.grant}/revoke/", {"reason": args.reason or ""})
    except CliError as exc:
        if exc.exit_code != ExitCode.NOT_FOUND:
            raise
        raise CliError(not_a_grant(api, args.grant), ExitCode.NOT_FOUND) from None
    say(f"grant {grant['id']} is {grant['status']}")
    return ExitCode.OK


def not_a_grant(api: Api, grant_id: str) -> str:
    """People paste the request id `airlock request` printed: say what to run instead."""
    try:
        request = api.get(f"requests/{grant_id}/")
    except CliError:
        return f"no grant {grant_id} (see `airlock status` for your grants' ids)"
    if request["grant"]:
        return (
            f"{grant_id} is a request; its grant is {request['grant']['id']}: "
            f"airlock revoke {request['grant']['id']}"
        )
    if request["status"] == "pending":
        return f"{grant_id} is a request still waiting for approval: airlock cancel {grant_id}"
    return f"{grant_id} is a request that was {request['status']}; there is no grant to revoke"


def cmd_cancel(args) -> int:
    request = Api(load_login()).post(
        f"requests/{args.request}/cancel/", {"reason": args.reason or ""}
    )
    say(f"request {request['id']} is {request['status']}")
    return ExitCode.OK


def cmd_extend(args) -> int:
    api = Api(load_login())
    before = api.get(f"grants/{args.grant}/")["extensions"]
    body = {"duration": args.duration, "reason": args.reason or ""}
    extension = api.post(f"grants/{args.grant}/extend/", body)
    say(f"extension {extension['id']} asked for {extension['duration']} more")
    print(extension["id"])
    if args.wait:
        wait_for(
            lambda: extension_done(api, extension["id"], args.grant, before),
            args.timeout,
            "for the extension",
        )
    return ExitCode.OK


def cmd_lock(args) -> int:
    body = {"scope": args.scope, "subject": args.subject, "reason": args.reason}
    if args.duration:
        body["duration"] = args.duration
    lock = Api(load_login()).post("locks/create/", {**body, "otp": ask_otp().strip()})
    until = f"until {lock['ends_at']}" if lock["ends_at"] else "until lifted"
    say(f"locked {lock['scope']} {lock['subject']} {until}; what was live there is being revoked")
    print(lock["id"])
    return ExitCode.OK


def cmd_locks(args) -> int:
    api = Api(load_login())
    if args.targets:
        for row in api.get("locks/targets/"):
            show(f"{row['target']:<40} {', '.join(row['profiles'])}")
        return ExitCode.OK
    locks = api.get("locks/", all="true" if args.all else "false")["results"]
    for lock in locks:
        state = "holding" if lock["holding"] else "ended"
        if lock["holding"] and lock["lift_proposed_by"]:
            state = f"lift proposed by {lock['lift_proposed_by']}"
        by = lock["placed_by"] or "containment"
        show(
            f"{lock['id']}  {lock['scope']:<7} {lock['subject']:<30} by {by:<12} {state}: "
            f"{lock['reason']}"
        )
    if not locks:
        say("no lock is in force" if not args.all else "no locks")
    return ExitCode.OK


def cmd_unlock(args) -> int:
    body = {"reason": args.reason or "", "otp": ask_otp().strip()}
    lock = Api(load_login()).post(f"locks/{args.lock}/lift/", body)
    if lock["ended_at"]:
        say(f"lifted the lock on {lock['scope']} {lock['subject']}")
    else:
        say("lift proposed: a second person of the security role must run the same command")
    return ExitCode.OK


def extension_done(api: Api, request_id: str, grant_id: str, before: int) -> tuple[bool, str]:
    request = api.get(f"requests/{request_id}/")
    if request["status"] in ENDED:
        reason = f": {request['decision_reason']}" if request["decision_reason"] else ""
        raise CliError(f"extension {ENDED[request['status']]}{reason}", ExitCode.REFUSED)
    if request["status"] == "pending":
        return False, "waiting for approval…"
    grant = api.get(f"grants/{grant_id}/")
    if grant["extensions"] > before:
        return True, f"extended until {grant['expires_at']}; get the new credential with creds"
    return False, "re-issuing the credential…"


def cmd_audit_export(args) -> int:
    """A range of the audit trail and its sealed manifest, for offline checking."""
    api = Api(load_login())
    output = Path(args.output)
    params = {"format": args.format}
    for name in ("since", "until"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    headers = api.download("audit/export/", params, output)
    through = headers.get("X-Airlock-Through-Seq")
    if through is None:
        raise CliError("the server did not pin the export; is it an Airlock of this version?")
    manifest = api.get("audit/manifest/", **params, through_seq=through)
    manifest_file = output.with_name(output.name + ".manifest.json")
    manifest_file.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    say(f"{manifest['count']} event(s) in {output}; manifest {manifest_file}")
    say("check it offline with: python manage.py verify_audit --export " + str(output))
    return ExitCode.OK


def cmd_exec(args) -> int:
    if not args.command:
        raise CliError("give the command after --, e.g. airlock exec prod-db -- psql",
                       ExitCode.USAGE)  # fmt: skip
    api = Api(load_login())
    request = submit(api, args)
    try:
        grant = wait_until_active(api, request["id"], args.timeout)
    except (CliError, KeyboardInterrupt):
        # Nobody will run the command: do not leave the request waiting for approvers.
        with suppress(CliError):
            api.post(f"requests/{request['id']}/cancel/", {"reason": "airlock exec gave up"})
        raise
    try:
        kind, credential = reveal(api, grant["id"])
        env = {**os.environ, **credential_env(kind, credential)}
        try:
            code = subprocess.call(args.command, env=env)  # noqa: S603  # nosec B603  # the user's own
        except FileNotFoundError:
            raise CliError(f"{args.command[0]}: command not found", 127) from None
        except KeyboardInterrupt:
            code = 130
    finally:
        # Give the access back as soon as the command is done, whatever happened.
        try:
            api.post(f"grants/{grant['id']}/revoke/", {"reason": "airlock exec finished"})
            say(f"grant {grant['id']} revoked")
        except CliError as exc:
            say(f"could not revoke grant {grant['id']}: {exc.message}; it ends at its expiry")
    return code


# --- arguments --------------------------------------------------------------


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", help="the profile's id (see `airlock profiles`)")
    parser.add_argument(
        "--for", dest="duration", help="how long, e.g. 30m, 2h (the profile's default)"
    )
    parser.add_argument("--reason", help="why you need it (approvers read it)")
    parser.add_argument("--ticket", help="a ticket reference, e.g. INC-123")
    parser.add_argument("--ssh-key", help="your SSH public key file, for SSH profiles")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds to wait for approval (900)"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="airlock",
        description="Just-in-time access from the terminal.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help="save an API token for an Airlock server")
    login.add_argument("--url", required=True, help="the Airlock server, e.g. https://airlock")
    login.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    login.set_defaults(run=cmd_login)

    commands.add_parser("logout", help="forget the saved token").set_defaults(run=cmd_logout)
    commands.add_parser("profiles", help="what you may request").set_defaults(run=cmd_profiles)
    commands.add_parser("status", help="your pending requests and grants").set_defaults(
        run=cmd_status
    )

    request = commands.add_parser("request", help="ask for access")
    add_request_arguments(request)
    request.add_argument(
        "--start", help="a change window's start, ISO 8601 (e.g. 2026-12-01T22:00Z)"
    )
    request.add_argument(
        "--break-glass", action="store_true", help="emergency access, where the profile allows"
    )
    request.add_argument("--wait", action="store_true", help="wait until the access is active")
    request.set_defaults(run=cmd_request)

    creds = commands.add_parser("creds", help="show a grant's credential (once; asks for MFA)")
    creds.add_argument("grant")
    creds.add_argument("--format", choices=["env", "json", "psql"], default="env")
    creds.set_defaults(run=cmd_creds)

    revoke = commands.add_parser("revoke", help="give access back early")
    revoke.add_argument("grant")
    revoke.add_argument("--reason")
    revoke.set_defaults(run=cmd_revoke)

    cancel = commands.add_parser("cancel", help="withdraw a request still waiting for approval")
    cancel.add_argument("request")
    cancel.add_argument("--reason")
    cancel.set_defaults(run=cmd_cancel)

    export = commands.add_parser(
        "audit-export", help="auditors: a time range of the audit trail, sealed"
    )
    export.add_argument("--format", choices=["csv", "jsonl", "ocsf"], default="jsonl")
    export.add_argument("--since", help="first day or moment (ISO 8601)")
    export.add_argument("--until", help="last day or moment (inclusive)")
    export.add_argument(
        "--output", required=True, help="the file to write (and FILE.manifest.json)"
    )
    export.set_defaults(run=cmd_audit_export)

    extend = commands.add_parser("extend", help="ask for more time on a grant")
    extend.add_argument("grant")
    extend.add_argument("--for", dest="duration", required=True, help="how much more, e.g. 30m")
    extend.add_argument("--reason")
    extend.add_argument("--wait", action="store_true", help="wait for the new credential")
    extend.add_argument("--timeout", type=float, default=900)
    extend.set_defaults(run=cmd_extend)

    lock = commands.add_parser(
        "lock", help="security role: lock a user, a profile or a provider target (asks for MFA)"
    )
    lock.add_argument("scope", choices=["user", "profile", "target"])
    lock.add_argument("subject", help="a username, a profile id, or a target (locks --targets)")
    lock.add_argument("--reason", required=True)
    lock.add_argument("--for", dest="duration", help="e.g. 2h; by default until lifted")
    lock.set_defaults(run=cmd_lock)

    locks = commands.add_parser("locks", help="security role and auditors: the locks in force")
    locks.add_argument("--all", action="store_true", help="ended locks too")
    locks.add_argument("--targets", action="store_true", help="the provider targets instead")
    locks.set_defaults(run=cmd_locks)

    unlock = commands.add_parser(
        "unlock", help="security role: propose lifting a lock, or confirm another's proposal"
    )
    unlock.add_argument("lock")
    unlock.add_argument("--reason", help="why it can be lifted (needed to propose)")
    unlock.set_defaults(run=cmd_unlock)

    run = commands.add_parser(
        "exec",
        help="request, wait, run a command with the credential, then revoke",
        usage="airlock exec PROFILE [options] -- COMMAND [ARGS...]",
    )
    add_request_arguments(run)
    run.set_defaults(run=cmd_exec)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if argv[:1] == ["exec"] and "--" in argv:
        # Everything after -- is the user's command, options included.
        command, argv = argv[argv.index("--") + 1 :], argv[: argv.index("--")]
    args = parser().parse_args(argv)
    args.command = command
    try:
        return args.run(args)
    except CliError as exc:
        say(f"airlock: {exc.message}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("airlock: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
