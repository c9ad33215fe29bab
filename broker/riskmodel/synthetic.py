"""A synthetic organisation's 90 days of requests, with attacks injected, to measure
the model against the rules. As in production, a request through Slack has no
client address.

Six teams in five time zones; each person keeps their own hours, profiles,
durations, channel and networks (office and home), takes a week off, and is on
call one week in eight, when incidents bring night requests with an INC ticket.
The last 30 days carry the attacks, each request labelled with its attack:

- `stolen_account`: someone else's password and token, at night, from a network
  the person never used, through a channel they rarely use, for the most
  sensitive profiles they may ask for, for long;
- `lateral_hopping`: four to six profiles of other teams within two hours, in
  working hours, from the office;
- `privilege_creep`: one step a week into another team's profiles (read, db
  read, deploy, db write) with durations that grow;
- `insider_bulk`: on their last day, eight to twelve requests across every
  profile they use and the shared ones, for hours each;
- `rubber_stamp`: a compromised approver of one team waves through what a
  colluder of another team asks for: the team's deploy and db-write, one a
  working day for three to five days, at the colluder's usual hours, network
  and channel, with a change ticket. The model scores the requests the
  approver lets through; the approvals themselves (seconds after each request)
  are what the `rubber_stamping` anomaly rule watches, not this model.

Everything comes from `random.Random(seed)`: one seed, one organisation.
"""

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from broker.riskmodel.features import Observation

TEAMS = (
    ("payments", "Europe/London"),
    ("platform", "America/New_York"),
    ("data", "Europe/Berlin"),
    ("identity", "Asia/Singapore"),
    ("mobile", "America/Los_Angeles"),
    ("sre", "Europe/London"),
)
TEAM_PROFILES = (("read", 10), ("deploy", 20), ("db-read", 25), ("db-write", 40))
SHARED_PROFILES = (("logs-read", 5), ("ssh-prod", 35), ("aws-admin", 45))
INCIDENT_PROFILES = ("deploy", "db-read", "db-write")
CHANNELS = ("slack", "web", "cli", "api")
HABIT_DURATIONS = (
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=1),
    timedelta(hours=2),
)
PEOPLE_PER_TEAM = 8
DAYS, ATTACKS_FROM_DAY = 90, 60
FIRST_DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
ATTACKS = ("stolen_account", "lateral_hopping", "privilege_creep", "insider_bulk", "rubber_stamp")


@dataclass(frozen=True)
class Person:
    name: str
    team: str
    zone: ZoneInfo
    start_hour: int
    per_day: float
    profiles: tuple[str, ...]
    weights: tuple[float, ...]
    durations: dict[str, timedelta]
    channel: str
    office: str
    home: str


@dataclass(frozen=True)
class Request:
    at: datetime  # UTC
    observation: Observation
    attack: str = ""  # one of ATTACKS, "" for normal work
    instance: str = ""  # which attack: its requests share it


@dataclass(frozen=True)
class Organisation:
    people: tuple[Person, ...]
    sensitivity: dict[str, int]
    requests: tuple[Request, ...]  # in time order

    @property
    def attacks_from(self) -> datetime:
        return FIRST_DAY + timedelta(days=ATTACKS_FROM_DAY)


def sensitivity() -> dict[str, int]:
    levels = {f"{team}-{kind}": level for team, _ in TEAMS for kind, level in TEAM_PROFILES}
    return levels | dict(SHARED_PROFILES)


def generate(seed: int) -> Organisation:
    rng = random.Random(seed)  # noqa: S311  # nosec B311 - a reproducible simulation
    people = tuple(_people(rng))
    drafts: list[tuple[datetime, Person, dict, str, str]] = []
    for person in people:
        drafts += [(at, person, fields, "", "") for at, fields in work_of(rng, person)]
    drafts += _incidents(rng, people)
    drafts += _attacks(rng, people)
    drafts.sort(key=lambda d: (d[0], d[1].name))
    requests, last_profile = [], {}
    recent: dict[str, list[datetime]] = {}
    for at, person, fields, attack, instance in drafts:
        before = [t for t in recent.get(person.name, []) if at - t < timedelta(days=1)]
        observation = Observation(
            user=person.name,
            groups=(person.team,),
            local_time=at.astimezone(person.zone),
            previous_profile=last_profile.get(person.name, ""),
            recent=len(before),
            **fields,
        )
        requests.append(Request(at, observation, attack, instance))
        last_profile[person.name] = fields["profile"]
        recent[person.name] = [*before, at]
    return Organisation(people, sensitivity(), tuple(requests))


