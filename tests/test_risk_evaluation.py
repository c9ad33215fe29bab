"""The evaluation measures the rules and the model side by side on one synthetic
organisation, the same way every time (the figures in bench/README.md)."""

from django.core.management import call_command

from broker.risk_evaluation import TUNING_SEEDS, evaluate


def test_the_model_finds_the_attacks_better_than_the_rules_alone():
    result = evaluate(TUNING_SEEDS[0])
    by = {d.method: d for d in result.methods}
    assert set(by) == {"rules", "model", "rules + model", "isolation forest"}
    assert result.attack_requests > 100 and result.normal > 500
    assert by["model"].auc >= 0.95 and by["model"].auc > by["rules"].auc
    assert by["model"].flagged[0.02] > by["rules"].flagged[0.02]
    assert by["rules + model"].attacks_flagged >= 0.8
    for kind, (found, total) in by["model"].attacks.items():
        assert total > 0 and 0 <= found <= total, kind


def test_the_same_seed_gives_the_same_figures():
    first, again = evaluate(2), evaluate(2)
    assert [(d.method, d.auc, d.flagged) for d in first.methods] == [
        (d.method, d.auc, d.flagged) for d in again.methods
    ]


def test_the_command_prints_each_method_for_each_seed(capsys):
    call_command("evaluate_risk", "--seed", "3")
    out = capsys.readouterr().out
    assert out.startswith("seed 3: trained on ")
    for method in ("rules", "model", "rules + model", "isolation forest"):
        assert f"\n  {method:<16} 0." in out
