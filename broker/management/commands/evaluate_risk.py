from django.core.management.base import BaseCommand, CommandError

from broker import risk_evaluation
from broker.riskmodel.synthetic import ATTACKS


class Command(BaseCommand):
    help = (
        "Measure the risk score on a synthetic organisation with injected attacks: the "
        "rules alone, the learned model, both together, and an isolation forest, side by "
        "side. With --labels, measure the scores recorded at submission against what "
        "approvers marked unusual or normal."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed", type=int, action="append",
            help=f"a synthetic organisation's seed; repeatable (default: the tuning seeds "
            f"{', '.join(map(str, risk_evaluation.TUNING_SEEDS))} and the held-out "
            f"{risk_evaluation.HELD_OUT_SEED})",
        )  # fmt: skip
        parser.add_argument("--labels", action="store_true")

    def handle(self, *args, seed=None, labels=False, **options):
        if labels:
            self._labels()
            return
        for number in seed or [*risk_evaluation.TUNING_SEEDS, risk_evaluation.HELD_OUT_SEED]:
            if number < 0:
                raise CommandError("a seed is a whole number, 0 or more")
            self._synthetic(risk_evaluation.evaluate(number))

    def _synthetic(self, result: risk_evaluation.Evaluation) -> None:
        held_out = " (held out)" if result.seed == risk_evaluation.HELD_OUT_SEED else ""
        self.stdout.write(
            f"seed {result.seed}{held_out}: trained on {result.trained_on} requests; scored "
            f"{result.normal} normal and {result.attack_requests} attack requests; the model "
            f"scores one in {result.scoring_microseconds:.0f} µs (median)"
        )
        kinds = "  ".join(f"{kind:>15}" for kind in ATTACKS)
        self.stdout.write(
            f"  {'method':<16} {'AUC':>5}  {'1% FP':>6}  {'2% FP':>6}  {'attacks':>7}  {kinds}"
        )
        for d in result.methods:
            per_kind = "  ".join(
                f"{'{}/{}'.format(*d.attacks.get(kind, (0, 0))):>15}" for kind in ATTACKS
            )
            self.stdout.write(
                f"  {d.method:<16} {d.auc:5.3f}  {d.flagged[0.01]:6.1%}  {d.flagged[0.02]:6.1%}"
                f"  {d.attacks_flagged:7.1%}  {per_kind}"
            )
        self.stdout.write(
            "  (1% FP, 2% FP: attack requests flagged when 1 % or 2 % of normal ones are; "
            "attacks: attacks with at least one request flagged at 2 %)\n"
        )

    def _labels(self) -> None:
        result = risk_evaluation.evaluate_labels()
        self.stdout.write(
            f"{result.unusual} request(s) marked unusual, {result.normal} marked normal"
        )
        if not result.methods:
            self.stdout.write("an AUC needs requests of both kinds: mark more in the queue")
        for method, auc in result.methods:
            self.stdout.write(f"  {method:<16} AUC {auc:.3f}")
