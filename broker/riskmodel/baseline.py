"""How unusual a request is for its requester: a smoothed frequency model per feature.

For each feature (hour, profile, network...) the model counts how often each
value occurred for the person, for their peer groups and for everyone. The
probability of a value for a person leans on their own history and, where it is
thin, on their peers' (then everyone's): a new user is judged by their group.
A value's surprise is how many bits rarer it is than what the person usually
does (the mean surprise of their own requests), so a person with varied habits
is not flagged for being varied. The request's raw score is the sum over
features; the 0-100 score is its rank among the training requests, each scored
without itself (leave-one-out), so 97 means "more unusual than 97 % of what
people here asked".

Nothing is random: the same history gives the same model, to the byte.
"""

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import fmean

from broker.riskmodel.features import FEATURES, Observation, values_of

# How many of a person's own requests weigh as much as their peers' habits, and
# how many of a group's as much as everyone's.
PERSONAL_WEIGHT = 4.0
PEER_WEIGHT = 4.0
# A value eight times rarer than the person's usual is worth a reason.
REASON_FROM_BITS = 3.0
MOST_REASONS = 3
# A person with fewer requests than this is described by their peers.
OWN_HISTORY_FROM = 5


@dataclass(frozen=True)
class Reason:
    feature: str
    value: str
    bits: float  # how many bits rarer than usual


@dataclass(frozen=True)
class Score:
    raw: float
    score: int  # 0-100: the share of training requests less unusual
    reasons: tuple[Reason, ...]
    excess: tuple[float, ...]  # per feature, in FEATURES order


