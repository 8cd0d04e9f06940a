"""The rubric format: what questions a study asks and which answers each question accepts.

Plain Python, no Django: importers, the labelling UI and the judges all ask this module
whether a value is valid, so the value vocabulary of the label CSV lives in one place:
pairwise `A`/`B`/`tie`, Likert `1`..`N`, checklist and binary `yes`/`no` (checklist also
`na`), a category (several joined with `;`), free text, and `unable` where a question allows
"unable to assess". A pairwise question with a strength scale has a second cell, `key.strength`
(`1`..`n`, how much better the chosen response is), which goes only with an answer naming a
response.
"""

import json
import re
from dataclasses import dataclass, field

QUESTION_TYPES = ("pairwise", "likert", "checklist", "binary", "categorical", "text")
UNABLE = "unable"
TIE = "tie"
MULTI_SEPARATOR = ";"
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CELL_RE = re.compile(r"^(?P<key>[a-z][a-z0-9_]*)\[(?P<index>\d+)\]$")
STRENGTH_SUFFIX = ".strength"
STRENGTH_RE = re.compile(r"^(?P<key>[a-z][a-z0-9_]*)\.strength$")
DEFAULT_STRENGTH = ("slightly better", "clearly better", "much better")
STRENGTH_ANCHORS = (2, 7)  # fewest and most anchor labels of a strength scale

_COMMON_FIELDS = {"key", "type", "prompt", "required", "allow_unable"}
_TYPE_FIELDS = {
    "pairwise": {"allow_tie", "strength"},
    "likert": {"scale", "labels"},
    "checklist": {"items"},
    "binary": {"needs_reference"},
    "categorical": {"choices", "multiple"},
    "text": set(),
}


class RubricError(ValueError):
    """A rubric definition that does not follow the format; the message names the field,
    `path` is where it is ("questions[0].scale")."""

    path = ""


@dataclass(frozen=True)
class Question:
    key: str
    type: str
    prompt: str = ""
    required: bool = True
    allow_unable: bool = False
    allow_tie: bool = True
    strength: tuple = ()  # anchor labels, weakest first; empty when no strength is asked
    scale: int = 0
    labels: dict = field(default_factory=dict)
    items: tuple | str = ()
    needs_reference: bool = False
    choices: tuple = ()
    multiple: bool = False

    @property
    def per_item(self):
        return self.type == "checklist" and self.items == "per_item"

    @property
    def strength_cell(self):
        """The label CSV cell of this question's strength, or None when it asks for none."""
        return self.key + STRENGTH_SUFFIX if self.strength else None

    def checklist_for(self, item_checklist):
        """The checklist questions this item is asked: the rubric's own, or the item's."""
        return list(item_checklist) if self.per_item else list(self.items)

    def clean(self, value, response_keys=("A", "B")):
        """Return the stored form of a label value, or raise ValueError saying what was expected.

        Checklist rows are cleaned one cell at a time (see Rubric.clean).
        """
        if value == UNABLE and self.allow_unable:
            return UNABLE
        if self.type == "pairwise":
            allowed = list(response_keys) + ([TIE] if self.allow_tie else [])
            if value not in allowed:
                raise ValueError(f"expected one of {_or(allowed + self._unable())}")
            return value
        if self.type == "likert":
            allowed = [str(n) for n in range(1, self.scale + 1)]
            if value not in allowed:
                raise ValueError(f"expected an integer 1..{self.scale}{self._or_unable()}")
            return int(value)
        if self.type == "checklist":
            if value not in ("yes", "no", "na"):
                raise ValueError(f"expected one of {_or(['yes', 'no', 'na', *self._unable()])}")
            return value
        if self.type == "binary":
            if value not in ("yes", "no"):
                raise ValueError(f"expected one of {_or(['yes', 'no', *self._unable()])}")
            return value
        if self.type == "categorical":
            return self._clean_category(value)
        return value  # text

    def clean_strength(self, value):
        """The stored strength (1..n) of a preference, or raise ValueError."""
        n = len(self.strength)
        if value not in [str(s) for s in range(1, n + 1)]:
            raise ValueError(
                f"expected an integer 1..{n} (1 {self.strength[0]!r} to {n} {self.strength[-1]!r})"
            )
        return int(value)

    def _clean_category(self, value):
        chosen = value.split(MULTI_SEPARATOR) if self.multiple else [value]
        unknown = [c for c in chosen if c not in self.choices]
        if unknown or not value:
            raise ValueError(
                f"expected {'choices from' if self.multiple else 'one of'} "
                f"{_or(list(self.choices) + self._unable())}"
            )
        if not self.multiple:
            return value
        if len(set(chosen)) != len(chosen):
            raise ValueError("names a choice twice")
        return sorted(chosen, key=self.choices.index)

    def _unable(self):
        return [UNABLE] if self.allow_unable else []

    def _or_unable(self):
        return f" or {UNABLE!r}" if self.allow_unable else ""


