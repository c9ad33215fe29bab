"""The day-by-day figures of /insights/, from requests, grants and the audit
trail, and their daily roll-up into InsightsDay.

`day_figures` computes days from the raw rows; `roll_up` stores closed days so
that a page over 90 days reads a few hundred rolled rows instead of every
grant. Days still moving are recomputed at each roll-up (a request decided, a
grant ended after the day was first rolled): the last RECOMPUTE_DAYS, and any
day of the last HISTORY_DAYS not rolled yet. Today is never rolled: the page
computes it live. This is a read model: it writes no audit event.
"""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q

from audit.actions import Action
from audit.models import AuditEvent
from broker.models import AccessRequest, Approval, Grant, InsightsDay, InsightsRolledDay

RECOMPUTE_DAYS = 7
HISTORY_DAYS = 90
OUTCOMES = ("approved", "auto_approved", "break_glass", "denied", "expired", "cancelled", "pending")
# Upper bounds of the histogram buckets: minutes to a decision, seconds to dead
# at the source. What is above the last counts in the last.
LATENCY_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 240, 480, 1440, 10080)
LAG_BUCKETS = (0.5, 1, 2, 3, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 86400)
PROVIDER_ERRORS = (
    Action.GRANT_ACTIVATION_RETRY,
    Action.GRANT_FAILED,
    Action.GRANT_REVOKE_RETRY,
    Action.GRANT_REVOKE_FAILED,
)
EVERYONE = ""
ROLL_UP_LOCK = 0x41495253  # the advisory lock's key: any number no other code uses
PERSON_DECIDED = {"approved": Approval.Decision.APPROVE, "denied": Approval.Decision.DENY}

# A slice of a day: (day, profile id, channel, team).
Key = tuple[date, int, str, str]


@dataclass
class DayFigures:
    outcomes: Counter = field(default_factory=Counter)
    held_seconds: float = 0.0
    latency: Counter = field(default_factory=Counter)
    lag: Counter = field(default_factory=Counter)
    lag_max: float = 0.0
    provider_errors: int = 0
    revocation_failures: int = 0

    def add(self, other: "DayFigures") -> None:
        self.outcomes.update(other.outcomes)
        self.held_seconds += other.held_seconds
        self.latency.update(other.latency)
        self.lag.update(other.lag)
        self.lag_max = max(self.lag_max, other.lag_max)
        self.provider_errors += other.provider_errors
        self.revocation_failures += other.revocation_failures

    def row(self, key: Key) -> InsightsDay:
        day, profile_id, source, team = key
        return InsightsDay(
            day=day,
            profile_id=profile_id,
            source=source,
            team=team,
            outcomes=dict(self.outcomes),
            held_seconds=self.held_seconds,
            latency=dict(self.latency),
            lag=dict(self.lag),
            lag_max=self.lag_max,
            provider_errors=self.provider_errors,
            revocation_failures=self.revocation_failures,
        )

    @classmethod
    def of_row(cls, row: InsightsDay) -> "DayFigures":
        return cls(
            outcomes=Counter(row.outcomes),
            held_seconds=row.held_seconds,
            latency=_bucket_counter(row.latency),
            lag=_bucket_counter(row.lag),
            lag_max=row.lag_max,
            provider_errors=row.provider_errors,
            revocation_failures=row.revocation_failures,
        )


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def bucket(value: float, bounds: tuple) -> float:
    return next((bound for bound in bounds if value <= bound), bounds[-1])


def bucket_percentile(counts: Counter, q: float) -> float:
    """The upper bound of the bucket holding the nearest-rank q-quantile (q in 0..1)."""
    rank, seen = max(1, math.ceil(q * sum(counts.values()))), 0
    for bound in sorted(counts):
        seen += counts[bound]
        if seen >= rank:
            return bound
    return 0


