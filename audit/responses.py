"""An export as an HTTP answer, for the auditors' page and the API alike."""

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from audit import trail
from audit.actions import Action
from audit.anchors import anchor_after_commit
from audit.export import FORMATS, export_records
from audit.models import Source
from audit.trail import request_info


def export_response(
    request: HttpRequest,
    events: QuerySet,
    filters: dict[str, str],
    export_format: str,
    source: str = Source.WEB,
) -> StreamingHttpResponse:
    """Record the export, then stream it (the web page and the API)."""
    with transaction.atomic():
        trail.record(
            action=Action.AUDIT_EXPORTED,
            info=request_info(request, source=source),
            actor=request.user,
            data={"format": export_format, "filters": {k: v for k, v in filters.items() if v}},
        )
        anchor_after_commit()
    rows, content_type, extension = FORMATS[export_format]
    response = StreamingHttpResponse(rows(export_records(events)), content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="airlock-audit-{stamp}.{extension}"'
    return response
