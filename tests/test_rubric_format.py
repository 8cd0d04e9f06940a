"""The rubric JSON format: what parses, what is refused (naming the field), which values fit."""

import copy

import pytest

from annotation.rubrics import Rubric, RubricError, parse_rubric, render_value

EVERY_TYPE = {
    "name": "Every question type",
    "questions": [
        {"key": "pref", "type": "pairwise", "prompt": "Which is better?", "allow_tie": True},
        {"key": "strict", "type": "pairwise", "allow_tie": False},
        {"key": "quality", "type": "likert", "scale": 5, "labels": {"1": "bad", "5": "great"}},
        {"key": "check", "type": "checklist", "items": ["Is it polite?", "Is it short?"]},
        {"key": "tick", "type": "checklist", "items": "per_item", "allow_unable": True},
        {"key": "correct", "type": "binary", "needs_reference": True},
        {"key": "topic", "type": "categorical", "choices": ["math", "code", "chat"]},
        {
            "key": "codes",
            "type": "categorical",
            "choices": ["x", "y", "z"],
            "multiple": True,
            "allow_unable": True,
        },
        {"key": "why", "type": "text", "required": False},
        {"key": "safe", "type": "binary", "allow_unable": True},
    ],
}


def rubric():
    return parse_rubric(copy.deepcopy(EVERY_TYPE))


def with_question(**question):
    return {"name": "One question", "questions": [question]}


def refused(data):
    with pytest.raises(RubricError) as excinfo:
        parse_rubric(data)
    return str(excinfo.value)


# Parsing ----------------------------------------------------------------------------------


def test_it_parses_every_question_type():
    r = rubric()

    assert isinstance(r, Rubric)
    assert r.name == "Every question type"
    assert r.keys == [
        "pref",
        "strict",
        "quality",
        "check",
        "tick",
        "correct",
        "topic",
        "codes",
        "why",
        "safe",
    ]
    assert {q.type for q in r.questions} == {
        "pairwise",
        "likert",
        "checklist",
        "binary",
        "categorical",
        "text",
    }
    assert r.question("pref").prompt == "Which is better?"
    assert r.question("pref").allow_tie is True
    assert r.question("strict").allow_tie is False
    assert r.question("quality").scale == 5
    assert r.question("quality").labels == {"1": "bad", "5": "great"}
    assert r.question("check").items == ("Is it polite?", "Is it short?")
    assert not r.question("check").per_item
    assert r.question("tick").per_item
    assert r.question("correct").needs_reference is True
    assert r.question("topic").choices == ("math", "code", "chat")
    assert r.question("topic").multiple is False
    assert r.question("codes").multiple is True
    assert r.question("why").required is False
    assert r.question("safe").allow_unable is True
    assert r.question("nope") is None


def test_it_applies_the_documented_defaults():
    r = parse_rubric(
        {
            "name": "  Defaults  ",
            "questions": [
                {"key": "pref", "type": "pairwise"},
                {"key": "ok", "type": "binary"},
                {"key": "topic", "type": "categorical", "choices": ["a"]},
            ],
        }
    )

    assert r.name == "Defaults"
    pref, ok, topic = r.questions
    assert pref.required is True
    assert pref.allow_unable is False
    assert pref.allow_tie is True
    assert pref.prompt == ""
    assert ok.needs_reference is False
    assert topic.multiple is False


def test_it_gives_back_the_same_rubric_from_its_json_form():
    r = rubric()

    assert parse_rubric(r.to_json()) == r


