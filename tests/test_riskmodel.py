"""The model of usual access on its own: what it learns, how it scores, what it
says, and that the same history gives the same model."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from broker.riskmodel.baseline import train
from broker.riskmodel.explain import explain
from broker.riskmodel.features import Observation, network_of, ticket_kind, values_of
from broker.riskmodel.synthetic import generate

LONDON = ZoneInfo("Europe/London")


def asked(user="alice", *, hour=10, day=1, profile="payments-read", network="198.51.100.0/24",
          groups=("payments",), duration=timedelta(hours=1), channel="slack", previous="",
          ticket="", recent=0) -> Observation:  # fmt: skip
    return Observation(
        user=user, groups=groups, profile=profile, duration=duration, channel=channel,
        local_time=datetime(2026, 6, day, hour, 10, tzinfo=LONDON), network=network,
        ticket=ticket, previous_profile=previous, recent=recent,
    )  # fmt: skip


def office_habits() -> list[Observation]:
    """alice and bob of payments: 60 requests each, weekdays, 09:00-17:00, from the office."""
    history = []
    for person in ("alice", "bob"):
        for number in range(60):
            day = 1 + number % 5  # 2026-06-01 is a Monday
            history.append(asked(person, hour=9 + number % 8, day=day,
                                 previous="payments-read" if number else ""))  # fmt: skip
    return history


def test_the_usual_scores_low_and_the_unusual_high():
    model = train(office_habits())
    usual = model.score(asked(hour=11, previous="payments-read"))
    night = model.score(asked(hour=3, network="185.1.2.0/24", channel="api",
                              duration=timedelta(hours=8), previous="payments-read"))  # fmt: skip
    assert usual.score <= 50 and not usual.reasons
    assert night.score == 100
    assert {r.feature for r in night.reasons} <= {"hour", "network", "channel", "duration"}
    assert len(night.reasons) == 3  # the three strongest, not a list to read


def test_the_reasons_read_in_words():
    model = train(office_habits())
    night = asked(hour=3, network="185.1.2.0/24", previous="payments-read")
    text = explain(model, night, "alice", model.score(night))
    assert text.startswith("unusual for alice (100/100): ")
    assert "03:10 (usually 09:00-17:00)" in text
    assert "from 185.1.2.0/24 (never seen)" in text
    foreign = asked(profile="payments-db-write", previous="payments-read")
    assert "first time anyone in payments asked for payments-db-write" in explain(
        model, foreign, "alice", model.score(foreign)
    )


def test_a_new_user_is_judged_by_their_peers():
    model = train(office_habits())
    newcomer_usual = model.score(asked("carol", hour=11))
    newcomer_night = model.score(asked("carol", hour=3, network="185.1.2.0/24"))
    assert newcomer_usual.score < newcomer_night.score
    text = explain(model, asked("carol", hour=3), "carol", model.score(asked("carol", hour=3)))
    assert text.startswith("unusual for payments (carol is new)")


def test_varied_habits_are_not_unusual_for_who_has_them():
    # dave works any hour; a 03:10 request is his habit, not a surprise.
    history = office_habits() + [
        asked("dave", hour=h, day=1 + h % 5, groups=("sre",)) for h in range(24) for _ in range(3)
    ]
    model = train(history)
    assert not any(
        r.feature == "hour" for r in model.score(asked("dave", hour=3, groups=("sre",))).reasons
    )
    assert any(r.feature == "hour" for r in model.score(asked("alice", hour=3)).reasons)


def test_the_same_history_trains_the_same_model():
    history = [r.observation for r in generate(7).requests[:600]]
    assert json.dumps(train(history).as_json(), sort_keys=True) == json.dumps(
        train(list(history)).as_json(), sort_keys=True
    )


def test_a_synthetic_organisation_is_its_seed():
    first, again, other = generate(5), generate(5), generate(6)
    assert first.requests == again.requests
    assert first.requests != other.requests
    kinds = {r.attack for r in first.requests if r.attack}
    assert kinds == {
        "stolen_account", "lateral_hopping", "privilege_creep", "insider_bulk", "rubber_stamp"
    }  # fmt: skip
    assert all(r.at >= first.attacks_from for r in first.requests if r.attack)


def test_features_are_read_the_same_way_everywhere():
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of(None) == network_of("not an address") == ""
    assert ticket_kind("INC-4211") == ticket_kind("inc 17") == "INC"
    assert ticket_kind("") == "none" and ticket_kind("#12") == "other"
    values = values_of(asked(hour=23, day=6, duration=timedelta(minutes=45), recent=7))
    assert values["hour"] == "23" and values["day"] == "weekend"
    assert values["duration"] == "≤1h" and values["frequency"] == "5+"
    assert values["sequence"] == "- > payments-read"


def test_scores_stay_within_0_and_100():
    model = train(office_habits())
    extremes = [asked(hour=h, network=f"10.{h}.0.0/24", channel="cli") for h in range(24)]
    assert all(0 <= model.score(o).score <= 100 for o in extremes + office_habits())


def test_a_reason_never_names_another_requests_profile():
    # The reader may be allowed to see this request but not the one before it.
    model = train(office_habits())
    hop = asked(profile="payments-db-write", previous="hr-payroll-admin")
    text = explain(model, hop, "alice", model.score(hop))
    assert "an unusual order: payments-db-write right after another profile" in text
    assert "hr-payroll-admin" not in text
