"""Request bodies too large for any view are refused before they are read.

A request whose Content-Length is above what the largest upload (an import file of
IMPORT_MAX_BYTES, with its form fields) can take answers 413 at once: JSON under /api/, a
short page elsewhere. Without it a 200 MB upload held a web worker until gunicorn killed it.
The views check each file's own size too (a body may hide its length in chunked encoding).
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.defaultfilters import filesizeformat

from evalplatform.api_errors import API_PREFIX

# Room for an upload's form fields and multipart boundaries beside the file itself.
FORM_OVERHEAD_BYTES = 1024 * 1024


def too_large_message(limit: int) -> str:
    return f"The file is too large: an import may be at most {filesizeformat(limit)}."


def content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.IMPORT_MAX_BYTES
        if content_length(request) > limit + FORM_OVERHEAD_BYTES:
            message = too_large_message(limit)
            if request.path.startswith(API_PREFIX):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(
                f"{message} Go back and choose a smaller file.",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
