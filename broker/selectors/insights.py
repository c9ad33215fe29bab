"""What `/insights/` shows: requests, grants, decisions, alerts and the audit
trail of a period, sliced by profile, group or channel.

Each section is a table (the page draws some as charts and each downloads as
CSV). Day-by-day figures come from the daily roll-up (broker/rollup.py), with
today and any day not rolled up yet computed from the raw rows; the top lists,
anomalies and open reviews are read directly. The number of queries is the
same whatever the number of rows. Days are UTC days.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, QuerySet
from django.http import QueryDict

from audit.models import Source
from broker.models import (
    AccessProfile,
    AccessRequest,
    Alert,
    BreakGlassReview,
    InsightsDay,
    InsightsRolledDay,
)
from broker.policy.principals import principal_matches_names
from broker.rollup import (
    EVERYONE,
    OUTCOMES,
    DayFigures,
    Key,
    bucket_percentile,
    day_figures,
    midnight,
)
from lib.text import has_control_characters

PERIODS = (7, 30, 90)
CHANNELS = (Source.WEB, Source.SLACK, Source.API, Source.CLI)
TOP = 10
HOUR = timedelta(hours=1)
FAILURES = "revocation failures"
BUCKETED = "Percentiles are read from histogram buckets: each is the upper bound of its bucket."


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
        return midnight(first)

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
    if any(has_control_characters(value) or len(value) > 150 for value in (profile, group)):
        raise FilterError(
            "a profile or group name holds at most 150 characters and no control character"
        )
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
    stacked or "" for a table alone; the first column labels the rows, and
    `plotted` names the columns drawn, all the others unless it says)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    chart: str = ""
    note: str = ""
    plotted: list[str] = field(default_factory=list)

    def chart_data(self) -> dict:
        drawn = self.plotted or self.columns[1:]
        return {
            "type": self.chart,
            "labels": [str(row[0]) for row in self.rows],
            "series": [
                {"name": column, "values": [row[self.columns.index(column)] for row in self.rows]}
                for column in drawn
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
    figures = _figures(piece)
    by_day: dict[date, DayFigures] = defaultdict(DayFigures)
    for (day, _, _, _), found in figures.items():
        by_day[day].add(found)
    standing = _standing_hours(piece)
    slugs = dict(AccessProfile.objects.values_list("id", "slug"))
    held = {day: by_day[day].held_seconds / HOUR.total_seconds() for day in piece.dates}
    privilege = Table(
        "privilege",
        "Elevated access held per day, beside standing access to the same profiles",
        ["day", "hours held", "standing hours"],
        [[day, round(held[day], 1), standing] for day in piece.dates],
        chart="line",
        note="Standing: every person eligible today, 24 hours a day, whatever the channel.",
    )
    requests = _sliced(
        AccessRequest.objects.filter(created_at__gte=piece.start, created_at__lte=piece.now),
        piece,
    )
    tables = [
        privilege,
        _outcomes(by_day, piece),
        _approval_latency(figures, slugs),
        _revocation_lag(by_day, piece),
        _provider_errors(figures, piece),
        _anomalies(piece),
        _top_requesters(requests),
        _top_profiles(figures, slugs),
        _open_reviews(piece),
    ]
    return Insights(
        tables={table.name: table for table in tables},
        held_hours=round(sum(held.values()), 1),
        standing_hours=standing * piece.days,
    )


def _figures(piece: Slice) -> dict[Key, DayFigures]:
    """The slice's figures of each day: rolled up where the day is, computed
    from the raw rows for the others (today, and any day not rolled yet)."""
    team, first = piece.group or EVERYONE, piece.dates[0]
    rolled = set(InsightsRolledDay.objects.filter(day__gte=first).values_list("day", flat=True))
    rows = InsightsDay.objects.filter(day__gte=first, day__in=rolled, team=team)
    profile_id = None
    if piece.profile:
        profile_id = AccessProfile.objects.get(slug=piece.profile).pk
        rows = rows.filter(profile_id=profile_id)
    if piece.channel:
        rows = rows.filter(source=piece.channel)
    figures = {
        (row.day, row.profile_id, row.source, row.team): DayFigures.of_row(row) for row in rows
    }
    live = [day for day in piece.dates if day not in rolled]
    if live:
        for key, found in day_figures(live[0], live[-1], piece.now).items():
            day, profile, source, of_team = key
            if (
                day in live
                and of_team == team
                and (profile_id is None or profile == profile_id)
                and (not piece.channel or source == piece.channel)
            ):
                figures[key] = found
    return figures


def _sliced(rows: QuerySet, piece: Slice, path: str = "") -> QuerySet:
    """`rows` (requests, or what reaches them through `path`) narrowed to the slice."""
    if piece.profile:
        rows = rows.filter(**{f"{path}profile__slug": piece.profile})
    if piece.group:
        rows = rows.filter(**{f"{path}requester__in": _members(piece.group)})
    if piece.channel:
        rows = rows.filter(**{f"{path}source": piece.channel})
    return rows


def _members(group: str) -> QuerySet:
    """The group's people, as a subquery by id: filtering a query of users on the
    group itself would leave each of them that group alone in their groups."""
    return get_user_model().objects.filter(pk__in=Group.objects.filter(name=group).values("user"))


def _standing_hours(piece: Slice) -> int:
    """Hours a day that standing access would give: 24 for each person eligible
    for each profile in the slice, by today's catalog and groups."""
    people: dict[str, set[str]] = {}
    users = get_user_model().objects.filter(is_active=True)
    if piece.group:
        users = users.filter(pk__in=_members(piece.group))
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


