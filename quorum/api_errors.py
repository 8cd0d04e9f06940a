"""The error responses of the API, documented on every operation that can give them.

drf-spectacular documents an operation's successes only, so clients (and schemathesis) met
400s, 401s and 404s the schema never mentioned. Which errors an operation can give follows
from what it is, so the schema class adds them all; a view documents only its own, such as a
409 (see Conflict).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.views import APIView

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERRORS = {
    "type": "object",
    "description": "The reasons, by field (`non_field_errors` for the body as a whole); "
    "an unreadable body gets `detail` alone. A list's errors come by position.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]
    },
}
BODY_METHODS = {"POST", "PUT", "PATCH"}
UNSAFE_METHODS = {*BODY_METHODS, "DELETE"}


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _response(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class ErrorDocumentingAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            responses.setdefault(code, response)
        return responses

    def _error_responses(self):
        errors = {}
        if self._has_body() or self._is_paginated():
            errors["400"] = _response(
                "Invalid: a body or query parameter the operation refuses.", VALIDATION_ERRORS
            )
        errors["401"] = _response("No credentials, or ones that are not valid.", DETAIL)
        if self.method in UNSAFE_METHODS or self._has_own_permissions():
            errors["403"] = _response(
                "Not allowed: the caller lacks the permission, or a session-authenticated "
                "write came without its CSRF token.",
                DETAIL,
            )
        if "{" in self.path:
            errors["404"] = _response(
                "No such object, or one the caller may not see (never a 403: what exists "
                "is not revealed).",
                DETAIL,
            )
        return errors

    def _has_body(self):
        return self.method in BODY_METHODS and self.get_request_serializer() is not None

    def _is_paginated(self):
        return self._is_list_view() and self._get_paginator() is not None

    def _has_own_permissions(self):
        return any(p not in (AllowAny, IsAuthenticated) for p in self.view.permission_classes)


@extend_schema(exclude=True)
class NoSuchEndpoint(APIView):
    """Any other URL under /api/: a 404 in JSON, as the schema says, instead of the site's
    HTML page (after authentication, like every endpoint)."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise NotFound("no such endpoint")  # every method: this view has no handlers
