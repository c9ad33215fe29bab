"""The access report for periodic access reviews (SOX, PCI DSS): every grant
that gave access during a time range, who approved it and how, why, and how
it ended. Streamed, so a year of grants fits in constant memory."""

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Q

from audit.actions import Action
from audit.export import Echo, csv_cell
from audit.models import AuditEvent
from broker.models import Approval, ExternalAccess, Grant

COLUMNS = [
    "grant", "request", "requester", "requester_external", "profile", "duration", "reason",
    "ticket",
    "requested_at", "approvers", "activated_at", "expires_at", "ended_at", "status",
    "ended_how", "ended_by",
]  # fmt: skip
BATCH = 500


def granted_between(since: datetime | None, until: datetime | None):
    """Grants whose access overlapped the range (activated, and not ended before it)."""
    grants = Grant.objects.filter(activated_at__isnull=False)
    if until:
        grants = grants.filter(activated_at__lte=until)
    if since:
        grants = grants.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=since))
    return grants.select_related("request__profile", "request__requester").order_by(
        "activated_at", "pk"
    )


def report_rows(since: datetime | None, until: datetime | None) -> Iterator[dict[str, Any]]:
    batch: list[Grant] = []
    for grant in granted_between(since, until).iterator(chunk_size=BATCH):
        batch.append(grant)
        if len(batch) == BATCH:
            yield from _rows(batch)
            batch = []
    yield from _rows(batch)


def _rows(grants: list[Grant]) -> Iterator[dict[str, Any]]:
    """One row per grant, with a fixed number of queries per batch."""
    if not grants:
        return
    approvals: dict[Any, list[str]] = {}
    for approval in Approval.objects.filter(
        request_id__in=[g.request_id for g in grants], decision=Approval.Decision.APPROVE
    ).select_related("approver"):
        approvals.setdefault(approval.request_id, []).append(
            f"{approval.approver.get_username()} ({approval.mfa_method or 'mfa'} "
            f"{approval.mfa_verified_at:%Y-%m-%dT%H:%M:%SZ})"
        )
    # A third party's company, for each external requester of the batch.
    companies = dict(
        ExternalAccess.objects.filter(
            user_id__in={g.request.requester_id for g in grants}
        ).values_list("user_id", "company")
    )
    revokers = dict(
        AuditEvent.objects.filter(
            action=Action.GRANT_REVOKE_REQUESTED, target_id__in=[str(g.pk) for g in grants]
        ).values_list("target_id", "actor")
    )
    for grant in grants:
        request = grant.request
        if grant.ended_at is None:
            how = grant.status
        elif grant.end_reason == "expired":
            how = "expired"
        else:
            how = f"{grant.status}: {grant.end_reason}"
        yield {
            "grant": str(grant.pk),
            "request": str(request.pk),
            "requester": request.requester.get_username(),
            "requester_external": companies.get(request.requester_id, ""),
            "profile": request.profile.slug,
            "duration": int(grant.duration.total_seconds()),
            "reason": request.reason,
            "ticket": request.ticket,
            "requested_at": _iso(request.created_at),
            "approvers": approvals.get(request.pk, []),
            "activated_at": _iso(grant.activated_at),
            "expires_at": _iso(grant.expires_at),
            "ended_at": _iso(grant.ended_at),
            "status": grant.status,
            "ended_how": how,
            "ended_by": revokers.get(str(grant.pk), ""),
        }


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def as_csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(COLUMNS)
    for row in rows:
        row = {**row, "approvers": "; ".join(row["approvers"])}
        yield writer.writerow([csv_cell(row[column]) for column in COLUMNS])


def as_json(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """A JSON array, written element by element."""
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + "\n" + json.dumps(row, sort_keys=True, ensure_ascii=False)
    yield "\n]\n"