@dataclass(frozen=True)
class Rubric:
    name: str
    questions: tuple

    def question(self, key):
        for q in self.questions:
            if q.key == key:
                return q
        return None

    @property
    def keys(self):
        return [q.key for q in self.questions]

    def has(self, qtype):
        return any(q.type == qtype for q in self.questions)

    def cells(self, item_checklist=(), keys=None):
        """The label CSV question cells of one item in rubric order (checklists as key[i]),
        of every question or of those in `keys`.

        Strength cells (`key.strength`) are not among them: they are asked of people only,
        after an answer naming a response, so judges, which ask these cells, never see them.
        """
        for q in self.questions:
            if keys is not None and q.key not in keys:
                continue
            if q.type == "checklist":
                for i in range(len(q.checklist_for(item_checklist))):
                    yield f"{q.key}[{i}]"
            else:
                yield q.key

    def analysed_cells(self, item_checklist=()):
        """The cells that routing, adjudication and final labels settle, as the report
        analyses them: every question but free text, each checklist row on its own."""
        text = [q.key for q in self.questions if q.type == "text"]
        return [cell for cell in self.cells(item_checklist) if cell not in text]

    def clean(self, cell, value, *, item_checklist=(), response_keys=("A", "B")):
        """Validate one label CSV (question, value) pair against this rubric for one item.

        Returns (question, stored value); a `key.strength` cell returns its pairwise question.
        Whether a strength fits the label's pairwise answer is `strength_problems`' to say.
        """
        match = CELL_RE.match(cell)
        strength = STRENGTH_RE.match(cell)
        key = (match or strength)["key"] if match or strength else cell
        q = self.question(key)
        if q is None:
            raise ValueError(f"unknown question {cell!r}; the rubric has {_or(self.keys)}")
        if strength:
            if not q.strength:
                raise ValueError(
                    f"question {key!r} has no strength scale in this rubric; "
                    f"write its answer as {key!r}"
                )
            return q, q.clean_strength(value)
        if q.type == "checklist":
            n = len(q.checklist_for(item_checklist))
            if not match or int(match["index"]) >= n:
                raise ValueError(f"checklist answers are written {key}[i] with i from 0 to {n - 1}")
        elif match:
            raise ValueError(f"question {key!r} is not a checklist; write it as {key!r}")
        return q, q.clean(value, response_keys)

    def strength_problems(self, answers, *, complete=False):
        """(cell, message) for each strength cell out of place in one label's answers.

        A strength says how much better the chosen response is, so it goes with a pairwise
        answer naming a response, never with a tie, `unable` or no answer. With `complete`
        (an annotator's whole submission), a required question answered with a response
        needs its strength too. `answers` are stored values keyed by cell.
        """
        for q in self.questions:
            if not q.strength:
                continue
            cell, answer = q.strength_cell, answers.get(q.key)
            prefers = answer not in (None, TIE, UNABLE)
            if cell in answers and not prefers:
                found = f"{q.key!r} is {answer!r}" if answer else f"{q.key!r} has no answer"
                yield cell, f"a strength goes only with an answer naming a response; {found}"
            elif complete and prefers and q.required and cell not in answers:
                yield cell, "an answer is required"

    def to_json(self):
        questions = []
        for q in self.questions:
            out = {"key": q.key, "type": q.type}
            if q.prompt:
                out["prompt"] = q.prompt
            if not q.required:
                out["required"] = False
            if q.allow_unable:
                out["allow_unable"] = True
            if q.type == "pairwise":
                out["allow_tie"] = q.allow_tie
                if q.strength:
                    out["strength"] = list(q.strength)
            elif q.type == "likert":
                out["scale"] = q.scale
                if q.labels:
                    out["labels"] = dict(q.labels)
            elif q.type == "checklist":
                out["items"] = q.items if q.per_item else list(q.items)
            elif q.type == "binary":
                out["needs_reference"] = q.needs_reference
            elif q.type == "categorical":
                out["choices"] = list(q.choices)
                out["multiple"] = q.multiple
            questions.append(out)
        return {"name": self.name, "questions": questions}


