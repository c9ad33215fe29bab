"""The risk of a request: a score and the reasons behind it.

`assess` is a pure function of `Facts` and the catalog's weights, so it is
deterministic and testable on its own; `facts_for` gathers the facts from what
Airlock holds (past requests, decisions, the audit trail).
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from statistics import median_low

from django.db.models import Count, Q

from accounts.selectors import user_zone
from audit.actions import Action
from audit.models import AuditEvent
from broker.catalog.spec import BusinessHours, RiskSpec
from broker.models import AccessProfile, AccessRequest, CatalogState, Grant
from broker.riskmodel import store as riskmodel
from broker.riskmodel.features import network_of
from broker.riskmodel.store import Unusual
from lib.durations import format_duration

DEFAULT_WEIGHTS = {
    "sensitivity": 1,  # points per point of the profile's declared sensitivity (0-50)
    "first_time": 20,  # the user never held this profile (no grant of it became active)
    "long_duration": 15,  # over twice the user's usual duration (or the profile's default)
    "off_hours": 10,  # outside business hours in the requester's time zone
    "burst": 15,  # three or more requests by the user in the last hour
    "recent_denial": 20,  # a request of theirs was denied in the last 7 days
    # from an address or device where the user has not passed MFA in 30 days, or with no
    # address at all
    "new_address": 10,
    "several_sensitive": 15,  # other sensitive profiles pending or live at the same time
    # at the learned model's score 100; nothing below the catalog's `unusual_from`
    "unusual": 30,
}
BURST_WINDOW, BURST_COUNT = timedelta(hours=1), 3
DENIAL_WINDOW = timedelta(days=7)
ADDRESS_MEMORY = timedelta(days=30)
# "Usual duration" is the median time the last grants were held: recent habit, and
# a query that reads a handful of rows however long the person's history is.
USUAL_OVER = 20


@dataclass(frozen=True)
class Facts:
    profile: str
    sensitivity: int
    duration: timedelta
    # The median time the user held this profile, over grants that became active,
    # if any: a request cancelled or refused is no history, and a grant given back
    # early counts for the time it was held (either would let a throwaway request
    # make the next long one look usual).
    usual_duration: timedelta | None
    default_duration: timedelta
    first_time: bool  # no grant of this profile ever became active for the user
    local_time: datetime  # when asked, in the requester's time zone
    recent_requests: int  # by the user in the last hour, this one excluded
    recent_denials: int
    new_address: bool
    other_sensitive: tuple[str, ...] = ()
    # The channel gave no client address (Slack): unknown, so never lower than unseen.
    no_address_from: str = ""
    # What the learned model said (broker/riskmodel); None until a model is trained.
    unusual: Unusual | None = None


@dataclass(frozen=True)
class Factor:
    name: str
    points: int
    why: str


@dataclass
class Assessment:
    score: int
    factors: list[Factor] = field(default_factory=list)
    unusual: int | None = None  # the learned model's 0-100, when one is trained

    def reasons(self) -> str:
        return "; ".join(f.why for f in self.factors) or "no risk factors"

    def as_json(self) -> list[dict]:
        return [asdict(f) for f in self.factors]


def in_business_hours(moment: datetime, hours: BusinessHours) -> bool:
    return moment.weekday() in hours.days and hours.start <= moment.hour < hours.end


def assess(facts: Facts, spec: RiskSpec) -> Assessment:
    weights = {**DEFAULT_WEIGHTS, **spec.weights}
    factors: list[Factor] = []

    def add(name: str, points: int, why: str) -> None:
        if points > 0:
            factors.append(Factor(name, points, why))

    add("sensitivity", weights["sensitivity"] * facts.sensitivity,
        f"{facts.profile} is sensitive ({facts.sensitivity}/50)")  # fmt: skip
    if facts.first_time:
        add("first_time", weights["first_time"], f"first time for {facts.profile}")
    usual = facts.usual_duration or facts.default_duration
    if usual and facts.duration > 2 * usual:
        times = facts.duration / usual
        basis = "usual" if facts.usual_duration else "default"
        add("long_duration", weights["long_duration"],
            f"{times:.0f}x {basis} duration ({format_duration(usual)})")  # fmt: skip
    if not in_business_hours(facts.local_time, spec.business_hours):
        add("off_hours", weights["off_hours"],
            f"off-hours ({facts.local_time:%a %H:%M} {facts.local_time.tzname()})")  # fmt: skip
    if facts.recent_requests + 1 >= BURST_COUNT:
        add("burst", weights["burst"],
            f"{facts.recent_requests + 1} requests within an hour")  # fmt: skip
    if facts.recent_denials:
        add("recent_denial", weights["recent_denial"],
            f"{facts.recent_denials} denial(s) in the last 7 days")  # fmt: skip
    if facts.no_address_from:
        add("new_address", weights["new_address"],
            f"no client address ({facts.no_address_from}): counted as not seen before")  # fmt: skip
    elif facts.new_address:
        add("new_address", weights["new_address"], "from an address or device not seen before")
    if facts.unusual and facts.unusual.score > spec.unusual_from:
        share = (facts.unusual.score - spec.unusual_from) / (100 - spec.unusual_from)
        add("unusual", round(weights["unusual"] * share), facts.unusual.why)
    if facts.other_sensitive:
        add("several_sensitive", weights["several_sensitive"],
            f"also holds or asks for {', '.join(facts.other_sensitive)}")  # fmt: skip
    return Assessment(
        score=sum(f.points for f in factors),
        factors=factors,
        unusual=facts.unusual.score if facts.unusual else None,
    )


def risk_spec() -> RiskSpec:
    state = CatalogState.objects.first()
    return RiskSpec.model_validate(state.risk) if state and state.risk else RiskSpec()


def usual_duration(held: list[timedelta]) -> timedelta | None:
    return median_low(held) if held else None


def facts_for(
    *, user, profile: AccessProfile, duration: timedelta, source: str, ip: str | None,
    now: datetime, spec: RiskSpec, user_agent: str = "", ticket: str = "",
) -> Facts:  # fmt: skip
    mine = AccessRequest.objects.filter(requester=user)
    # Only access that was really held lowers the risk ("first time", "usual
    # duration"); anything asked for raises it (bursts, denials).
    held = [
        min(asked, ended - activated) if ended else asked
        for asked, activated, ended in mine.filter(
            profile=profile, grant__activated_at__isnull=False
        )
        .order_by("-created_at")
        .values_list("duration", "grant__activated_at", "grant__ended_at")[:USUAL_OVER]
    ]
    history = mine.aggregate(
        recent=Count("pk", filter=Q(created_at__gte=now - BURST_WINDOW)),
        denials=Count(
            "pk",
            filter=Q(status=AccessRequest.Status.DENIED, decided_at__gte=now - DENIAL_WINDOW),
        ),
    )
    # Asked of the stored spec (the catalog stores every field, defaults too):
    # validating every profile's definition cost each submission as many parses.
    sensitive_profiles = list(
        AccessProfile.objects.filter(enabled=True, spec__sensitivity__gte=spec.sensitive_from)
        .exclude(pk=profile.pk)
        .values_list("slug", flat=True)
    )
    live = set(
        Grant.objects.filter(
            request__requester=user,
            request__profile__slug__in=sensitive_profiles,
            status__in=[Grant.Status.SCHEDULED, Grant.Status.ACTIVE],
        ).values_list("request__profile__slug", flat=True)
    ) | set(
        mine.filter(
            profile__slug__in=sensitive_profiles, status=AccessRequest.Status.PENDING
        ).values_list("profile__slug", flat=True)
    )
    new_address, no_address_from = False, ""
    if not ip:
        no_address_from = source
    else:
        # Known: where the person passed MFA. Signing in or asking proves only a
        # password or a token, which is all an attacker at a new address has: had
        # those counted, the sign-in (or a throwaway request) made its address known.
        verified = AuditEvent.objects.filter(
            actor_id=user.pk, action=Action.MFA_VERIFIED, created_at__gte=now - ADDRESS_MEMORY
        )
        new_address = not verified.filter(ip=ip).exists() or bool(
            user_agent and not verified.filter(user_agent=user_agent[:300]).exists()
        )
    local_time = now.astimezone(user_zone(user))
    observation = riskmodel.observation_for(
        user=user,
        profile=profile.slug,
        duration=duration,
        channel=source,
        network=network_of(ip),
        ticket=ticket,
        local_time=local_time,
        now=now,
    )
    return Facts(
        profile=profile.slug,
        sensitivity=profile.definition.sensitivity,
        duration=duration,
        usual_duration=usual_duration(held),
        default_duration=profile.definition.duration_default,
        first_time=not held,
        local_time=local_time,
        recent_requests=history["recent"],
        recent_denials=history["denials"],
        new_address=new_address,
        other_sensitive=tuple(sorted(live)),
        no_address_from=no_address_from,
        unusual=riskmodel.assess_unusual(observation, user.get_username()),
    )
