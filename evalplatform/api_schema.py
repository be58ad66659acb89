"""The API's OpenAPI schema documents the errors every operation can answer, not only success.

DRF answers a missing token with 401, a bad body or query with 400, an unknown id with 404,
a wrong content type with 415 and an oversized body with 413 (evalplatform.api_errors keeps
them all JSON); drf-spectacular documents none of them unless told, so clients and schemathesis
would meet undocumented status codes. An operation's own `extend_schema(responses=...)` for
a code wins over these defaults.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

BODY_METHODS = {"POST", "PUT", "PATCH"}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


# DRF's validation errors: field name to messages (nested for nested input), `detail` or
# `non_field_errors` for the request as a whole.
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {},
    "description": "Field names map to lists of messages; `detail` or `non_field_errors` "
    "describe the request as a whole.",
}


class AutoSchema(SpectacularAutoSchema):
    def _error_responses(self) -> dict[str, OpenApiResponse]:
        errors = {
            "401": OpenApiResponse(ErrorSerializer, "No valid token or session."),
            "403": OpenApiResponse(ErrorSerializer, "Not allowed (e.g. a missing CSRF token)."),
        }
        has_body = self.method in BODY_METHODS
        if has_body or any(p["in"] == "query" for p in self._get_parameters()):
            errors["400"] = OpenApiResponse(VALIDATION_ERROR_SCHEMA, "Invalid input.")
        if "{" in self.path:
            errors["404"] = OpenApiResponse(ErrorSerializer, "No such object of yours.")
        if has_body:
            errors["413"] = OpenApiResponse(ErrorSerializer, "The request body is too large.")
            errors["415"] = OpenApiResponse(ErrorSerializer, "Unsupported content type.")
        return errors

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, error in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return responses