def test_it_lists_the_label_cells_of_an_item_in_rubric_order():
    r = rubric()

    assert list(r.cells(item_checklist=["Cites a source?"])) == [
        "pref",
        "strict",
        "quality",
        "check[0]",
        "check[1]",
        "tick[0]",
        "correct",
        "topic",
        "codes",
        "why",
        "safe",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"name": "R", "questions": [{"key": "a", "type": "text"}], "extra": 1}, "'extra'"),
        ({"questions": [{"key": "a", "type": "text"}]}, '"name" must be a non-empty string'),
        ({"name": "  ", "questions": [{"key": "a", "type": "text"}]}, '"name"'),
        ({"name": 7, "questions": [{"key": "a", "type": "text"}]}, '"name"'),
        ({"name": "R"}, '"questions" must be a non-empty list'),
        ({"name": "R", "questions": []}, '"questions" must be a non-empty list'),
        ({"name": "R", "questions": {"key": "a"}}, '"questions" must be a non-empty list'),
    ],
)
def test_it_refuses_a_rubric_without_a_name_and_questions(data, message):
    assert message in refused(data)


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ({"type": "text"}, "questions[0].key"),
        ({"key": "Pref", "type": "text"}, "questions[0].key"),
        ({"key": "1st", "type": "text"}, "questions[0].key"),
        ({"key": "with space", "type": "text"}, "questions[0].key"),
        ({"key": "a" * 41, "type": "text"}, "questions[0].key"),
        ({"key": "q"}, "questions[0].type"),
        ({"key": "q", "type": "rating"}, "questions[0].type"),
        ({"key": "q", "type": "text", "prompt": 3}, "questions[0].prompt"),
        ({"key": "q", "type": "text", "required": "yes"}, "questions[0].required"),
        ({"key": "q", "type": "text", "allow_unable": 1}, "questions[0].allow_unable"),
        ({"key": "q", "type": "text", "colour": "red"}, "questions[0].colour"),
        ({"key": "q", "type": "pairwise", "scale": 5}, "questions[0].scale"),
        ({"key": "q", "type": "pairwise", "allow_tie": "no"}, "questions[0].allow_tie"),
        ({"key": "q", "type": "pairwise", "strength": "yes"}, "questions[0].strength"),
        ({"key": "q", "type": "pairwise", "strength": 3}, "questions[0].strength"),
        ({"key": "q", "type": "pairwise", "strength": ["better"]}, "questions[0].strength"),
        ({"key": "q", "type": "pairwise", "strength": list("abcdefgh")}, "questions[0].strength"),
        ({"key": "q", "type": "pairwise", "strength": ["a", "a"]}, "questions[0].strength"),
        ({"key": "q", "type": "pairwise", "strength": ["a", " "]}, "questions[0].strength"),
        ({"key": "q", "type": "pairwise", "strength": ["a", 2]}, "questions[0].strength"),
        ({"key": "q", "type": "likert", "scale": 5, "strength": True}, "questions[0].strength"),
        ({"key": "q", "type": "likert"}, "questions[0].scale"),
        ({"key": "q", "type": "likert", "scale": 1}, "questions[0].scale"),
        ({"key": "q", "type": "likert", "scale": 101}, "questions[0].scale"),
        ({"key": "q", "type": "likert", "scale": "5"}, "questions[0].scale"),
        ({"key": "q", "type": "likert", "scale": 5.0}, "questions[0].scale"),
        ({"key": "q", "type": "likert", "scale": True}, "questions[0].scale"),
        ({"key": "q", "type": "likert", "scale": 5, "labels": ["bad"]}, "questions[0].labels"),
        ({"key": "q", "type": "likert", "scale": 5, "labels": {"6": "x"}}, "questions[0].labels"),
        ({"key": "q", "type": "likert", "scale": 5, "labels": {"0": "x"}}, "questions[0].labels"),
        ({"key": "q", "type": "likert", "scale": 5, "labels": {"1": 1}}, "questions[0].labels"),
        ({"key": "q", "type": "likert", "scale": 5, "choices": ["a"]}, "questions[0].choices"),
        ({"key": "q", "type": "checklist"}, "questions[0].items"),
        ({"key": "q", "type": "checklist", "items": []}, "questions[0].items"),
        ({"key": "q", "type": "checklist", "items": "per item"}, "questions[0].items"),
        ({"key": "q", "type": "checklist", "items": ["ok", " "]}, "questions[0].items"),
        ({"key": "q", "type": "checklist", "items": ["ok", 2]}, "questions[0].items"),
        ({"key": "q", "type": "binary", "needs_reference": "yes"}, "questions[0].needs_reference"),
        ({"key": "q", "type": "binary", "items": ["a"]}, "questions[0].items"),
        ({"key": "q", "type": "categorical"}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": []}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": "a;b"}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": ["a", "a"]}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": ["a;b"]}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": ["a", ""]}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": ["a", 1]}, "questions[0].choices"),
        ({"key": "q", "type": "categorical", "choices": ["a", "unable"]}, "questions[0].choices"),
        (
            {"key": "q", "type": "categorical", "choices": ["a"], "multiple": "yes"},
            "questions[0].multiple",
        ),
        ({"key": "q", "type": "text", "scale": 3}, "questions[0].scale"),
    ],
)
def test_it_refuses_a_bad_question_naming_the_field(question, field):
    message = refused(with_question(**question))

    assert message.startswith(f"{field}:")


