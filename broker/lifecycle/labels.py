"""Approvers and the security team say whether a request was unusual or normal:
ground truth for measuring the risk score, and history the model must not learn
as usual."""

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from audit import trail
from audit.actions import Action
from broker.lifecycle.errors import InvalidRequest, NotAllowed, NotFound
from broker.models import AccessRequest, RiskLabel
from broker.policy.approvers import label_refusal


def request_label(
    *, request_id: UUID | str, labeller, label: str, info: trail.RequestInfo
) -> RiskLabel:
    """One label per person and request; labelling again replaces theirs."""
    if label not in RiskLabel.Label.values:
        raise InvalidRequest(
            "the label is unusual or normal", fields={"label": "unusual or normal"}
        )
    with transaction.atomic():
        access_request = (
            AccessRequest.objects.select_related("profile").filter(pk=request_id).first()
        )
        if access_request is None:
            raise NotFound("no such request")
        if refused := label_refusal(labeller, access_request):
            raise NotAllowed(refused)
        marked, _ = RiskLabel.objects.update_or_create(
            request=access_request,
            labelled_by=labeller,
            defaults={"label": label, "created_at": timezone.now()},
        )
        trail.record(
            action=Action.REQUEST_LABELLED,
            info=info,
            actor=labeller,
            target=access_request,
            data={
                "label": label,
                "risk_model": access_request.risk_model_id,
                "unusual": access_request.unusual_score,
            },
        )
    return marked