def _outcomes(by_day: dict[date, DayFigures], piece: Slice) -> Table:
    return Table(
        "outcomes",
        "Requests per day by outcome",
        ["day", *OUTCOMES],
        [[day, *(by_day[day].outcomes[outcome] for outcome in OUTCOMES)] for day in piece.dates],
        chart="stacked",
    )


def _approval_latency(figures: dict[Key, DayFigures], slugs: dict[int, str]) -> Table:
    """From submission to the decision, for requests a person decided."""
    waits: dict[str, Counter] = defaultdict(Counter)
    for (_, profile_id, _, _), found in figures.items():
        waits[slugs[profile_id]].update(found.latency)
    rows = [
        [slug, bucket_percentile(w, 0.5), bucket_percentile(w, 0.95), sum(w.values())]
        for slug, w in sorted(waits.items())
        if w
    ]
    return Table(
        "approval-latency",
        "Approval latency per profile (minutes)",
        ["profile", "p50", "p95", "decisions"],
        rows,
        chart="bar",
        note=BUCKETED,
        plotted=["p50", "p95"],
    )


def _revocation_lag(by_day: dict[date, DayFigures], piece: Slice) -> Table:
    """Seconds from the end's due time (expiry) or its asking (a revoke, in the
    audit trail) to the access dead at its source, per day it ended."""
    rows = []
    for day in piece.dates:
        lag = by_day[day].lag
        if not lag:  # nothing ended: no figure, not a lag of 0 (the chart leaves a gap)
            rows.append([day, None, None, None, 0])
            continue
        p50, p95 = bucket_percentile(lag, 0.5), bucket_percentile(lag, 0.95)
        rows.append([day, p50, p95, round(by_day[day].lag_max, 1), sum(lag.values())])
    return Table(
        "revocation-lag",
        "Seconds from expiry or revoke to dead at the source",
        ["day", "p50", "p95", "max", "ended"],
        rows,
        chart="line",
        note=BUCKETED + " The maximum is exact.",
        plotted=["p50", "p95", "max"],
    )


def _provider_errors(figures: dict[Key, DayFigures], piece: Slice) -> Table:
    """Failed and retried calls to each source per day (from the audit trail):
    the providers' health over time. Revocation failures are the last column."""
    kinds = dict(AccessProfile.objects.values_list("id", "provider_kind"))
    errors: dict[date, Counter] = defaultdict(Counter)
    for (day, profile_id, _, _), found in figures.items():
        if found.provider_errors:
            errors[day][kinds[profile_id]] += found.provider_errors
            errors[day][FAILURES] += found.revocation_failures
    providers = sorted({kind for counts in errors.values() for kind in counts} - {FAILURES})
    columns = [*providers, FAILURES]
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
        usernames = _members(piece.group).values_list("username", flat=True)
        alerts = alerts.filter(subjects__user__in=list(usernames))
    counts = alerts.values_list("kind").annotate(n=Count("id")).order_by("kind")
    return Table(
        "anomalies",
        "Anomalies by kind",
        ["kind", "alerts"],
        list(map(list, counts)),
        chart="bar",
        note="An alert names a person and a profile, not a channel: the channel filter does not"
        " apply.",
    )


def _top_requesters(requests: QuerySet) -> Table:
    counts = requests.values_list("requester__username").annotate(n=Count("pk"))
    rows = list(map(list, counts.order_by("-n", "requester__username")[:TOP]))
    return Table("top-requesters", "Top requesters", ["requester", "requests"], rows, chart="bar")


def _top_profiles(figures: dict[Key, DayFigures], slugs: dict[int, str]) -> Table:
    asked: Counter = Counter()
    for (_, profile_id, _, _), found in figures.items():
        asked[slugs[profile_id]] += sum(found.outcomes.values())
    rows = [[slug, n] for slug, n in sorted(asked.items(), key=lambda item: (-item[1], item[0]))]
    rows = [row for row in rows if row[1]][:TOP]
    return Table("top-profiles", "Most requested profiles", ["profile", "requests"], rows, "bar")


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
