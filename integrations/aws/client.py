"""The one place Airlock builds its AWS clients and reads AWS errors.

Settings: AWS_REGION (or AWS_DEFAULT_REGION, default us-east-1),
AWS_ENDPOINT_URL (tests and the sandbox point it at moto), and Airlock's own
credentials as AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (each also as
`*_FILE`), or else the standard chain (instance profile, web identity...).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from django.conf import settings

from lib.providers import ProviderError
from lib.secrets import read_secret

TRANSIENT_CODES = {
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "ServiceUnavailable", "InternalError", "InternalFailure", "RequestTimeout",
}  # fmt: skip


def region() -> str:
    return settings.AWS_REGION


def aws_client(service: str):
    credentials = {}
    key_id = read_secret("AWS_ACCESS_KEY_ID", required=False)
    if key_id:
        credentials = {
            "aws_access_key_id": key_id,
            "aws_secret_access_key": read_secret("AWS_SECRET_ACCESS_KEY"),
        }
    return boto3.client(
        service,
        region_name=region(),
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
        config=Config(
            connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
        ),
        **credentials,
    )


@contextmanager
def aws_errors_mapped() -> Iterator[None]:
    """AWS errors as ProviderErrors: throttling and outages retry, refusals do not."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        raise ProviderError(
            f"AWS {code}: {message}"[:300], permanent=code not in TRANSIENT_CODES
        ) from None
    except NoCredentialsError:
        raise ProviderError("no AWS credentials for Airlock", permanent=True) from None
    except BotoCoreError as exc:
        raise ProviderError(f"cannot reach AWS: {type(exc).__name__}") from None
