"""The witness: an S3 bucket with Object Lock in compliance mode, where Airlock
writes what it must not be able to take back (anchors of the chain's head,
archived segments of the trail). Every object is written with a compliance-mode
retention: nobody, the bucket's owner included, can delete or overwrite a version
before it ends. A bucket without Object Lock refuses such a write, so Airlock
never writes its evidence somewhere it could be erased.

Settings: AIRLOCK_WITNESS_BUCKET (empty: no witness), AIRLOCK_WITNESS_RETAIN_DAYS,
AIRLOCK_WITNESS_ENDPOINT_URL (default AWS_ENDPOINT_URL), AWS_REGION; credentials
from AIRLOCK_WITNESS_ACCESS_KEY_ID / AIRLOCK_WITNESS_SECRET_ACCESS_KEY (or
`_FILE`), else boto3's usual chain. The writer needs s3:PutObject, s3:GetObject,
s3:GetObjectVersion and s3:ListBucketVersions only.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

from lib.secrets import read_secret


class WitnessError(Exception):
    """The witness cannot be reached, or refused (e.g. a bucket without Object Lock)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    version_id: str
    body: bytes


class Witness:
    def __init__(self, bucket: str):
        self.bucket = bucket
        self.s3 = boto3.client(
            "s3",
            region_name=settings.AWS_REGION,
            endpoint_url=settings.AIRLOCK_WITNESS_ENDPOINT_URL or None,
            aws_access_key_id=read_secret("AIRLOCK_WITNESS_ACCESS_KEY_ID", required=False),
            aws_secret_access_key=read_secret("AIRLOCK_WITNESS_SECRET_ACCESS_KEY", required=False),
            config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3}),
        )

    def put(self, key: str, body: bytes, content_type: str) -> str:
        """Write `body` locked in compliance mode; its version id."""
        retain_until = timezone.now() + timedelta(days=settings.AIRLOCK_WITNESS_RETAIN_DAYS)
        try:
            answer = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
                ChecksumAlgorithm="SHA256",
            )
        except (BotoCoreError, ClientError) as exc:
            raise WitnessError(f"s3://{self.bucket}/{key}: {exc}") from None
        return answer.get("VersionId", "")

    def holds(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise WitnessError(f"s3://{self.bucket}/{key}: {exc}") from None
        except BotoCoreError as exc:
            raise WitnessError(f"s3://{self.bucket}/{key}: {exc}") from None
        return True

    def versions(self, prefix: str) -> Iterator[StoredObject]:
        """Every version of every object under `prefix`: a later version cannot hide
        an earlier one from the verifier."""
        try:
            pages = self.s3.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for version in page.get("Versions", []):
                    answer = self.s3.get_object(
                        Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                    )
                    yield StoredObject(version["Key"], version["VersionId"], answer["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise WitnessError(f"s3://{self.bucket}/{prefix}: {exc}") from None


def configured_witness() -> Witness | None:
    bucket = settings.AIRLOCK_WITNESS_BUCKET
    return Witness(bucket) if bucket else None