def _bucket_counter(stored: dict) -> Counter:
    """A histogram read back from JSON, whose keys are strings."""
    return Counter({float(bound): n for bound, n in stored.items()})


class _Days:
    """Figures of the days `first` to `last`, each counted for everyone and for
    each team (group) of the requester, by today's groups."""

    def __init__(self, first: date, last: date):
        self.first, self.last = first, last
        self.figures: dict[Key, DayFigures] = defaultdict(DayFigures)
        self.teams: dict[int, list[str]] = defaultdict(list)
        memberships = get_user_model().groups.through.objects.values_list("user_id", "group__name")
        for user_id, team in memberships:
            self.teams[user_id].append(team)

    def within(self, day: date) -> bool:
        return self.first <= day <= self.last

    def slices(self, day: date, profile_id: int, source: str, requester_id: int):
        for team in (EVERYONE, *self.teams[requester_id]):
            yield self.figures[(day, profile_id, source, team)]


def day_figures(first: date, last: date, now: datetime) -> dict[Key, DayFigures]:
    """The figures of the UTC days `first` to `last` (up to `now`), from the raw
    rows: a fixed number of queries, whatever the number of days."""
    days = _Days(first, last)
    start, end = midnight(first), min(midnight(last + timedelta(days=1)), now)
    _requests(days, start, end)
    ended = _grants(days, start, end)
    _revoke_lag(days, ended)
    _provider_errors(days, start, end)
    return dict(days.figures)


def _requests(days: _Days, start: datetime, end: datetime) -> None:
    period = {"created_at__gte": start, "created_at__lt": end}
    # Decisions read on their own: as a subquery per request, the planner reads them all.
    decisions: dict = defaultdict(set)
    for request_id, decision in Approval.objects.filter(
        **{f"request__{name}": value for name, value in period.items()}
    ).values_list("request_id", "decision"):
        decisions[request_id].add(decision)
    rows = AccessRequest.objects.filter(**period).values_list(
        "id",
        "profile_id",
        "source",
        "requester_id",
        "created_at",
        "decided_at",
        "status",
        "break_glass",
    )
    for request_id, profile_id, source, requester_id, created, decided_at, status, glass in rows:
        decided = decisions.get(request_id, set())
        outcome = _outcome(status, glass, Approval.Decision.APPROVE in decided)
        # Decided by a person: the last decision is theirs (not an expiry after a first stage).
        final = PERSON_DECIDED.get(outcome) in decided
        for figures in days.slices(created.date(), profile_id, source, requester_id):
            figures.outcomes[outcome] += 1
            if final and decided_at:
                minutes = (decided_at - created).total_seconds() / 60
                figures.latency[bucket(minutes, LATENCY_BUCKETS)] += 1


def _outcome(status: str, break_glass: bool, by_person: bool) -> str:
    if break_glass:
        return "break_glass"
    if status == AccessRequest.Status.APPROVED:
        return "approved" if by_person else "auto_approved"
    return status


def _grants(days: _Days, start: datetime, end: datetime) -> dict[str, tuple]:
    """Hours held, split at midnights, and the lag of grants ended by expiry;
    returns the grants revoked otherwise, whose lag counts from the revoke.
    A grant whose revocation failed is held still: its `ended_at` is when
    Airlock stopped trying, not when the access died."""
    still_held = Q(ended_at__isnull=True) | Q(status=Grant.Status.REVOKE_FAILED)
    grants = Grant.objects.filter(activated_at__isnull=False, activated_at__lt=end).filter(
        still_held | Q(ended_at__gt=start)
    )
    revoked = {}
    for grant in grants.values_list(
        "id",
        "status",
        "activated_at",
        "ended_at",
        "expires_at",
        "end_reason",
        "request__profile_id",
        "request__source",
        "request__requester_id",
        named=True,
    ).iterator():
        slice_of = (grant.request__profile_id, grant.request__source, grant.request__requester_id)
        dead = grant.ended_at if grant.status == Grant.Status.REVOKED else None
        moment, until = max(grant.activated_at, start), min(dead or end, end)
        while moment < until:
            next_midnight = midnight(moment.date() + timedelta(days=1))
            for figures in days.slices(moment.date(), *slice_of):
                figures.held_seconds += (min(until, next_midnight) - moment).total_seconds()
            moment = next_midnight
        if dead is None or not days.within(dead.date()):
            continue
        if grant.end_reason == "expired" and grant.expires_at:
            _add_lag(days, dead, slice_of, (dead - grant.expires_at).total_seconds())
        else:
            revoked[str(grant.id)] = (dead, slice_of)
    return revoked


