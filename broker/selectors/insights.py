"""What `/insights/` shows: requests, grants, decisions, alerts and the audit
trail of a period, sliced by profile, group or channel.

Each section is a table (the page draws some as charts and each downloads as
CSV). The number of queries is the same whatever the number of rows: counts are
grouped by day in SQL; percentiles and grant-hours split across midnights are
computed in Python over one narrow fetch each, the same on PostgreSQL and SQLite.
Days are UTC days.
"""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import QueryDict

from audit.actions import Action
from audit.models import AuditEvent, Source
from broker.models import AccessProfile, AccessRequest, Alert, Approval, BreakGlassReview, Grant
from broker.policy.principals import principal_matches_names

PERIODS = (7, 30, 90)
CHANNELS = (Source.WEB, Source.SLACK, Source.API, Source.CLI)
OUTCOMES = ("approved", "auto_approved", "break_glass", "denied", "expired", "cancelled", "pending")
PROVIDER_ERRORS = (
    Action.GRANT_ACTIVATION_RETRY,
    Action.GRANT_FAILED,
    Action.GRANT_REVOKE_RETRY,
    Action.GRANT_REVOKE_FAILED,
)
TOP = 10
HOUR = timedelta(hours=1)


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Slice:
    """The period (the last `days` UTC days up to `now`) and what it is narrowed to."""

    now: datetime
    days: int = 30
    profile: str = ""
    group: str = ""
    channel: str = ""

    @property
    def start(self) -> datetime:
        first = self.now.astimezone(UTC).date() - timedelta(days=self.days - 1)
        return datetime.combine(first, time(), tzinfo=UTC)

    @property
    def dates(self) -> list[date]:
        first = self.start.date()
        return [first + timedelta(days=n) for n in range(self.days)]

    def query(self) -> str:
        """The slice as a query string, for links to the CSV downloads."""
        query = QueryDict(mutable=True)
        query["days"] = str(self.days)
        for name in ("profile", "group", "channel"):
            if getattr(self, name):
                query[name] = getattr(self, name)
        return query.urlencode()


def parse_slice(params: QueryDict, now: datetime) -> Slice:
    """The slice a query string asks for, or FilterError naming what is wrong."""
    days = params.get("days", "30")
    if days not in {str(n) for n in PERIODS}:
        raise FilterError(f"the period is {', '.join(map(str, PERIODS))} days; not {days!r}")
    profile, group = params.get("profile", ""), params.get("group", "")
    channel = params.get("channel", "")
    if profile and not AccessProfile.objects.filter(slug=profile).exists():
        raise FilterError(f"no profile is named {profile!r}")
    if group and not Group.objects.filter(name=group).exists():
        raise FilterError(f"no group is named {group!r}")
    if channel and channel not in CHANNELS:
        raise FilterError(f"the channel is one of {', '.join(CHANNELS)}; not {channel!r}")
    return Slice(now=now, days=int(days), profile=profile, group=group, channel=channel)


@dataclass
class Table:
    """One section: its rows, and how the page draws it (`chart`: line, bar,
    stacked or "" for a table alone; the first column labels the others)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    chart: str = ""
    note: str = ""

    def chart_data(self) -> dict:
        return {
            "type": self.chart,
            "labels": [str(row[0]) for row in self.rows],
            "series": [
                {"name": column, "values": [row[n] for row in self.rows]}
                for n, column in enumerate(self.columns)
                if n > 0
            ],
        }


@dataclass
class Insights:
    tables: dict[str, Table]
    held_hours: float
    standing_hours: float

    @property
    def held_percent(self) -> float | None:
        """Elevated hours held, in percent of standing access's (None without eligibility)."""
        if not self.standing_hours:
            return None
        return round(100 * self.held_hours / self.standing_hours, 2)


def insights(piece: Slice) -> Insights:
    requests = _sliced(
        AccessRequest.objects.filter(created_at__gte=piece.start, created_at__lte=piece.now),
        piece,
    )
    held = _hours_held(piece)
    standing = _standing_hours(piece)
    privilege = Table(
        "privilege",
        "Elevated access held per day, beside standing access to the same profiles",
        ["day", "hours held", "standing hours"],
        [[day, round(held[day], 1), standing] for day in piece.dates],
        chart="line",
        note="Standing: every person eligible today, 24 hours a day.",
    )
    tables = [
        privilege,
        _outcomes(requests, piece),
        _approval_latency(requests),
        _revocation_lag(piece),
        _provider_errors(piece),
        _anomalies(piece),
        _top(requests, "requester__username", "top-requesters", "Top requesters", "requester"),
        _top(requests, "profile__slug", "top-profiles", "Most requested profiles", "profile"),
        _open_reviews(piece),
    ]
    return Insights(
        tables={table.name: table for table in tables},
        held_hours=round(sum(held.values()), 1),
        standing_hours=standing * piece.days,
    )