def _people(rng: random.Random):
    for number, (team, zone) in enumerate(TEAMS):
        own = [f"{team}-{kind}" for kind, _ in TEAM_PROFILES]
        for index in range(PEOPLE_PER_TEAM):
            weights = {p: rng.gammavariate(1.0, 1.0) for p in own}
            weights["logs-read"] = rng.gammavariate(0.5, 1.0)
            if team in ("sre", "platform"):
                weights["ssh-prod"] = rng.gammavariate(0.7, 1.0)
                weights["aws-admin"] = rng.gammavariate(0.3, 1.0)
            top = max(weights.values())
            used = {p: w for p, w in weights.items() if w >= 0.15 * top}
            yield Person(
                name=f"{team}{index + 1}",
                team=team,
                zone=ZoneInfo(zone),
                start_hour=rng.choice((7, 8, 8, 9, 9, 9, 10, 10, 11)),
                per_day=rng.uniform(0.4, 1.6),
                profiles=tuple(used),
                weights=tuple(used.values()),
                durations={p: rng.choice(HABIT_DURATIONS) for p in used},
                channel=rng.choices(CHANNELS, (6, 3, 2, 1))[0],
                office=f"198.51.{number}.0/24",
                home=f"203.{rng.randrange(256)}.{rng.randrange(256)}.0/24",
            )


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _local_day(person: Person, day: int, first_day: datetime = FIRST_DAY) -> datetime:
    date = (first_day + timedelta(days=day)).date()
    return datetime(date.year, date.month, date.day, tzinfo=person.zone)


def _fields(rng: random.Random, person: Person, profile: str, at_home: bool, **overrides) -> dict:
    habit = person.durations.get(profile, timedelta(hours=1))
    duration = habit if rng.random() < 0.85 else habit * rng.choice((0.5, 2))
    ticket = (
        f"CHG-{rng.randrange(1000, 9999)}"
        if profile.endswith(("deploy", "db-write")) and rng.random() < 0.7
        else ""
    )
    fields = {
        "profile": profile,
        "duration": duration,
        "channel": person.channel if rng.random() < 0.8 else rng.choice(CHANNELS),
        "network": person.home if at_home else person.office,
        "ticket": ticket,
    } | overrides
    if fields["channel"] == "slack":
        fields["network"] = ""  # Slack gives Airlock no client address
    return fields


def work_of(rng: random.Random, person: Person, first_day: datetime = FIRST_DAY):
    """A person's ordinary requests over DAYS days from `first_day`, a week off among
    them: (when, the request's fields)."""
    holiday = rng.randrange(0, DAYS - 7)
    for day in range(DAYS):
        if holiday <= day < holiday + 7:
            continue
        start = _local_day(person, day, first_day)
        weekend = start.weekday() >= 5
        for _ in range(_poisson(rng, person.per_day * (0.05 if weekend else 1))):
            at = start + timedelta(hours=person.start_hour, minutes=rng.uniform(0, 9 * 60))
            profile = rng.choices(person.profiles, person.weights)[0]
            at_home = weekend or rng.random() < 0.3
            yield at.astimezone(UTC), _fields(rng, person, profile, at_home)