def test_it_refuses_a_question_that_is_not_an_object():
    message = refused({"name": "R", "questions": [{"key": "a", "type": "text"}, "b"]})

    assert message.startswith("questions[1]:")


def test_it_names_the_position_of_the_bad_question():
    data = copy.deepcopy(EVERY_TYPE)
    data["questions"][2]["scale"] = 0

    assert refused(data).startswith("questions[2].scale:")


def test_it_refuses_a_key_used_twice():
    message = refused(
        {
            "name": "R",
            "questions": [{"key": "a", "type": "text"}, {"key": "a", "type": "binary"}],
        }
    )

    assert message.startswith("questions[1].key:")
    assert "used twice" in message


def test_it_accepts_the_largest_and_smallest_likert_scales():
    for scale in (2, 100):
        q = parse_rubric(with_question(key="q", type="likert", scale=scale)).question("q")

        assert q.scale == scale


# Values -----------------------------------------------------------------------------------


def clean(cell, value, **kwargs):
    _, stored = rubric().clean(cell, value, **kwargs)
    return stored


def refuses_value(cell, value, **kwargs):
    with pytest.raises(ValueError) as excinfo:
        rubric().clean(cell, value, **kwargs)
    return str(excinfo.value)


def test_it_accepts_a_b_and_tie_for_a_pairwise_question():
    assert [clean("pref", v) for v in ("A", "B", "tie")] == ["A", "B", "tie"]


@pytest.mark.parametrize("value", ["a", "C", "Tie", "AB", "", "unable", "A;B"])
def test_it_refuses_other_pairwise_values(value):
    assert "'A', 'B' or 'tie'" in refuses_value("pref", value)


def test_it_refuses_a_tie_where_the_question_does_not_allow_one():
    message = refuses_value("strict", "tie")

    assert message == "expected one of 'A' or 'B'"
    assert clean("strict", "B") == "B"


def test_it_takes_the_pairwise_choices_from_the_item_response_keys():
    assert clean("pref", "second", response_keys=("first", "second")) == "second"
    assert "'first', 'second' or 'tie'" in refuses_value(
        "pref", "A", response_keys=("first", "second")
    )