def _sliced(rows: QuerySet, piece: Slice, path: str = "") -> QuerySet:
    """`rows` (requests, or what reaches them through `path`) narrowed to the slice."""
    if piece.profile:
        rows = rows.filter(**{f"{path}profile__slug": piece.profile})
    if piece.group:
        members = get_user_model().objects.filter(groups__name=piece.group)
        rows = rows.filter(**{f"{path}requester__in": members})
    if piece.channel:
        rows = rows.filter(**{f"{path}source": piece.channel})
    return rows


def _hours_held(piece: Slice) -> dict[date, float]:
    """Hours of live grants per day: from activation to the end at the source
    (now, for what is not ended yet, a failed revocation included)."""
    grants = _sliced(
        Grant.objects.filter(activated_at__isnull=False, activated_at__lte=piece.now).filter(
            Q(ended_at__isnull=True) | Q(ended_at__gt=piece.start)
        ),
        piece,
        "request__",
    )
    held: dict[date, float] = defaultdict(float)
    for began, ended in grants.values_list("activated_at", "ended_at").iterator():
        moment, end = max(began, piece.start), min(ended or piece.now, piece.now)
        while moment < end:
            midnight = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=UTC)
            held[moment.date()] += (min(end, midnight) - moment) / HOUR
            moment = midnight
    return held


def _standing_hours(piece: Slice) -> int:
    """Hours a day that standing access would give: 24 for each person eligible
    for each profile in the slice, by today's catalog and groups."""
    people: dict[str, set[str]] = {}
    users = get_user_model().objects.filter(is_active=True)
    if piece.group:
        users = users.filter(groups__name=piece.group)
    for username, group in users.values_list("username", "groups__name"):
        groups = people.setdefault(username, set())
        if group:
            groups.add(group)
    profiles = AccessProfile.objects.filter(enabled=True)
    if piece.profile:
        profiles = profiles.filter(slug=piece.profile)
    eligible = sum(
        principal_matches_names(username, groups, profile.definition.requesters)
        for profile in profiles
        for username, groups in people.items()
    )
    return 24 * eligible


