"""The API keeps to its OpenAPI schema: schemathesis against the live server finds nothing.

Every operation gets generated requests, valid and invalid by the schema, from a study's
researcher and from a superuser (who may also write judges). Each response must be one the
schema documents, with the documented body; valid requests must not be refused with a 400,
invalid ones must be; nothing may be a 500.
"""

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from conftest import REPO, make_study, make_user
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from test_judge_api import RUBRIC, add_items

from annotation.models import StudyMembership
from judging.models import Judge, PromptTemplate
from judging.work import plan_run

EXAMPLES_PER_OPERATION = 30
# Most generated requests name the study, the judge and the ids (the judge's, its run's) of
# the data below, so that they reach the code behind the 404s. Some writes refuse bodies the
# schema cannot tell apart from good ones, with a 400 that says why: a judge or question the
# study does not have, a template without the fields its question type needs, a judge name
# in use, an `api_key_env` outside JUDGE_KEY_ENV_NAMES, a base URL that is not http(s).
# Reading a template after its DELETE is a 200, not the 404 `use_after_free` expects: a study
# has a prompt for every question type, and DELETE brings back the default. Error feedback is
# off: it reads DRF's "may not be blank" as "required", which an optional template part is not.
CONFIG = """
[dictionaries]
studies = { values = ["s1"] }
judges = { values = ["stub"] }
ids = { values = IDS }

[parameters]
"path.slug" = { dictionary = "studies", probability = 0.8 }
"body.judge" = { dictionary = "judges", probability = 0.8 }
"path.id" = { dictionary = "ids", probability = 0.8 }

[[operations]]
include-name = [
  "POST /api/judges/",
  "PUT /api/judges/{id}/",
  "PATCH /api/judges/{id}/",
  "POST /api/studies/{slug}/judge-runs/",
  "POST /api/studies/{slug}/judge-runs/estimate/",
  "PUT /api/studies/{slug}/judge-templates/{question_type}/",
]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]

[[operations]]
include-name = "GET /api/studies/{slug}/judge-templates/{question_type}/"
checks.use_after_free.enabled = false

[phases.fuzzing.error-feedback]
enabled = false
"""


@pytest.fixture
def quiet_server_own_broker(monkeypatch, tmp_path):
    """The server the fuzzer calls keeps no access log, a line for each of thousands of
    requests. The runs the fuzzer starts queue Celery tasks in a folder of this test's, so
    that no worker of another test picks up a run of this one."""
    monkeypatch.setenv("UVICORN_ACCESS_LOG", "false")
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    monkeypatch.setenv("QUORUM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.fixture
def asgi_server(quiet_server_own_broker, asgi_server):
    """conftest's server, started once the environment above is in place whatever order a
    test names its fixtures in (named first, it started before, and on the shared Redis)."""
    return asgi_server


@pytest.fixture
def known(asgi_server):
    """A study with items, a member of each role, a judge with a run, a study template; the
    tokens of its researcher and of a superuser, and the ids of the judge and the run."""
    study = make_study(slug="s1", rubric=RUBRIC)
    add_items(study)
    for username, role in [("alice", "ADMIN"), ("bob", "ANNOTATOR"), ("carol", "EXPERT")]:
        make_user(username, getattr(StudyMembership.Role, role), study)
    judge = Judge.objects.create(
        name="stub",
        base_url="http://127.0.0.1:9/v1",
        model="stub-judge",
        price_per_1k_input=Decimal("0.25"),
    )
    run = plan_run(study, judge, ["pref"])
    PromptTemplate.objects.create(study=study, question_type="likert", system="", user="{response}")
    researcher = make_user("dan", StudyMembership.Role.RESEARCHER, study)
    return {
        "tokens": {
            "researcher": Token.objects.create(user=researcher).key,
            "superuser": Token.objects.create(user=User.objects.create_superuser("root")).key,
        },
        "ids": [judge.pk, run.pk],
    }


@pytest.mark.parametrize("persona", ["researcher", "superuser"])
def test_it_answers_every_generated_request_as_its_schema_says(
    asgi_server, known, persona, tmp_path
):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.replace("IDS", json.dumps(known["ids"])))
    fuzz = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            f"--config-file={config}",
            "run",
            f"{asgi_server}/api/schema/?format=json",
            "--checks=all",
            f"--max-examples={EXAMPLES_PER_OPERATION}",
            "--seed=1",
            "--generation-deterministic",
            "--workers=1",
            "--no-color",
            f"--header=Authorization: Token {known['tokens'][persona]}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fuzz.returncode == 0, fuzz.stdout + fuzz.stderr
