from django.conf import settings
from slack_sdk import WebClient


def slack_client() -> WebClient:
    return WebClient(token=settings.SLACK_BOT_TOKEN, base_url=settings.SLACK_API_URL, timeout=10)