def render_value(stored):
    """The label CSV form of a stored value: the inverse of Question.clean."""
    if isinstance(stored, list):
        return MULTI_SEPARATOR.join(stored)
    return str(stored)


def parse_rubric(data):
    """Build a Rubric from its JSON form, raising RubricError naming the first bad field."""
    problems = []
    rubric = _build(data, problems)
    if problems:
        raise RubricError(problems[0][1])
    return rubric


def rubric_problems(data):
    """Every problem of a rubric definition, as (path, message) in document order, the
    first being what parse_rubric raises: the builder lists them all at once."""
    problems = []
    _build(data, problems)
    return problems


def text_problems(text):
    """Every problem of a rubric written as JSON text, each with the line it is on:
    [{"line": 3, "path": "questions[0].type", "message": "..."}]."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return [{"line": e.lineno, "path": "", "message": f"not JSON: {e.msg} (column {e.colno})"}]
    lines = _value_lines(text)
    found = []
    for path, message in rubric_problems(data):
        known = path
        while known not in lines:  # a missing field: the object that lacks it
            shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", known)
            known = "" if shorter == known else shorter  # "": the whole text, line 1
        found.append({"line": lines[known], "path": path, "message": message})
    return found


def _value_lines(text):
    """The line each value of a (valid) JSON text starts on, by path ("questions[0].key":
    the line of the key)."""
    decoder, lines = json.JSONDecoder(), {}

    def skip(pos):
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def line(pos):
        return text.count("\n", 0, pos) + 1

    def value(pos, path):
        pos = skip(pos)
        lines.setdefault(path, line(pos))
        if text[pos] == "{":
            pos = skip(pos + 1)
            while text[pos] != "}":
                start = pos
                key, pos = json.decoder.scanstring(text, pos + 1)
                lines[f"{path}.{key}" if path else key] = line(start)
                pos = value(skip(pos) + 1, f"{path}.{key}" if path else key)
                pos = skip(pos)
                pos = skip(pos + 1) if text[pos] == "," else pos
            return pos + 1
        if text[pos] == "[":
            pos, index = skip(pos + 1), 0
            while text[pos] != "]":
                pos = skip(value(pos, f"{path}[{index}]"))
                pos, index = (skip(pos + 1) if text[pos] == "," else pos), index + 1
            return pos + 1
        return decoder.raw_decode(text, pos)[1]

    value(0, "")
    return lines


def _build(data, problems):
    """The Rubric of `data`, or None, appending each problem found to `problems`."""
    if not isinstance(data, dict):
        problems.append(("", 'the rubric must be a JSON object with "name" and "questions"'))
        return None
    unknown = set(data) - {"name", "questions"}
    if unknown:
        field_name = sorted(unknown)[0]
        problems.append(
            (field_name, f'unknown field {field_name!r}; expected "name" and "questions"')
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(("name", '"name" must be a non-empty string'))
    raw = data.get("questions")
    if not isinstance(raw, list) or not raw:
        problems.append(("questions", '"questions" must be a non-empty list'))
        return None
    questions, seen = [], set()
    for i, q in enumerate(raw):
        try:
            question = _parse_question(q, f"questions[{i}]", problems)
        except RubricError as e:  # the question cannot be read further
            problems.append((e.path, str(e)))
            question = None
        key = q.get("key") if isinstance(q, dict) else None
        if isinstance(key, str) and KEY_RE.match(key):
            if key in seen:
                problems.append(
                    (f"questions[{i}].key", f"questions[{i}].key: {key!r} is used twice")
                )
            seen.add(key)
        if question is not None:
            questions.append(question)
    if problems:
        return None
    return Rubric(name=name.strip(), questions=tuple(questions))


def _parse_question(q, where, problems):
    """The Question of one definition, or None when a field is wrong (each wrong field is
    appended to `problems`); RubricError when not even its key and type can be read."""
    if not isinstance(q, dict):
        raise _problem(where, f"{where}: must be an object")
    key, qtype = q.get("key"), q.get("type")
    if not isinstance(key, str) or not KEY_RE.match(key):
        problems.append(
            (
                f"{where}.key",
                f"{where}.key: must be lowercase letters, digits and _, starting with a letter",
            )
        )
    if qtype not in QUESTION_TYPES:
        raise _problem(f"{where}.type", f"{where}.type: expected {_or(list(QUESTION_TYPES))}")
    before = len(problems)
    for extra in sorted(set(q) - _COMMON_FIELDS - _TYPE_FIELDS[qtype]):
        problems.append((f"{where}.{extra}", f"{where}.{extra}: not a field of a {qtype} question"))
    kwargs = {"key": key, "type": qtype}

    def checked(check, *args):
        try:
            return check(*args)
        except RubricError as e:
            problems.append((e.path, str(e)))
            return None

    kwargs["prompt"] = checked(_typed, q, "prompt", str, "", where)
    for flag, default in (("required", True), ("allow_unable", False)):
        kwargs[flag] = checked(_typed, q, flag, bool, default, where)
    if qtype == "pairwise":
        kwargs["allow_tie"] = checked(_typed, q, "allow_tie", bool, True, where)
        kwargs["strength"] = checked(_strength, q.get("strength", False), where)
    elif qtype == "likert":
        kwargs.update(checked(_likert, q, where) or {})
    elif qtype == "checklist":
        kwargs["items"] = checked(_checklist_items, q.get("items"), where)
    elif qtype == "binary":
        kwargs["needs_reference"] = checked(_typed, q, "needs_reference", bool, False, where)
    elif qtype == "categorical":
        kwargs["choices"] = checked(_choices, q.get("choices"), where)
        kwargs["multiple"] = checked(_typed, q, "multiple", bool, False, where)
    if len(problems) > before or not isinstance(key, str) or not KEY_RE.match(key):
        return None
    return Question(**kwargs)


def _problem(path, message):
    error = RubricError(message)
    error.path = path
    return error


def _likert(q, where):
    scale = q.get("scale")
    if type(scale) is not int or not 2 <= scale <= 100:
        raise _problem(f"{where}.scale", f"{where}.scale: must be an integer from 2 to 100")
    labels = _typed(q, "labels", dict, {}, where)
    for k, v in labels.items():
        if k not in {str(n) for n in range(1, scale + 1)} or not isinstance(v, str):
            raise _problem(
                f"{where}.labels", f'{where}.labels: keys must be "1".."{scale}" and values strings'
            )
    return {"scale": scale, "labels": labels}


def _checklist_items(items, where):
    if items == "per_item":
        return items
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(s, str) and s.strip() for s in items)
    ):
        raise _problem(
            f"{where}.items", f'{where}.items: must be a non-empty list of questions or "per_item"'
        )
    return tuple(items)


def _choices(choices, where):
    if (
        not isinstance(choices, list)
        or not choices
        or not all(isinstance(c, str) and c and MULTI_SEPARATOR not in c for c in choices)
        or len(set(choices)) != len(choices)
    ):
        raise _problem(
            f"{where}.choices",
            f"{where}.choices: must be a non-empty list of distinct strings without ';'",
        )
    if UNABLE in choices:
        raise _problem(
            f"{where}.choices", f"{where}.choices: {UNABLE!r} is reserved for unable to assess"
        )
    return tuple(choices)


def _strength(value, where):
    """Anchor labels of a pairwise strength scale: `true` for the default ones, or a list."""
    if value is True:
        return DEFAULT_STRENGTH
    if value is False:
        return ()
    fewest, most = STRENGTH_ANCHORS
    if (
        not isinstance(value, list)
        or not fewest <= len(value) <= most
        or not all(isinstance(s, str) and s.strip() for s in value)
        or len(set(value)) != len(value)
    ):
        raise _problem(
            f"{where}.strength",
            f"{where}.strength: must be true or a list of {fewest} to {most} distinct "
            "anchor labels, weakest first",
        )
    return tuple(value)


def _typed(q, name, kind, default, where):
    value = q.get(name, default)
    if not isinstance(value, kind):
        raise _problem(
            f"{where}.{name}", f"{where}.{name}: must be {kind.__name__.replace('str', 'a string')}"
        )
    return value


def _or(options):
    quoted = [repr(o) for o in options]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


# Questions a new study can start from, in the builder; each follows the format above.
STARTERS = {
    "pairwise": {
        "name": "Pairwise preference",
        "questions": [
            {"key": "preference", "type": "pairwise", "prompt": "Which response is better?"},
            {"key": "why", "type": "text", "prompt": "Why?", "required": False},
        ],
    },
    "likert": {
        "name": "Quality score",
        "questions": [
            {
                "key": "quality",
                "type": "likert",
                "prompt": "How good is the response?",
                "scale": 5,
                "labels": {"1": "Very poor", "5": "Excellent"},
            }
        ],
    },
    "checklist": {
        "name": "Checklist",
        "questions": [
            {
                "key": "checks",
                "type": "checklist",
                "prompt": "Does the response…",
                "items": ["answer the question?", "avoid factual errors?"],
            }
        ],
    },
}