def _revoke_lag(days: _Days, revoked: dict[str, tuple]) -> None:
    asked = AuditEvent.objects.filter(
        action=Action.GRANT_REVOKE_REQUESTED, target_type="grant", target_id__in=list(revoked)
    ).values_list("target_id", "created_at")
    for grant_id, asked_at in asked.iterator():
        ended, slice_of = revoked[grant_id]
        _add_lag(days, ended, slice_of, (ended - asked_at).total_seconds())


def _add_lag(days: _Days, ended: datetime, slice_of: tuple, seconds: float) -> None:
    seconds = max(0.0, seconds)
    for figures in days.slices(ended.date(), *slice_of):
        figures.lag[bucket(seconds, LAG_BUCKETS)] += 1
        figures.lag_max = max(figures.lag_max, seconds)


def _provider_errors(days: _Days, start: datetime, end: datetime) -> None:
    events = list(
        AuditEvent.objects.filter(
            action__in=PROVIDER_ERRORS, created_at__gte=start, created_at__lt=end
        ).values_list("target_id", "action", "created_at")
    )
    grants = Grant.objects.filter(id__in={grant_id for grant_id, _, _ in events})
    slices = {
        str(grant_id): rest
        for grant_id, *rest in grants.values_list(
            "id", "request__profile_id", "request__source", "request__requester_id"
        )
    }
    for grant_id, action, created_at in events:
        if grant_id in slices:
            for figures in days.slices(created_at.date(), *slices[grant_id]):
                figures.provider_errors += 1
                figures.revocation_failures += action == Action.GRANT_REVOKE_FAILED


def roll_up(now: datetime) -> int:
    """Store the days that need it, up to yesterday; returns how many were rolled.
    One roll-up at a time: a second waits for the first, then reads what it left."""
    today = now.astimezone(UTC).date()
    oldest = today - timedelta(days=HISTORY_DAYS)
    recompute_from = today - timedelta(days=RECOMPUTE_DAYS)
    with transaction.atomic():
        _one_at_a_time()
        rolled = set(
            InsightsRolledDay.objects.filter(day__gte=oldest, day__lt=recompute_from).values_list(
                "day", flat=True
            )
        )
        missing = [oldest + timedelta(days=n) for n in range(HISTORY_DAYS)]
        missing = [day for day in missing if day >= recompute_from or day not in rolled]
        figures = day_figures(missing[0], missing[-1], now) if missing else {}
        InsightsDay.objects.filter(day__in=missing).delete()
        InsightsDay.objects.bulk_create(
            (found.row(key) for key, found in figures.items() if key[0] in missing),
            batch_size=1000,
        )
        InsightsRolledDay.objects.filter(day__in=missing).delete()
        InsightsRolledDay.objects.bulk_create(
            InsightsRolledDay(day=day, rolled_at=now) for day in missing
        )
        InsightsRolledDay.objects.filter(day__lt=oldest).delete()
        InsightsDay.objects.filter(day__lt=oldest).delete()
    return len(missing)


def _one_at_a_time() -> None:
    """PostgreSQL: a lock held to the commit. SQLite's transactions already take
    the database's write lock as they begin (settings: IMMEDIATE)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLL_UP_LOCK])