def _outcomes(requests: QuerySet, piece: Slice) -> Table:
    someone_approved = Exists(
        Approval.objects.filter(request=OuterRef("pk"), decision=Approval.Decision.APPROVE)
    )
    rows = (
        requests.annotate(day=TruncDate("created_at", tzinfo=UTC), by_person=someone_approved)
        .values_list("day", "status", "break_glass", "by_person")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[date, Counter] = defaultdict(Counter)
    for day, status, break_glass, by_person, n in rows:
        counts[day][_outcome(status, break_glass, by_person)] += n
    return Table(
        "outcomes",
        "Requests per day by outcome",
        ["day", *OUTCOMES],
        [[day, *(counts[day][outcome] for outcome in OUTCOMES)] for day in piece.dates],
        chart="stacked",
    )


def _outcome(status: str, break_glass: bool, by_person: bool) -> str:
    if break_glass:
        return "break_glass"
    if status == AccessRequest.Status.APPROVED:
        return "approved" if by_person else "auto_approved"
    return status


def _approval_latency(requests: QuerySet) -> Table:
    """From submission to the decision, for requests a person decided."""
    decided_by_person = Exists(Approval.objects.filter(request=OuterRef("pk")))
    waits: dict[str, list[float]] = defaultdict(list)
    rows = requests.filter(decided_at__isnull=False, break_glass=False).filter(decided_by_person)
    for slug, created, decided in rows.values_list("profile__slug", "created_at", "decided_at"):
        waits[slug].append((decided - created).total_seconds() / 60)
    return Table(
        "approval-latency",
        "Approval latency per profile (minutes)",
        ["profile", "p50", "p95", "decisions"],
        [
            [slug, round(percentile(w, 0.5), 1), round(percentile(w, 0.95), 1), len(w)]
            for slug, w in sorted(waits.items())
        ],
        chart="bar",
    )


def _revocation_lag(piece: Slice) -> Table:
    """Seconds from the end's due time (expiry) or its asking (a revoke, in the
    audit trail) to the access dead at its source, per day it ended."""
    grants = _sliced(
        Grant.objects.filter(ended_at__gte=piece.start, activated_at__isnull=False),
        piece,
        "request__",
    ).values_list("id", "expires_at", "ended_at", "end_reason")
    ended_at, lags = {}, defaultdict(list)
    for grant_id, expires_at, ended, reason in grants.iterator():
        if reason == "expired" and expires_at:
            lags[ended.date()].append((ended - expires_at).total_seconds())
        else:
            ended_at[str(grant_id)] = ended
    asked = AuditEvent.objects.filter(
        action=Action.GRANT_REVOKE_REQUESTED,
        target_type="grant",
        target_id__in=list(ended_at),
    ).values_list("target_id", "created_at")
    for grant_id, asked_at in asked:
        lags[ended_at[grant_id].date()].append((ended_at[grant_id] - asked_at).total_seconds())
    return Table(
        "revocation-lag",
        "Seconds from expiry or revoke to dead at the source",
        ["day", "p50", "p95", "max", "ended"],
        [
            [day, *_summary(lags[day]), len(lags[day])] if lags[day] else [day, 0, 0, 0, 0]
            for day in piece.dates
        ],
        chart="line",
    )


def _summary(values: list[float]) -> list[float]:
    return [round(percentile(values, 0.5), 1), round(percentile(values, 0.95), 1), max(values)]


def _provider_errors(piece: Slice) -> Table:
    """Failed and retried calls to each source per day (from the audit trail):
    the providers' health over time. Revocation failures are the last column."""
    events = AuditEvent.objects.filter(
        action__in=PROVIDER_ERRORS, target_type="grant", created_at__gte=piece.start
    ).values_list("target_id", "action", "created_at")
    events = list(events)
    kinds = dict(
        _sliced(Grant.objects.filter(id__in={e[0] for e in events}), piece, "request__")
        .values_list("id", "request__profile__provider_kind")
        .iterator()
    )
    kinds = {str(grant_id): kind for grant_id, kind in kinds.items()}
    providers = sorted(set(kinds.values()))
    errors: dict[date, Counter] = defaultdict(Counter)
    for grant_id, action, created_at in events:
        if grant_id in kinds:
            errors[created_at.date()][kinds[grant_id]] += 1
            if action == Action.GRANT_REVOKE_FAILED:
                errors[created_at.date()]["revocation failures"] += 1
    columns = [*providers, "revocation failures"]
    return Table(
        "provider-errors",
        "Failed or retried calls to each source per day",
        ["day", *columns],
        [[day, *(errors[day][column] for column in columns)] for day in piece.dates],
        chart="line",
    )


def _anomalies(piece: Slice) -> Table:
    alerts = Alert.objects.filter(created_at__gte=piece.start)
    if piece.profile:
        alerts = alerts.filter(subjects__profile=piece.profile)
    if piece.group:
        members = get_user_model().objects.filter(groups__name=piece.group)
        alerts = alerts.filter(subjects__user__in=list(members.values_list("username", flat=True)))
    counts = alerts.values_list("kind").annotate(n=Count("id")).order_by("kind")
    return Table(
        "anomalies", "Anomalies by kind", ["kind", "alerts"], list(map(list, counts)), "bar"
    )


def _top(requests: QuerySet, by: str, name: str, title: str, label: str) -> Table:
    counts = requests.values_list(by).annotate(n=Count("pk")).order_by("-n", by)[:TOP]
    return Table(name, title, [label, "requests"], list(map(list, counts)), chart="bar")


def _open_reviews(piece: Slice) -> Table:
    reviews = _sliced(
        BreakGlassReview.objects.filter(closed_at__isnull=True), piece, "request__"
    ).order_by("due_at")
    return Table(
        "open-reviews",
        "Break-glass reviews still open",
        ["request", "requester", "profile", "opened", "due", "age (hours)"],
        [
            [
                str(review.request_id),
                review.request.requester.get_username(),
                review.request.profile.slug,
                review.request.created_at,
                review.due_at,
                round((piece.now - review.request.created_at) / HOUR, 1),
            ]
            for review in reviews.select_related("request__requester", "request__profile")
        ],
    )


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