@dataclass
class Model:
    """Counts per feature and value: `everyone[f][v]`, `groups[g][f][v]`, `users[u][f][v]`."""

    everyone: dict[str, dict[str, int]]
    groups: dict[str, dict[str, dict[str, int]]]
    users: dict[str, dict[str, dict[str, int]]]
    # Mean surprise (bits) per feature of each person's own requests, and of each group's.
    usual_bits: dict[str, dict[str, float]]
    group_bits: dict[str, dict[str, float]]
    everyone_bits: dict[str, float]
    # The raw scores of the training requests at each percentile 0..100.
    percentiles: list[float]
    observations: int
    _totals: dict = field(default_factory=dict, repr=False, compare=False)
    # Each training request's excess bits, scored without itself (not stored).
    training_excess: list = field(default_factory=list, repr=False, compare=False)

    def as_json(self) -> dict:
        return {
            "everyone": self.everyone,
            "groups": self.groups,
            "users": self.users,
            "usual_bits": self.usual_bits,
            "group_bits": self.group_bits,
            "everyone_bits": self.everyone_bits,
            "percentiles": self.percentiles,
            "observations": self.observations,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Model":
        stored = set(cls.__dataclass_fields__) - {"_totals", "training_excess"}
        return cls(**{key: data[key] for key in stored})

    def total(self, counts: dict[str, int]) -> int:
        key = id(counts)
        if key not in self._totals:
            self._totals[key] = sum(counts.values())
        return self._totals[key]

    def probability(
        self, user: str, groups: tuple[str, ...], feature: str, value: str, *, itself: int = 0
    ) -> float:
        """P(value) for this person; `itself=1` leaves the request out of the counts
        it was trained into (leave-one-out)."""
        everyone = self.everyone.get(feature, {})
        seen = everyone.get(value, 0) - itself
        overall = (seen + 1) / (self.total(everyone) - itself + len(everyone) + 1)
        peer_count = peer_total = 0
        for group in groups:
            counts = self.groups.get(group, {}).get(feature, {})
            peer_count += counts.get(value, 0) - itself
            peer_total += self.total(counts) - itself if counts else 0
        peers = (peer_count + PEER_WEIGHT * overall) / (peer_total + PEER_WEIGHT)
        own = self.users.get(user, {}).get(feature, {})
        own_total = self.total(own) - itself if own else 0
        return (own.get(value, 0) - itself + PERSONAL_WEIGHT * peers) / (
            own_total + PERSONAL_WEIGHT
        )

    def usual(self, user: str, groups: tuple[str, ...], feature: str) -> float:
        if user in self.usual_bits:
            return self.usual_bits[user][feature]
        known = [self.group_bits[g][feature] for g in groups if g in self.group_bits]
        return fmean(known) if known else self.everyone_bits.get(feature, 0.0)

    def surprise(self, observation: Observation, *, itself: int = 0) -> list[float]:
        values = values_of(observation)
        return [
            -math.log2(
                self.probability(observation.user, observation.groups, f, values[f], itself=itself)
            )
            for f in FEATURES
        ]

    def excess(self, observation: Observation, *, itself: int = 0) -> tuple[float, ...]:
        """Per feature, how many bits rarer than the person's usual (never below 0)."""
        bits = self.surprise(observation, itself=itself)
        return tuple(
            max(0.0, b - self.usual(observation.user, observation.groups, f))
            for f, b in zip(FEATURES, bits, strict=True)
        )

    def score(self, observation: Observation) -> Score:
        excess = self.excess(observation)
        raw = sum(excess)
        values = values_of(observation)
        notable = sorted(
            (
                Reason(f, values[f], round(e, 1))
                for f, e in zip(FEATURES, excess, strict=True)
                if e >= REASON_FROM_BITS
            ),
            key=lambda r: -r.bits,
        )
        return Score(
            raw=raw,
            score=bisect_left(self.percentiles, raw) if self.percentiles else 0,
            reasons=tuple(notable[:MOST_REASONS]),
            excess=excess,
        )

    def own_history(self, user: str) -> int:
        return self.total(self.users.get(user, {}).get("profile", {}))

    def counts_for(self, user: str, groups: tuple[str, ...], feature: str) -> Counter:
        """The counts that describe the person's habit: their own, or their peers'."""
        if self.own_history(user) >= OWN_HISTORY_FROM:
            return Counter(self.users[user][feature])
        pooled: Counter = Counter()
        for group in groups:
            pooled.update(self.groups.get(group, {}).get(feature, {}))
        return pooled

    def peers_saw(self, groups: tuple[str, ...], feature: str, value: str) -> int:
        return sum(self.groups.get(g, {}).get(feature, {}).get(value, 0) for g in groups)


def _nested() -> defaultdict:
    return defaultdict(Counter)


def train(observations: list[Observation]) -> Model:
    everyone: defaultdict = _nested()
    groups: defaultdict = defaultdict(_nested)
    users: defaultdict = defaultdict(_nested)
    for observation in observations:
        for feature, value in values_of(observation).items():
            everyone[feature][value] += 1
            users[observation.user][feature][value] += 1
            for group in observation.groups:
                groups[group][feature][value] += 1
    model = Model(
        everyone=_plain(everyone),
        groups={g: _plain(c) for g, c in sorted(groups.items())},
        users={u: _plain(c) for u, c in sorted(users.items())},
        usual_bits={},
        group_bits={},
        everyone_bits={},
        percentiles=[],
        observations=len(observations),
    )
    # Each request scored as if it were new (without itself), to learn what "usual"
    # costs in bits, then what share of requests each raw score beats.
    own = [model.surprise(o, itself=1) for o in observations]
    model.usual_bits = _mean_bits(own, [(o.user,) for o in observations])
    model.group_bits = _mean_bits(own, [o.groups for o in observations])
    model.everyone_bits = _mean_bits(own, [("",) for _ in observations]).get("", {})
    model.training_excess = [
        tuple(
            max(0.0, b - model.usual(o.user, o.groups, f))
            for f, b in zip(FEATURES, bits, strict=True)
        )
        for o, bits in zip(observations, own, strict=True)
    ]
    raws = sorted(sum(row) for row in model.training_excess)
    if raws:
        # percentiles[k] is the raw score that k + 1 % of the requests do not exceed.
        model.percentiles = [
            round(raws[min(len(raws), math.ceil(p * len(raws) / 100)) - 1], 6)
            for p in range(1, 101)
        ]
    return model


def _plain(counts: defaultdict) -> dict[str, dict[str, int]]:
    return {f: dict(sorted(counts[f].items())) for f in FEATURES if f in counts}


def _mean_bits(bits: list[list[float]], keys: list[tuple[str, ...]]) -> dict[str, dict[str, float]]:
    sums: defaultdict = defaultdict(lambda: [0.0] * len(FEATURES))
    counts: Counter = Counter()
    for row, owners in zip(bits, keys, strict=True):
        for owner in owners:
            counts[owner] += 1
            sums[owner] = [a + b for a, b in zip(sums[owner], row, strict=True)]
    return {
        owner: {f: round(s / counts[owner], 6) for f, s in zip(FEATURES, sums[owner], strict=True)}
        for owner in sorted(sums)
    }
