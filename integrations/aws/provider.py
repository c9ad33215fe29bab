"""`aws.sts`: a role session from AssumeRole, ended early by AWS's "revoke older
sessions" pattern.

The session's `DurationSeconds` is the grant's remaining time, so AWS ends it
by itself. An STS session cannot be revoked directly: early revocation puts an
inline policy on the role that denies everything to sessions issued before
that moment (`aws:TokenIssueTime`). That also cuts every other session of the
role issued before then, Airlock's or not.
"""

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.utils import timezone

from integrations.aws.client import aws_client, aws_errors_mapped, region
from lib.providers import (
    GrantContext,
    Issued,
    ProviderConfigError,
    ProviderError,
    seconds_left,
)

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REVOKE_POLICY_NAME = "AirlockRevokeOlderSessions"
SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


def role_name(role_arn: str) -> str:
    return role_arn.split(":role/", 1)[1].rsplit("/", 1)[-1]


def revoke_cutoff(now: datetime) -> datetime:
    """The next whole second: `aws:TokenIssueTime` has second precision, so a
    session issued in the revoking second must fall before the cutoff too."""
    return datetime.fromtimestamp(math.floor(now.timestamp()) + 1, tz=UTC)


def revoke_policy_document(cutoff: datetime) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AirlockRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "DateLessThan": {"aws:TokenIssueTime": cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")}
                },
            }
        ],
    }


def cutoff_of(document: dict[str, Any]) -> datetime | None:
    for statement in document.get("Statement", []):
        value = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        if value:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return None


