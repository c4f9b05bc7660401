"""GET /v1/reports/service: command confirmation times, alert response times and rooms
with repeated alerts (gateway/reports/service.py says how each figure is counted)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import GatewayDep
from api.report_query import REPORT_RESPONSES, ReportFormat, report_response, report_window, wants_csv
from gateway.reports.table import ReportWindow

router = APIRouter(tags=["reports"])


@router.get(
    "/v1/reports/service",
    response_class=Response,
    summary="Service KPIs: command confirmation (p50/p95, by device kind), alert time to ack and resolve",
    responses=REPORT_RESPONSES,
)
def service_report(
    request: Request,
    gateway: GatewayDep,
    window: Annotated[ReportWindow, Depends(report_window)],
    format: ReportFormat | None = None,
) -> Response:
    return report_response(gateway.service_report(window), wants_csv(request, format))
