"""A study's routing rules, as stored: which disagreements send an item to the expert queue.

The format belongs with the study (annotation validates what a study stores, as it does its
rubric); the decisions are `calibration.disagreement`'s. Pure Python, no Django.

`{"no_majority": true, "low_agreement": 0.7, "judge_conflict": true, "judge_inconsistent": true,
"low_confidence": 0.6, "unable": true, "gold_miss": true}`: `false` or absent is off, a number
is that rule's threshold.
"""

import numbers

RULES = (
    "no_majority",
    "low_agreement",
    "judge_conflict",
    "judge_inconsistent",
    "low_confidence",
    "unable",
    "gold_miss",
)
THRESHOLD_RULES = ("low_agreement", "low_confidence")
DEFAULT_RULES = {"no_majority": True, "judge_inconsistent": True, "unable": True, "gold_miss": True}
_THRESHOLD = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}
# What check_rules takes, as an OpenAPI 3.0 schema, for the API's documentation.
RULES_SCHEMA = {
    "type": "object",
    "properties": {
        rule: {"oneOf": [{"type": "boolean", "enum": [False]}, _THRESHOLD]}
        if rule in THRESHOLD_RULES
        else {"type": "boolean"}
        for rule in RULES
    },
    "additionalProperties": False,
}


def check_rules(obj):
    """The rules as stored on a study, refused with the key at fault before any is applied.

    Absent rules are off. A threshold rule is false or a number in (0, 1]: `true` would leave
    its threshold to a guess.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"the rules must be a JSON object of rule names, not {obj!r}")
    unknown = sorted(set(obj) - set(RULES), key=str)
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; expected one of {', '.join(RULES)}")
    rules = {}
    for rule in RULES:
        value = obj.get(rule, False)
        if rule in THRESHOLD_RULES:
            rules[rule] = _threshold(rule, value)
        elif isinstance(value, bool):
            rules[rule] = value
        else:
            raise ValueError(f"{rule!r} must be true or false, not {value!r}")
    return rules


def _threshold(rule, value):
    if value is False:
        return False
    if value is True:
        raise ValueError(f"{rule!r} needs a threshold: a number in (0, 1], or false for off")
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    raise ValueError(f"{rule!r} must be false or a number in (0, 1], not {value!r}")


def default_rules():
    """A new study's rules (a fresh dict: a model field default must not be shared)."""
    return dict(DEFAULT_RULES)