class AwsStsProvider:
    kind = "aws.sts"
    revocation_note = (
        "An STS session cannot be recalled: revoking puts a policy on the role that denies"
        " every session of it issued before that moment, other people's too. The session"
        " also expires by itself at the grant's end."
    )
    needs_public_key = False
    extends_in_place = False
    # STS sessions last 15 minutes at least. A grant gets a session no longer than
    # itself, and activation takes a moment after the grant's clock starts, so
    # profiles and requests need a minute of room above that.
    min_duration = timedelta(minutes=16)
    sts_minimum_seconds = 900

    def validate_config(self, config: dict[str, Any]) -> None:
        unknown = set(config) - {"role_arn", "session_policy"}
        if unknown:
            raise ProviderConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
        if not isinstance(config.get("role_arn"), str) or not ROLE_ARN.match(config["role_arn"]):
            raise ProviderConfigError("role_arn must be an IAM role ARN")
        policy = config.get("session_policy")
        if policy is not None and not (isinstance(policy, dict) and "Statement" in policy):
            raise ProviderConfigError("session_policy must be an IAM policy document")

    def target(self, config: dict[str, Any]) -> str:
        return f"aws:{config['role_arn'].split(':')[4]}"  # the account

    def missing_configuration(self, config: dict[str, Any]) -> None:
        return None  # boto3 finds its credentials in many places: the source says

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        c = credential
        lines = [
            f"export AWS_ACCESS_KEY_ID={c['access_key_id']}",
            f"export AWS_SECRET_ACCESS_KEY={c['secret_access_key']}",
            f"export AWS_SESSION_TOKEN={c['session_token']}",
            f"export AWS_REGION={c['region']}",
        ]
        if c.get("endpoint_url"):
            lines.append(f"export AWS_ENDPOINT_URL={c['endpoint_url']}")
        shown = [("Shell", "\n".join(lines))]
        if settings.AWS_FEDERATION_ENDPOINT:
            try:
                console = console_signin_url(c, endpoint=settings.AWS_FEDERATION_ENDPOINT)
            except ProviderError as exc:
                console = f"unavailable ({exc}); use the shell lines"
            shown.append(("AWS console sign-in link (valid 15 minutes)", console))
        return shown

    def grant(self, context: GrantContext) -> Issued:
        seconds = seconds_left(context.expires_at)
        if seconds < self.sts_minimum_seconds:
            raise ProviderError(
                "less than the 15 minutes an AWS session lasts at least remain", permanent=True
            )
        role_arn = context.config["role_arn"]
        with aws_errors_mapped():
            role = aws_client("iam").get_role(RoleName=role_name(role_arn))["Role"]
        if seconds > role.get("MaxSessionDuration", 3600):
            raise ProviderError(
                f"the role allows sessions of at most {role['MaxSessionDuration']} s; "
                "lower the profile's max_duration or raise the role's MaxSessionDuration",
                permanent=True,
            )
        identity = SESSION_NAME_UNSAFE.sub("-", context.username)
        session_name = f"airlock-{identity}"[:64]
        arguments = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": seconds,
            "SourceIdentity": identity[:64],
            "Tags": [
                {"Key": "airlock-request", "Value": context.request_id},
                {"Key": "airlock-grant", "Value": context.grant_id},
            ],
        }
        if context.config.get("session_policy"):
            arguments["Policy"] = json.dumps(context.config["session_policy"])
        # The sandbox's moto, not AWS: the session only works there. (Elsewhere an
        # endpoint is Airlock's own, e.g. a VPC endpoint for STS: not the user's.)
        sandbox = settings.AIRLOCK_SANDBOX and settings.AWS_ENDPOINT_URL
        endpoint = {"endpoint_url": settings.AWS_ENDPOINT_URL} if sandbox else {}
        issued_at = timezone.now()
        with aws_errors_mapped():
            credentials = aws_client("sts").assume_role(**arguments)["Credentials"]
        expires_at = min(credentials["Expiration"], context.expires_at)
        return Issued(
            credential={
                "kind": "aws",
                "access_key_id": credentials["AccessKeyId"],
                "secret_access_key": credentials["SecretAccessKey"],
                "session_token": credentials["SessionToken"],
                "region": region(),
                "expiration": credentials["Expiration"].isoformat(),
                **endpoint,
            },
            handle={
                "role_arn": role_arn,
                "session_name": session_name,
                "issued_at": issued_at.isoformat(),
                "expires_at": credentials["Expiration"].isoformat(),
            },
            expires_at=expires_at,
        )

    def revoke(self, handle: dict[str, Any]) -> dict[str, Any] | None:
        if datetime.fromisoformat(handle["expires_at"]) <= timezone.now():
            return None  # the session has ended by itself
        name = role_name(handle["role_arn"])
        cutoff = revoke_cutoff(timezone.now())
        iam = aws_client("iam")
        existing = self._current_cutoff(iam, name)
        if existing and existing >= cutoff:
            cutoff = existing  # a later cutoff already covers this session
        else:
            with aws_errors_mapped():
                iam.put_role_policy(
                    RoleName=name,
                    PolicyName=REVOKE_POLICY_NAME,
                    PolicyDocument=json.dumps(revoke_policy_document(cutoff)),
                )
        return {
            "role_policy": f"{name}/{REVOKE_POLICY_NAME}",
            "denies_sessions_issued_before": cutoff.isoformat(),
        }

    def check(self, handle: dict[str, Any]) -> bool:
        if datetime.fromisoformat(handle["expires_at"]) <= timezone.now():
            return False
        cutoff = self._current_cutoff(aws_client("iam"), role_name(handle["role_arn"]))
        return not (cutoff and datetime.fromisoformat(handle["issued_at"]) < cutoff)

    def healthcheck(self, config: dict[str, Any]) -> None:
        with aws_errors_mapped():
            aws_client("iam").get_role(RoleName=role_name(config["role_arn"]))

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        with aws_errors_mapped():
            role = aws_client("iam").get_role(RoleName=role_name(config["role_arn"]))["Role"]
        limit = role.get("MaxSessionDuration", 3600)
        if max_duration.total_seconds() > limit:
            raise ProviderError(
                f"max_duration is longer than the role's MaxSessionDuration ({limit} s)",
                permanent=True,
            )

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        return []  # AWS cannot list the sessions of a role

    def _current_cutoff(self, iam, name: str) -> datetime | None:
        with aws_errors_mapped():
            try:
                document = iam.get_role_policy(RoleName=name, PolicyName=REVOKE_POLICY_NAME)[
                    "PolicyDocument"
                ]
            except iam.exceptions.NoSuchEntityException:
                return None
        if isinstance(document, str):
            document = json.loads(document)
        return cutoff_of(document)


def console_signin_url(credential: dict, *, endpoint: str) -> str:
    """A one-click AWS console sign-in for these session credentials (AWS federation)."""
    session = json.dumps(
        {
            "sessionId": credential["access_key_id"],
            "sessionKey": credential["secret_access_key"],
            "sessionToken": credential["session_token"],
        }
    )
    try:
        response = requests.get(
            endpoint, params={"Action": "getSigninToken", "Session": session}, timeout=10
        )
        response.raise_for_status()
        token = response.json()["SigninToken"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise ProviderError(f"AWS federation failed: {type(exc).__name__}") from None
    query = urlencode(
        {
            "Action": "login",
            "Issuer": "Airlock",
            "Destination": f"https://{region()}.console.aws.amazon.com/",
            "SigninToken": token,
        }
    )
    return f"{endpoint}?{query}"
