"""Every error under /api/ answers JSON: `{"detail": "..."}`, or field errors for a bad request.

DRF's own handler already does so for the errors it knows (validation, authentication, 404...);
`exception_handler` adds a JSON 500 for the unexpected ones, which are logged with their
traceback but never sent to the client (no traceback, no SQL). The `page_*` and `server_error`
views are Django's error handlers (handler404...), JSON for /api/ paths that no DRF view
answered (an id that is not a number, an unknown path) and Django's HTML pages elsewhere.
"""

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger("django.request")

API_PREFIX = "/api/"
SERVER_ERROR = "Server error: the request was not completed. It is logged for the operator."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    request = context.get("request")
    # Logged where Django logs the 500s it handles itself, so that error reporting sees them.
    logger.error(
        "Internal Server Error: %s",
        request.path if request is not None else "(unknown path)",
        exc_info=exc,
        extra={"status_code": 500, "request": request},
    )
    set_rollback()
    return Response({"detail": SERVER_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Permission denied."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request)
