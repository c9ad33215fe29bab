"""`aws.identity_center`: an IAM Identity Center account assignment of a
permission set to the requester, in one account, for the grant's window.

The requester's Identity Center user is found by their email (or an explicit
`users` mapping). Creation and deletion are asynchronous in AWS: both are
polled until they succeed. An assignment has no expiry of its own: Airlock
deletes it at the grant's end (its ETA task, then the sweeper, then the
reconciler, which finds assignments no grant explains). The portal sessions it
allows last at most the permission set's session duration, which
`check_catalog --online` holds against the profile's `max_duration`. A
deletion that does not finish in time is a `revoke_failed` with an alert, and
the sweeper tries it again.
"""

import re
import time
from contextlib import suppress
from datetime import timedelta
from typing import Any

from integrations.aws.client import aws_client, aws_errors_mapped
from lib.providers import GrantContext, Issued, ProviderConfigError, ProviderError

ACCOUNT_ID = re.compile(r"^\d{12}$")
NAME = re.compile(r"^[\w+=,.@-]{1,32}$")
ALLOWED_KEYS = {"account_id", "permission_set", "users", "portal_url", "instance_arn"}
# How long creation or deletion may take before the attempt counts as failed.
POLL_SECONDS, POLL_EVERY = 30.0, 0.5


