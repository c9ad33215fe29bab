"""Audit events written for tests of the trail itself."""

from django.db import transaction

from audit import trail


def write_events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            trail.record(action=f"test.event{i}", info=trail.SYSTEM, reason=f"r{i}")