def test_it_stores_likert_answers_as_integers_from_1_to_the_scale():
    assert [clean("quality", str(n)) for n in range(1, 6)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("value", ["0", "6", "2.5", "03", " 3", "three", "", "unable"])
def test_it_refuses_likert_answers_outside_the_scale(value):
    assert refuses_value("quality", value) == "expected an integer 1..5"


@pytest.mark.parametrize("value", ["yes", "no", "na"])
def test_it_accepts_yes_no_and_na_for_a_fixed_checklist_cell(value):
    assert clean("check[0]", value) == value
    assert clean("check[1]", value) == value


@pytest.mark.parametrize("value", ["YES", "y", "true", "", "unable", "n/a"])
def test_it_refuses_other_checklist_answers(value):
    assert refuses_value("check[0]", value) == "expected one of 'yes', 'no' or 'na'"


@pytest.mark.parametrize("cell", ["check", "check[2]", "check[10]"])
def test_it_requires_a_checklist_index_within_the_rubric_checklist(cell):
    assert refuses_value(cell, "yes") == "checklist answers are written check[i] with i from 0 to 1"


@pytest.mark.parametrize("cell", ["check[-1]", "check[]", "check[x]", "Check[0]"])
def test_it_refuses_a_malformed_checklist_cell_as_an_unknown_question(cell):
    assert refuses_value(cell, "yes").startswith(f"unknown question {cell!r}; the rubric has")


def test_it_sizes_a_per_item_checklist_by_the_item_checklist():
    item_checklist = ["Cites a source?", "Under 100 words?", "Answers in English?"]

    assert clean("tick[2]", "no", item_checklist=item_checklist) == "no"
    assert clean("tick[0]", "unable", item_checklist=item_checklist) == "unable"
    assert (
        refuses_value("tick[3]", "no", item_checklist=item_checklist)
        == "checklist answers are written tick[i] with i from 0 to 2"
    )
    assert refuses_value("tick[0]", "maybe", item_checklist=item_checklist) == (
        "expected one of 'yes', 'no', 'na' or 'unable'"
    )


def test_it_refuses_an_index_on_a_question_that_is_not_a_checklist():
    assert refuses_value("pref[0]", "A") == "question 'pref' is not a checklist; write it as 'pref'"


def test_it_refuses_an_unknown_question():
    message = refuses_value("style", "A")

    assert message.startswith("unknown question 'style'; the rubric has 'pref', 'strict'")


@pytest.mark.parametrize("value", ["yes", "no"])
def test_it_accepts_yes_and_no_for_a_binary_question(value):
    assert clean("correct", value) == value


@pytest.mark.parametrize("value", ["na", "Yes", "", "unable", "1"])
def test_it_refuses_other_binary_answers(value):
    assert refuses_value("correct", value) == "expected one of 'yes' or 'no'"


def test_it_accepts_one_choice_for_a_single_categorical_question():
    assert clean("topic", "code") == "code"


@pytest.mark.parametrize("value", ["Math", "", "math;code", "unable", "poetry"])
def test_it_refuses_anything_but_one_choice_for_a_single_categorical_question(value):
    assert refuses_value("topic", value) == "expected one of 'math', 'code' or 'chat'"


def test_it_stores_multiple_choices_in_the_rubric_order():
    assert clean("codes", "z;x") == ["x", "z"]
    assert clean("codes", "y") == ["y"]
    assert clean("codes", "z;y;x") == ["x", "y", "z"]


@pytest.mark.parametrize("value", ["", "x;", ";x", "x;;y", "x;w", "X"])
def test_it_refuses_unknown_or_empty_choices_for_a_multiple_categorical_question(value):
    assert refuses_value("codes", value) == "expected choices from 'x', 'y', 'z' or 'unable'"


def test_it_refuses_a_choice_named_twice():
    assert refuses_value("codes", "x;y;x") == "names a choice twice"


def test_it_keeps_free_text_as_written():
    text = 'Fine, but "B" rambles;\nsee line two. مرحبا 👍'

    assert clean("why", text) == text


@pytest.mark.parametrize("cell", ["tick[0]", "codes", "safe"])
def test_it_accepts_unable_where_the_question_allows_it(cell):
    assert clean(cell, "unable", item_checklist=["One?"]) == "unable"


@pytest.mark.parametrize(
    ("cell", "value"),
    [("pref", "unable"), ("quality", "unable"), ("check[0]", "unable"), ("topic", "unable")],
)
def test_it_refuses_unable_where_the_question_does_not_allow_it(cell, value):
    refuses_value(cell, value)


def test_it_mentions_unable_in_the_expectation_where_it_is_allowed():
    assert refuses_value("safe", "maybe") == "expected one of 'yes', 'no' or 'unable'"
    likert = parse_rubric(with_question(key="q", type="likert", scale=3, allow_unable=True))

    assert likert.question("q").clean("unable") == "unable"
    with pytest.raises(ValueError, match=r"^expected an integer 1\.\.3 or 'unable'$"):
        likert.question("q").clean("4")


# Rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("pref", "tie"),
        ("quality", "4"),
        ("check[1]", "na"),
        ("correct", "no"),
        ("topic", "chat"),
        ("codes", "x;z"),
        ("codes", "unable"),
        ("why", 'a, b; "c"\nd'),
    ],
)
def test_it_renders_a_stored_value_back_to_its_label_csv_form(cell, value):
    assert render_value(clean(cell, value)) == value


def test_it_renders_multiple_choices_canonically_whatever_order_they_came_in():
    assert render_value(clean("codes", "z;y")) == "y;z"


# Strength of a preference ----------------------------------------------------------------

STRENGTH = {
    "name": "Preference with strength",
    "questions": [
        {"key": "overall", "type": "pairwise", "strength": ["a bit", "clearly", "far"]},
        {"key": "style", "type": "pairwise", "strength": True, "required": False},
        {"key": "plain", "type": "pairwise", "allow_unable": True},
        {"key": "quality", "type": "likert", "scale": 5},
    ],
}


def strength_rubric():
    return parse_rubric(copy.deepcopy(STRENGTH))


