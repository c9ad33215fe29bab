"""The evaluation measures the rules and the model side by side on one synthetic
organisation (the figures in bench/README.md); the same seed gives the same
organisation and the same history the same model (tests/test_riskmodel.py)."""

from django.core.management import call_command

from broker import risk_evaluation
from broker.risk_evaluation import TUNING_SEEDS, evaluate


def test_the_model_finds_the_attacks_better_than_the_rules_and_the_command_says_so(
    db, capsys, monkeypatch
):
    measured = evaluate(TUNING_SEEDS[0])  # once: it takes seconds
    by = {d.method: d for d in measured.methods}
    assert set(by) == {"rules", "model", "rules + model", "isolation forest"}
    assert measured.attack_requests > 100 and measured.normal > 500
    assert by["model"].auc >= 0.95 and by["model"].auc > by["rules"].auc
    assert by["model"].flagged[0.02] > by["rules"].flagged[0.02]
    assert by["rules + model"].attacks_flagged >= 0.8
    for kind, (found, total) in by["model"].attacks.items():
        assert total > 0 and 0 <= found <= total, kind

    monkeypatch.setattr(risk_evaluation, "evaluate", lambda seed: measured)
    call_command("evaluate_risk", "--seed", str(TUNING_SEEDS[0]))
    out = capsys.readouterr().out
    assert out.startswith(f"seed {TUNING_SEEDS[0]}: trained on {measured.trained_on} requests")
    for d in measured.methods:
        assert f"\n  {d.method:<16} {d.auc:5.3f}  {d.flagged[0.01]:6.1%}" in out
