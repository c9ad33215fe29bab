"""The model of usual access in the database: trained from the requests, versioned,
loaded once per process and version, and asked about a new request."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from accounts.selectors import user_zone
from audit import trail
from audit.actions import Action
from broker.models import AccessRequest, Approval, RiskLabel, RiskModel
from broker.riskmodel.baseline import Model, train
from broker.riskmodel.explain import explain
from broker.riskmodel.features import FREQUENT, Observation

TRAINING_DAYS = 90
RECENT = timedelta(days=1)
# What the model learns as usual: access a person approved (after MFA) that became
# live, unless someone marked it unusual. Not the policy's auto-approvals (the model
# would teach itself), not break-glass (no approver), and not a grant that someone
# else ended early (a revocation, a lock, lost standing): see `_ended_normally`.
_LEARNT_FROM = (
    Q(grant__activated_at__isnull=False, break_glass=False)
    & Q(decisions__decision=Approval.Decision.APPROVE)
    & ~Q(labels__label=RiskLabel.Label.UNUSUAL)
)

# The model in use, decoded: keyed by version and history, as a version number
# alone may come back (a test database, a restored backup).
_loaded: dict[tuple[int, str], Model] = {}


@dataclass(frozen=True)
class Unusual:
    """What the model said of one request."""

    version: int
    score: int  # 0-100
    why: str


def groups_of(user) -> tuple[str, ...]:
    return tuple(sorted(user.groups.values_list("name", flat=True)))


def observation_for(
    *, user, profile: str, duration: timedelta, channel: str, network: str, ticket: str,
    local_time: datetime, now: datetime,
) -> Observation:  # fmt: skip
    # One query for both: the previous request, and the last 24 hours' count, which
    # the model reads only up to FREQUENT ("5+").
    latest = list(
        AccessRequest.objects.filter(requester=user, created_at__lt=now)
        .order_by("-created_at")
        .values_list("profile__slug", "created_at")[:FREQUENT]
    )
    return Observation(
        user=str(user.pk),
        groups=groups_of(user),
        profile=profile,
        local_time=local_time,
        duration=duration,
        channel=channel,
        network=network,
        ticket=ticket,
        previous_profile=latest[0][0] if latest else "",
        recent=sum(1 for _, at in latest if at >= now - RECENT),
    )


def current_model() -> tuple[int, Model] | None:
    """The latest version, decoded once per process (the params are read only when
    the version is new to this process)."""
    newest = RiskModel.objects.order_by("-pk").values_list("pk", "history_sha256", "observations")
    latest = newest.first()
    if latest is None or latest[2] == 0:
        return None  # none trained, or the last one retired: nobody is "usual"
    latest = latest[:2]
    if latest not in _loaded:
        params = RiskModel.objects.values_list("params", flat=True).get(pk=latest[0])
        _loaded.clear()
        _loaded[latest] = Model.from_json(params)
    return latest[0], _loaded[latest]


def assess_unusual(observation: Observation, who: str) -> Unusual | None:
    current = current_model()
    if current is None:
        return None
    version, model = current
    scored = model.score(observation)
    why = explain(model, observation, who, scored) if scored.reasons else ""
    return Unusual(version=version, score=scored.score, why=why)


def history(*, since: datetime, until: datetime) -> list[Observation]:
    """The requests asked in [since, until) that the model learns from, each as it
    looked when asked (the person's previous request and their last 24 hours count
    whatever became of them)."""
    rows = (
        AccessRequest.objects.filter(created_at__gte=since - RECENT, created_at__lt=until)
        .order_by("requester_id", "created_at", "pk")
        .values_list(
            "pk",
            "requester_id",
            "profile__slug",
            "created_at",
            "duration",
            "source",
            "network",
            "ticket",
        )
    )
    learnt = {
        pk
        for pk, end_reason, requester in AccessRequest.objects.filter(
            _LEARNT_FROM, created_at__gte=since, created_at__lt=until
        )
        .values_list("pk", "grant__end_reason", "requester__username")
        .distinct()
        if _ended_normally(end_reason, requester)
    }
    people = {
        user.pk: user
        for user in get_user_model()
        .objects.filter(pk__in={row[1] for row in rows})
        .select_related("preferences")
        .prefetch_related("groups")
    }
    observations = []
    for requester_id, requests in groupby(rows, key=lambda row: row[1]):
        user = people[requester_id]
        zone, groups = user_zone(user), tuple(sorted(g.name for g in user.groups.all()))
        previous: str | None = None
        asked: list[datetime] = []
        for pk, _, profile, created_at, duration, source, network, ticket in requests:
            if previous is None:
                previous = _before(requester_id, created_at)
            asked = [at for at in asked if created_at - at < RECENT]
            if pk in learnt:
                observations.append(
                    Observation(
                        user=str(requester_id),
                        groups=groups,
                        profile=profile,
                        local_time=created_at.astimezone(zone),
                        duration=duration,
                        channel=source,
                        network=network,
                        ticket=ticket,
                        previous_profile=previous,
                        recent=len(asked),
                    )
                )
            asked.append(created_at)
            previous = profile
    observations.sort(key=lambda o: (o.local_time, o.user))
    return observations


def _ended_normally(end_reason: str, requester: str) -> bool:
    """Still live, expired, or given back by its owner."""
    return end_reason in ("", "expired", f"revoked by {requester}", f"relinquished by {requester}")


def _before(requester_id: int, moment: datetime) -> str:
    earlier = AccessRequest.objects.filter(requester_id=requester_id, created_at__lt=moment)
    return earlier.order_by("-created_at").values_list("profile__slug", flat=True).first() or ""


def history_digest(observations: list[Observation]) -> str:
    digest = hashlib.sha256()
    for o in observations:
        digest.update(repr(o).encode())
    return digest.hexdigest()


def retrain(now: datetime) -> RiskModel | None:
    """A new version from the last TRAINING_DAYS; none while there is no history, and
    none when the history is what the latest version learnt from."""
    observations = history(since=now - timedelta(days=TRAINING_DAYS), until=now)
    latest = RiskModel.objects.order_by("-pk").only("history_sha256", "observations").first()
    if not observations and (latest is None or latest.observations == 0):
        return None
    # Nothing left to learn from (all of it marked unusual, or older than 90 days): a
    # version of nothing retires the last one, which must not keep judging.
    digest = history_digest(observations)
    if latest is not None and latest.history_sha256 == digest:
        return latest
    with transaction.atomic():
        model = RiskModel.objects.create(
            trained_at=now,
            observations=len(observations),
            history_sha256=digest,
            params=train(observations).as_json(),
        )
        trail.record(
            action=Action.RISK_MODEL_TRAINED,
            info=trail.SYSTEM,
            target=model,
            data={"version": model.pk, "observations": len(observations), "history_sha256": digest},
        )
    return model
