"""The API's JSON parser: DRF's, refusing deeply nested documents with a 400.

No request body of the API nests more than a few levels, but `[` repeated 100,000 times made
Python's decoder raise RecursionError, a 500. The decoder gives up at a depth that depends on
how deep the stack already is, so past MAX_DEPTH a document is refused whatever the stack:
nothing that deep reaches a serializer, whose validation recurses too.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32
TOO_DEEP = f"JSON parse error - nested more than {MAX_DEPTH} levels deep"


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if depth(data) > MAX_DEPTH:
            raise ParseError(TOO_DEEP)
        return data


def depth(data):
    """How many arrays and objects deep `data` nests (0 for a scalar), without recursing."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in value)
    return deepest
