"""The API's pages: `limit` and `offset`, with a cap on the page size and a 400 for nonsense.

DRF's LimitOffsetPagination lets `?limit=100000000` return a whole table in one response and
quietly reads `limit=-5`, `limit=` or `limit=abc` as "the default". Here a limit above the cap
is served at the cap (a client asking for "everything" still gets a working page and a `next`
link), while a value that is not a whole number in range is refused, naming the parameter.
"""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class CappedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 1000

    def get_limit(self, request):
        if self.limit_query_param not in request.query_params:
            return self.default_limit
        return min(self._whole_number(request, self.limit_query_param, minimum=1), self.max_limit)

    def get_offset(self, request):
        if self.offset_query_param not in request.query_params:
            return 0
        return self._whole_number(request, self.offset_query_param, minimum=0)

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["description"] = (
            f"Results per page, {self.default_limit} by default; more than {self.max_limit} "
            f"are served as {self.max_limit}."
        )
        limit["schema"]["minimum"] = 1
        offset["schema"]["minimum"] = 0
        return [limit, offset]

    @staticmethod
    def _whole_number(request, name, minimum):
        value = request.query_params[name]
        # isdigit() alone would pass "²" and other digits int() refuses or reads differently.
        if not (value.isascii() and value.isdigit()) or int(value) < minimum:
            raise ValidationError({name: [f"A whole number of at least {minimum}, not {value!r}."]})
        return int(value)
