"""`/insights/`: charts and tables over a period for the security role, auditors
and admins; anyone else gets 404, as if the page did not exist."""

import csv
from datetime import date, datetime

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from audit.export import Echo, csv_cell
from broker.models import AccessProfile
from broker.selectors.insights import (
    CHANNELS,
    PERIODS,
    FilterError,
    Table,
    insights,
    parse_slice,
)
from broker.selectors.requests import is_overseer


def _overseers_only(user) -> None:
    if not is_overseer(user):
        raise Http404("no such page")


@login_required
@require_GET
def insights_page(request: HttpRequest) -> HttpResponse:
    _overseers_only(request.user)
    context = {
        "periods": PERIODS,
        "channels": CHANNELS,
        "profiles": AccessProfile.objects.order_by("slug").values_list("slug", flat=True),
        "groups": Group.objects.order_by("name").values_list("name", flat=True),
        "filters": request.GET,
    }
    try:
        piece = parse_slice(request.GET, timezone.now())
    except FilterError as exc:
        return render(request, "broker/insights.html", {**context, "error": str(exc)}, status=400)
    found = insights(piece)
    charts = {name: table.chart_data() for name, table in found.tables.items() if table.chart}
    tables = [(table, _body(table)) for table in found.tables.values()]
    context |= {"piece": piece, "insights": found, "tables": tables, "charts": charts}
    context["query"] = piece.query()
    return render(request, "broker/insights.html", context)


@login_required
@require_GET
def insights_csv(request: HttpRequest, name: str) -> HttpResponse:
    _overseers_only(request.user)
    try:
        piece = parse_slice(request.GET, timezone.now())
    except FilterError as exc:
        return HttpResponse(f"{exc}\n", status=400, content_type="text/plain")
    table = insights(piece).tables.get(name)
    if table is None:
        raise Http404("no such table")
    response = StreamingHttpResponse(_csv_lines(table), content_type="text/csv")
    filename = f"airlock-{name}-{piece.start.date()}-{piece.days}d.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _body(table: Table) -> SafeString:
    """The table's rows as HTML, every value escaped. Built here rather than in the
    template: a 90-day page has thousands of cells, which the template language
    took more than 100 ms to render."""
    return format_html_join(
        "\n",
        '<tr><th scope="row">{}</th>{}</tr>',
        ((_row_label(table, row[0]), _cells(row[1:])) for row in table.rows),
    )


def _row_label(table: Table, value) -> str:
    if table.name == "open-reviews":  # a request's id: a link to it
        url = reverse("request-detail", kwargs={"request_id": value})
        return format_html('<a href="{}">{}</a>', url, f"{value[:12]}…")
    return _shown(value)


def _cells(values: list) -> SafeString:
    return format_html_join("", "<td>{}</td>", ((_shown(value),) for value in values))


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _csv_lines(table: Table):
    writer = csv.writer(Echo())
    yield writer.writerow(table.columns)
    for row in table.rows:
        yield writer.writerow([csv_cell(_plain(value)) for value in row])


def _plain(value):
    return value.isoformat() if isinstance(value, date | datetime) else value
