"""The API's pages: `limit` and `offset`, or cursors, with a cap on the page size and a 400 for
nonsense.

DRF's LimitOffsetPagination lets `?limit=100000000` return a whole table in one response and
quietly reads `limit=-5`, `limit=` or `limit=abc` as "the default". Here a limit above the cap
is served at the cap (a client asking for "everything" still gets a working page and a `next`
link), while a value that is not a whole number in range is refused, naming the parameter.
Cursor pages treat their `page_size` the same way, and the schema gives both minimums.
"""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, LimitOffsetPagination

MAX_PAGE_SIZE = 1000


class CappedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request):
        return requested_size(request, self.limit_query_param, self.default_limit, self.max_limit)

    def get_offset(self, request):
        if self.offset_query_param not in request.query_params:
            return 0
        return whole_number(request, self.offset_query_param, minimum=0)

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["description"] = _size_description(self.default_limit, self.max_limit)
        limit["schema"]["minimum"] = 1
        offset["schema"]["minimum"] = 0
        return [limit, offset]


class CappedCursorPagination(CursorPagination):
    """Cursor pages (a subclass names the `ordering`) whose `page_size` is capped."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        name, default, cap = self.page_size_query_param, self.page_size, self.max_page_size
        return requested_size(request, name, default, cap)

    def get_schema_operation_parameters(self, view):
        cursor, page_size = super().get_schema_operation_parameters(view)
        page_size["description"] = _size_description(self.page_size, self.max_page_size)
        page_size["schema"]["minimum"] = 1
        return [cursor, page_size]


def requested_size(request, name, default, cap):
    """The page size a request asks for under `name`: `default` when it asks none, at most
    `cap`; a 400 for anything but a whole number of at least 1."""
    if name not in request.query_params:
        return default
    return min(whole_number(request, name, minimum=1), cap)


def whole_number(request, name, minimum):
    value = request.query_params[name]
    # isdigit() alone would pass "²" and other digits int() refuses or reads differently.
    if not (value.isascii() and value.isdigit()) or int(value) < minimum:
        raise ValidationError({name: [f"A whole number of at least {minimum}, not {value!r}."]})
    return int(value)


def _size_description(default, cap):
    return f"Results per page, {default} by default; more than {cap} are served as {cap}."
