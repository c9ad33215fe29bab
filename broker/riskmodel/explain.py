"""The model's reasons in words an approver reads in two seconds."""

from collections import Counter

from broker.riskmodel.baseline import OWN_HISTORY_FROM, Model, Reason, Score
from broker.riskmodel.features import Observation
from lib.durations import format_duration

# An hour counts as one the person asks in when it holds this share of their requests.
USUAL_HOUR_SHARE = 0.05


def explain(model: Model, observation: Observation, who: str, score: Score) -> str:
    """E.g. "unusual for alice (97/100): 03:10 (usually 09:00-18:00); from 203.0.113.0/24
    (never seen)". A person with little history is described by their peers."""
    if model.own_history(observation.user) >= OWN_HISTORY_FROM:
        subject = who
    else:
        subject = f"{_peers(observation)} ({who} is new)"
    phrases = [_phrase(model, observation, who, reason) for reason in score.reasons]
    return f"unusual for {subject} ({score.score}/100): " + "; ".join(phrases)


def _peers(observation: Observation) -> str:
    return ", ".join(observation.groups) or "everyone"


def _mode(counts: Counter) -> str:
    return counts.most_common(1)[0][0] if counts else "nothing yet"


def _phrase(model: Model, observation: Observation, who: str, reason: Reason) -> str:
    habit = model.counts_for(observation.user, observation.groups, reason.feature)
    local = observation.local_time
    match reason.feature:
        case "hour":
            total = sum(habit.values()) or 1
            hours = sorted(int(h) for h, n in habit.items() if n / total >= USUAL_HOUR_SHARE)
            usual = f" (usually {hours[0]:02d}:00-{hours[-1] + 1:02d}:00)" if hours else ""
            return f"{local:%H:%M}{usual}"
        case "day":
            return f"on a {local:%A} (usually {_mode(habit)}s)"
        case "network" if reason.value == "none":
            return "no client address"
        case "network":
            return f"from {reason.value} ({'rare' if habit[reason.value] else 'never seen'})"
        case "channel":
            return f"via {reason.value} (usually {_mode(habit)})"
        case "duration":
            return f"{format_duration(observation.duration)} (usually {_mode(habit)})"
        case "profile" if not model.peers_saw(observation.groups, "profile", reason.value):
            return f"first time anyone in {_peers(observation)} asked for {reason.value}"
        case "profile" if not habit[reason.value]:
            return f"first time for {who}: {reason.value}"
        case "profile":
            return f"rarely asks for {reason.value}"
        case "sequence" if observation.previous_profile == observation.profile:
            return f"{observation.profile} again, right after one"
        case "sequence" if observation.previous_profile:
            # Not which profile: the reader may not be allowed to see that request.
            return f"an unusual order: {observation.profile} right after another profile"
        case "sequence":
            return f"{observation.profile} as a first request"
        case "frequency":
            return f"{reason.value} other request(s) in 24 h (usually {_mode(habit)})"
        case "ticket" if reason.value == "none":
            return f"no ticket (usually {_mode(habit)})"
        case _:  # ticket
            return f"a {reason.value} ticket (usually {_mode(habit)})"