class IdentityCenterProvider:
    kind = "aws.identity_center"
    revocation_note = (
        "Revoking deletes the account assignment; sessions already opened from the AWS access "
        "portal last until the permission set's session duration ends."
    )
    needs_public_key = False
    min_duration = timedelta(seconds=1)
    # No expiry at the source: an extension moves the grant's end, the assignment stays.
    extends_in_place = True

    def validate_config(self, config: dict[str, Any]) -> None:
        unknown = set(config) - ALLOWED_KEYS
        if unknown:
            raise ProviderConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
        if not isinstance(config.get("account_id"), str) or not ACCOUNT_ID.match(
            config["account_id"]
        ):
            raise ProviderConfigError("account_id must be a 12-digit AWS account id")
        if not isinstance(config.get("permission_set"), str) or not NAME.match(
            config["permission_set"]
        ):
            raise ProviderConfigError("permission_set must name a permission set")
        users = config.get("users", {})
        if not isinstance(users, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in users.items()
        ):
            raise ProviderConfigError("users maps Airlock usernames to Identity Center user names")

    def target(self, config: dict[str, Any]) -> str:
        return f"aws:{config['account_id']}"  # the same account aws.sts profiles name

    def missing_configuration(self, config: dict[str, Any]) -> None:
        return None  # AWS says (readiness checks and the grant itself)

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        c = credential
        profile = f"airlock-{c['account_id']}-{c['permission_set']}"
        return [
            ("AWS access portal", f"{c['portal_url']} (sign in as {c['signs_in_as']})"),
            ("Account and role", f"{c['account_id']}, {c['permission_set']}"),
            (
                "AWS CLI",
                f"aws configure sso --profile {profile}   # start URL: {c['portal_url']}\n"
                f"aws sso login --profile {profile}",
            ),
        ]

    def grant(self, context: GrantContext) -> Issued:
        config = context.config
        instance = self._instance(config)
        permission_set = self._permission_set(instance["InstanceArn"], config["permission_set"])
        path, value = self._user_key(context, config)
        principal = self._user_id(instance["IdentityStoreId"], path, value)
        assignment = {
            "InstanceArn": instance["InstanceArn"],
            "TargetId": config["account_id"],
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": permission_set,
            "PrincipalType": "USER",
            "PrincipalId": principal,
        }
        handle = {
            "instance_arn": instance["InstanceArn"],
            "account_id": config["account_id"],
            "permission_set_arn": permission_set,
            "principal_id": principal,
        }
        sso = aws_client("sso-admin")
        with aws_errors_mapped():
            status = sso.create_account_assignment(**assignment)["AccountAssignmentCreationStatus"]
        try:
            self._wait(sso, instance["InstanceArn"], status, "creation")
        except ProviderError:
            # AWS took it and may still finish it: with no handle recorded, nothing
            # else would ever delete an assignment that has no end of its own.
            with suppress(ProviderError):
                self.revoke(handle)
            raise
        return Issued(
            credential={
                "kind": "aws_identity_center",
                "portal_url": config.get("portal_url")
                or f"https://{instance['IdentityStoreId']}.awsapps.com/start",
                "account_id": config["account_id"],
                "permission_set": config["permission_set"],
                "signs_in_as": value,  # the Identity Center user to sign in to the portal as
            },
            handle=handle,
            expires_at=context.expires_at,
        )

    def revoke(self, handle: dict[str, Any]) -> None:
        if not self.check(handle):
            return  # gone already
        sso = aws_client("sso-admin")
        with aws_errors_mapped():
            status = sso.delete_account_assignment(
                InstanceArn=handle["instance_arn"],
                TargetId=handle["account_id"],
                TargetType="AWS_ACCOUNT",
                PermissionSetArn=handle["permission_set_arn"],
                PrincipalType="USER",
                PrincipalId=handle["principal_id"],
            )["AccountAssignmentDeletionStatus"]
        self._wait(sso, handle["instance_arn"], status, "deletion")

    def check(self, handle: dict[str, Any]) -> bool:
        return any(
            found["principal_id"] == handle["principal_id"]
            for found in self._assignments(
                handle["instance_arn"], handle["account_id"], handle["permission_set_arn"]
            )
        )

    def healthcheck(self, config: dict[str, Any]) -> None:
        self._instance(config)

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        instance = self._instance(config)
        arn = self._permission_set(instance["InstanceArn"], config["permission_set"])
        with aws_errors_mapped():
            described = aws_client("sso-admin").describe_permission_set(
                InstanceArn=instance["InstanceArn"], PermissionSetArn=arn
            )["PermissionSet"]
        session = _iso_duration(described.get("SessionDuration", "PT1H"))
        if session > max_duration:
            raise ProviderError(
                f"the permission set's sessions last {described.get('SessionDuration')}, longer "
                "than the profile's max_duration: a portal session would outlive the grant",
                permanent=True,
            )

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Every user assignment of the permission set in the account: Airlock is
        meant to be the only one assigning it (README)."""
        instance = self._instance(config)
        arn = self._permission_set(instance["InstanceArn"], config["permission_set"])
        return self._assignments(instance["InstanceArn"], config["account_id"], arn)

    def _assignments(self, instance_arn: str, account_id: str, permission_set: str) -> list:
        sso = aws_client("sso-admin")
        found, token = [], None
        with aws_errors_mapped():
            while True:
                page = sso.list_account_assignments(
                    InstanceArn=instance_arn, AccountId=account_id,
                    PermissionSetArn=permission_set, **({"NextToken": token} if token else {}),
                )  # fmt: skip
                found += [
                    {
                        "instance_arn": instance_arn,
                        "account_id": account_id,
                        "permission_set_arn": permission_set,
                        "principal_id": item["PrincipalId"],
                    }
                    for item in page["AccountAssignments"]
                    if item["PrincipalType"] == "USER"
                ]
                token = page.get("NextToken")
                if not token:
                    return found

    def _instance(self, config: dict[str, Any]) -> dict[str, Any]:
        """The organisation's Identity Center instance (there is one), or the one named."""
        with aws_errors_mapped():
            instances = aws_client("sso-admin").list_instances()["Instances"]
        wanted = config.get("instance_arn")
        chosen = [i for i in instances if not wanted or i["InstanceArn"] == wanted]
        if len(chosen) != 1:
            raise ProviderError(
                f"{len(chosen)} Identity Center instance(s) found; name one as instance_arn",
                permanent=True,
            )
        return chosen[0]

    def _permission_set(self, instance_arn: str, name: str) -> str:
        sso = aws_client("sso-admin")
        with aws_errors_mapped():
            arns = sso.list_permission_sets(InstanceArn=instance_arn)["PermissionSets"]
            for arn in arns:
                described = sso.describe_permission_set(
                    InstanceArn=instance_arn, PermissionSetArn=arn
                )["PermissionSet"]
                if described["Name"] == name:
                    return arn
        raise ProviderError(f"no permission set named {name}", permanent=True)

    def _user_key(self, context: GrantContext, config: dict[str, Any]) -> tuple[str, str]:
        """How the requester is known to Identity Center: the `users` mapping, else email."""
        mapped = config.get("users", {}).get(context.username)
        if mapped:
            return "UserName", mapped
        if context.email:
            return "Emails.Value", context.email
        raise ProviderError(
            f"{context.username} has no email and no entry in the profile's users mapping",
            permanent=True,
        )

    def _user_id(self, store: str, path: str, value: str) -> str:
        store_client = aws_client("identitystore")
        try:
            with aws_errors_mapped():
                return store_client.get_user_id(
                    IdentityStoreId=store,
                    AlternateIdentifier={
                        "UniqueAttribute": {"AttributePath": path, "AttributeValue": value}
                    },
                )["UserId"]
        except ProviderError as exc:
            raise ProviderError(
                f"no Identity Center user with {path} {value} ({exc})", permanent=True
            ) from None

    def _wait(self, sso, instance_arn: str, status: dict, what: str) -> None:
        """Poll the asynchronous creation or deletion until it succeeds."""
        describe = (
            sso.describe_account_assignment_creation_status
            if what == "creation"
            else sso.describe_account_assignment_deletion_status
        )
        key = "AccountAssignmentCreationStatus" if what == "creation" else (
            "AccountAssignmentDeletionStatus"
        )  # fmt: skip
        argument = (
            "AccountAssignmentCreationRequestId"
            if what == "creation"
            else "AccountAssignmentDeletionRequestId"
        )
        deadline = time.monotonic() + POLL_SECONDS
        while status.get("Status") == "IN_PROGRESS":
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"the assignment's {what} was still in progress after {POLL_SECONDS:.0f} s",
                    permanent=what == "deletion",  # a stuck deletion alerts; the sweeper retries
                )
            time.sleep(POLL_EVERY)
            with aws_errors_mapped():
                status = describe(InstanceArn=instance_arn, **{argument: status["RequestId"]})[key]
        if status.get("Status") != "SUCCEEDED":
            raise ProviderError(
                f"the assignment's {what} failed: {status.get('FailureReason', 'no reason given')}",
                permanent=True,
            )


def _iso_duration(text: str) -> timedelta:
    """PT1H, PT12H30M, PT900S (the forms SessionDuration takes)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", text or "")
    if not match:
        return timedelta(hours=12)  # unknown: assume the longest AWS allows
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)