def test_it_reads_a_strength_scale_of_anchor_labels_weakest_first():
    r = strength_rubric()

    assert r.question("overall").strength == ("a bit", "clearly", "far")
    assert r.question("overall").strength_cell == "overall.strength"
    assert r.question("style").strength == ("slightly better", "clearly better", "much better")
    assert r.question("plain").strength == ()
    assert r.question("plain").strength_cell is None


@pytest.mark.parametrize("anchors", [["worse", "better"], list("abcdefg")])
def test_it_accepts_two_to_seven_anchor_labels(anchors):
    q = parse_rubric(with_question(key="q", type="pairwise", strength=anchors)).question("q")

    assert q.strength == tuple(anchors)


def test_it_treats_a_false_strength_as_none_and_writes_none_back():
    r = parse_rubric(with_question(key="q", type="pairwise", strength=False))

    assert r.question("q").strength == ()
    assert r.to_json()["questions"][0] == {"key": "q", "type": "pairwise", "allow_tie": True}


def test_it_says_what_a_strength_must_be():
    assert refused(with_question(key="q", type="pairwise", strength=["better"])) == (
        "questions[0].strength: must be true or a list of 2 to 7 distinct anchor labels, "
        "weakest first"
    )


def test_it_writes_the_strength_scale_back_to_json():
    r = strength_rubric()

    assert r.to_json()["questions"][1]["strength"] == [
        "slightly better",
        "clearly better",
        "much better",
    ]
    assert parse_rubric(r.to_json()) == r


def test_it_never_lists_strength_cells_among_the_cells_judges_are_asked():
    assert list(strength_rubric().cells()) == ["overall", "style", "plain", "quality"]


def test_it_stores_a_strength_as_an_integer_from_1_to_the_number_of_anchors():
    r = strength_rubric()

    assert [r.clean("overall.strength", v)[1] for v in ("1", "2", "3")] == [1, 2, 3]
    question, _ = r.clean("overall.strength", "2")
    assert question.key == "overall"
    assert render_value(r.clean("style.strength", "3")[1]) == "3"


@pytest.mark.parametrize("value", ["0", "4", "", "2.0", "02", "unable", "clearly", "A"])
def test_it_refuses_a_strength_outside_the_scale_naming_the_anchors(value):
    with pytest.raises(ValueError) as excinfo:
        strength_rubric().clean("overall.strength", value)

    assert str(excinfo.value) == "expected an integer 1..3 (1 'a bit' to 3 'far')"


@pytest.mark.parametrize("key", ["plain", "quality"])
def test_it_refuses_a_strength_cell_for_a_question_without_a_strength_scale(key):
    with pytest.raises(ValueError) as excinfo:
        strength_rubric().clean(f"{key}.strength", "1")

    assert str(excinfo.value) == (
        f"question {key!r} has no strength scale in this rubric; write its answer as {key!r}"
    )


@pytest.mark.parametrize("cell", ["nope.strength", "overall.Strength", "overall.strength[0]"])
def test_it_refuses_a_malformed_or_unknown_strength_cell_as_an_unknown_question(cell):
    with pytest.raises(ValueError, match=r"^unknown question"):
        strength_rubric().clean(cell, "1")


def problems(answers, **kwargs):
    return list(strength_rubric().strength_problems(answers, **kwargs))


def test_it_accepts_a_strength_with_an_answer_naming_a_response():
    assert problems({"overall": "B", "overall.strength": 2}, complete=True) == []
    assert problems({"overall": "second", "overall.strength": 1}) == []


@pytest.mark.parametrize(
    ("answers", "found"),
    [
        ({"overall": "tie", "overall.strength": 1}, "'overall' is 'tie'"),
        ({"overall": "unable", "overall.strength": 1}, "'overall' is 'unable'"),
        ({"overall.strength": 1}, "'overall' has no answer"),
    ],
)
def test_it_refuses_a_strength_without_an_answer_naming_a_response(answers, found):
    assert problems(answers) == [
        ("overall.strength", f"a strength goes only with an answer naming a response; {found}")
    ]


def test_it_requires_the_strength_of_a_required_preference_only_in_a_complete_label():
    assert problems({"overall": "A"}, complete=True) == [
        ("overall.strength", "an answer is required")
    ]
    assert problems({"overall": "A"}) == []
    assert problems({"overall": "tie"}, complete=True) == []
    assert problems({"overall": "A", "overall.strength": 1, "style": "B"}, complete=True) == []