def _incidents(rng: random.Random, people: tuple[Person, ...]):
    for team, _ in TEAMS:
        members = [p for p in people if p.team == team]
        for day in range(DAYS):
            if rng.random() >= 0.2:
                continue
            on_call = members[(day // 7) % len(members)]
            when = FIRST_DAY + timedelta(days=day, minutes=rng.uniform(0, 24 * 60))
            ticket = f"INC-{rng.randrange(1000, 9999)}"
            local_hour = when.astimezone(on_call.zone).hour
            at_home = not on_call.start_hour <= local_hour < on_call.start_hour + 9
            for kind in rng.sample(INCIDENT_PROFILES, rng.choice((1, 1, 2))):
                at = when + timedelta(minutes=rng.uniform(5, 40))
                fields = _fields(
                    rng,
                    on_call,
                    f"{team}-{kind}",
                    at_home,
                    ticket=ticket,
                    duration=rng.choice((timedelta(hours=1), timedelta(hours=2))),
                    channel="slack" if rng.random() < 0.8 else on_call.channel,
                )
                yield at, on_call, fields, "", ""


def _attack_day(rng: random.Random, person: Person, hour: float) -> datetime:
    day = _local_day(person, rng.randrange(ATTACKS_FROM_DAY, DAYS))
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day + timedelta(hours=hour)


def _attacks(rng: random.Random, people: tuple[Person, ...]):
    others = {team: [p for p in sensitivity() if p.startswith(f"{team}-")] for team, _ in TEAMS}
    for number in range(10):
        victim = rng.choice(people)
        at = _attack_day(rng, victim, rng.uniform(1, 5)).astimezone(UTC)
        network = f"185.{rng.randrange(256)}.{rng.randrange(256)}.0/24"
        channel = rng.choice([c for c in ("api", "cli") if c != victim.channel] or ["api"])
        wanted = sorted(victim.profiles, key=lambda p: -sensitivity()[p])[: rng.choice((1, 2, 3))]
        for step, profile in enumerate(wanted):
            fields = {
                "profile": profile,
                "duration": timedelta(hours=8),
                "channel": channel,
                "network": network,
                "ticket": "",
            }
            yield (
                at + timedelta(minutes=3 * step),
                victim,
                fields,
                "stolen_account",
                f"stolen{number}",
            )
    for number in range(8):
        mover = rng.choice(people)
        at = _attack_day(rng, mover, mover.start_hour + rng.uniform(1, 6)).astimezone(UTC)
        foreign = [p for team, ps in others.items() if team != mover.team for p in ps]
        for step, profile in enumerate(rng.sample(foreign, rng.randint(4, 6))):
            fields = _fields(rng, mover, profile, False, duration=timedelta(hours=1), ticket="")
            yield (
                at + timedelta(minutes=20 * step),
                mover,
                fields,
                "lateral_hopping",
                f"hop{number}",
            )
    for number in range(6):
        creeper = rng.choice(people)
        target = rng.choice([team for team, _ in TEAMS if team != creeper.team])
        # Four weekly steps, all inside the attack window.
        first = _local_day(creeper, ATTACKS_FROM_DAY + rng.randrange(7))
        first += timedelta(hours=creeper.start_hour + 1)
        for step, kind in enumerate(("read", "db-read", "deploy", "db-write")):
            at = (first + timedelta(days=7 * step, hours=rng.uniform(0, 5))).astimezone(UTC)
            fields = _fields(
                rng, creeper, f"{target}-{kind}", False, duration=timedelta(hours=2**step)
            )
            yield at, creeper, fields, "privilege_creep", f"creep{number}"
    for number in range(6):
        leaver = rng.choice(people)
        at = _attack_day(rng, leaver, leaver.start_hour + 1).astimezone(UTC)
        wanted = [*leaver.profiles, *(p for p, _ in SHARED_PROFILES if p not in leaver.profiles)]
        for step in range(rng.randint(8, 12)):
            profile = wanted[step % len(wanted)]
            fields = _fields(
                rng,
                leaver,
                profile,
                False,
                duration=rng.choice((timedelta(hours=4), timedelta(hours=8))),
            )
            yield (
                at + timedelta(minutes=15 * step),
                leaver,
                fields,
                "insider_bulk",
                f"leaver{number}",
            )
    for number in range(6):
        approver_team = rng.choice([team for team, _ in TEAMS])
        colluder = rng.choice([p for p in people if p.team != approver_team])
        first = _attack_day(rng, colluder, colluder.start_hour + rng.uniform(1, 6))
        for step in range(rng.randint(3, 5)):
            kind = rng.choice(("deploy", "db-write"))
            at = (first + timedelta(days=step)).astimezone(UTC)
            ticket = f"CHG-{rng.randrange(1000, 9999)}"
            fields = _fields(
                rng,
                colluder,
                f"{approver_team}-{kind}",
                False,
                duration=timedelta(hours=2),
                ticket=ticket,
            )
            yield at, colluder, fields, "rubber_stamp", f"stamp{number}"
