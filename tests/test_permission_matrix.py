"""Who may open each address of Quorum: every URL pattern and the websocket, against every role.

MATRIX is the access spec (issue 13) as a table: a route of the URLconf, the requests to send
it and the status each role gets. A new address without a row fails
test_it_has_a_row_for_every_address, so no page ships unchecked. Every response is searched
for the tag of a study the role may not see: a page that answers 200 may still show too much.

The world: two open studies, "study-mx7" and "other-qz4". Every string of a study's own
data carries its slug as a tag (slug, name, rubric, prompts, labels, a judge run's error,
its prompt template, join token, completion code), so a leak shows as the tag in a body.
Each request runs in a savepoint that is rolled back, so the roles all meet the same world.
"""

import asyncio
import json
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from conftest import PAIRWISE_RUBRIC, make_study, make_user
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.authtoken.models import Token, TokenProxy

from annotation.assignment import rater_for
from annotation.models import (
    Annotation,
    Invitation,
    Item,
    Rater,
    Rubric,
    Study,
    StudyMembership,
    Upload,
)
from annotation.routing import websocket_urlpatterns
from judging.models import Judge, JudgeRun, PromptTemplate
from judging.work import plan_run

ROLES = [
    "anonymous",
    "participant",  # a crowd participant of the study: joined by its link, no password
    "annotator",
    "expert",
    "researcher",
    "admin",
    "other_annotator",  # an annotator of the other study only
    "staff",  # is_staff, no permissions, no membership
    "judge_staff",  # is_staff with judging.change_judge, no membership
    "superuser",
]
RESEARCHERS = ("researcher", "admin", "superuser")
MEMBERS = ("participant", "annotator", "expert", *RESEARCHERS)
STAFF = ("staff", "judge_staff", "superuser")
# The studies each role may see the data of; a site-wide page shows no other study's tag.
VISIBLE = {
    **{role: set() for role in ROLES},
    **{role: {"study"} for role in MEMBERS},
    "other_annotator": {"other"},
    "superuser": {"study", "other"},
}
TAGS = {"study": "study-mx7", "other": "other-qz4"}  # long: never in a random token


class To(str):
    """An expected redirect: a 302 whose Location starts with this."""


LOGIN = To("/login/?next=")
ADMIN_LOGIN = To("/admin/login/?next=")


def expect(default, **by_role):
    return {role: by_role.get(role, default) for role in ROLES}


def anyone(ok, anonymous=LOGIN):
    """Every signed-in user may."""
    return expect(ok, anonymous=anonymous)


def members(ok, anonymous=LOGIN):
    """A study's members, annotators and up; everyone else gets a 404, as for no study."""
    return expect(404, anonymous=anonymous, **dict.fromkeys(MEMBERS, ok))


def researchers(ok, anonymous=LOGIN):
    """A study's researchers and admins only: members below them get the outsiders' 404."""
    return expect(404, anonymous=anonymous, **dict.fromkeys(RESEARCHERS, ok))


def experts(ok, anonymous=LOGIN):
    """A study's experts, researchers and admins: annotators get the outsiders' 404."""
    return expect(404, anonymous=anonymous, expert=ok, **dict.fromkeys(RESEARCHERS, ok))


def admins(ok, anonymous=LOGIN):
    """A study's admins only (setting the study up): researchers get the outsiders' 404."""
    return expect(404, anonymous=anonymous, admin=ok, superuser=ok)


def judge_configurers(ok):
    """Judges hold a provider key: superusers and holders of `change_judge` only."""
    return expect(403, anonymous=401, judge_staff=ok, superuser=ok)


def admin_site(staff, superuser=None):
    """An admin page: anyone not staff is sent to the admin's login."""
    by_staff = dict.fromkeys(STAFF, staff)
    return expect(ADMIN_LOGIN, **{**by_staff, "superuser": superuser or staff})


class Ask:
    """One request of a row: its method, query string, body (a form, or JSON for the API),
    the world values behind the route's parameters, and the status each role gets.

    `expected` may be a function of the admin model (or app label) the page is for; `path`
    stands in for a regular expression's route; `csrf` ("token" or "no token") sends it from
    a client that checks CSRF, with the page's token or without.
    """

    def __init__(
        self,
        method,
        expected,
        *,
        query=None,
        data=None,
        args=None,
        json=False,
        csrf=None,
        path=None,
    ):
        self.method, self.expected, self.query, self.data = method, expected, query, data
        self.args = {**DEFAULT_ARGS, **(args or {})}
        self.json, self.csrf, self.path = json, csrf, path


# A route's parameters: the world value each names, unless a row says otherwise.
DEFAULT_ARGS = {
    "slug": "slug",
    "external_id": "labelled_item",
    "pk": "run",
    "question_type": "question_type",
}
JOIN = {"token": "study-mx7-join", "worker_id": "w1"}
RUN_FORM = {"judge": "gpt-judge", "questions": "pref"}
RUN_REQUEST = {"judge": "gpt-judge", "questions": ["pref"]}
NEW_JUDGE = {"name": "new-judge", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
SPARE = {"pk": "spare_judge"}
INVITE = {"action": "invite", "names": "newcomer", "role": "annotator", "days": "7"}
USED_INVITATION = {"token": "used_invitation"}
OTHER_RUN = {"pk": "other_run"}  # the other study's run, under this study's address
UPLOAD = {"pk": "upload"}
OTHER_UPLOAD = {"pk": "other_upload"}  # the other study's upload, under this study's address
CSRF_TOKEN = "matrix0csrf0secret0of0length0032"  # a CSRF secret is 32 letters and digits
# OPTIONS describes an endpoint from its code, the same for every slug (for a study that does
# not exist too), so it answers everyone signed in: it reveals no study.
DESCRIBE = Ask("OPTIONS", anyone(200, anonymous=401))


# django-axes' records are written by logins only: their admin has no add page.
LOGIN_RECORDS = {AccessAttempt, AccessLog, AccessFailureLog}
# Staff see only their own studies' rows of these: to others a row "does not exist".
OWN_STUDY_ROWS = {JudgeRun, PromptTemplate}


def model_page(view):
    """An admin page of each registered model: staff need the model's own permission, and
    `change_judge` opens only the judges' pages (deleting one is a right of its own)."""

    def for_model(model):
        staff, superuser = (302, 302) if view == "redirect" else (403, 200)
        if view == "add" and model in LOGIN_RECORDS:
            superuser = 403
        if view == "history" and model in OWN_STUDY_ROWS:
            staff = To("/admin/")
        statuses = admin_site(staff, superuser)
        if model is Judge:
            statuses["judge_staff"] = 403 if view == "delete" else superuser
        return statuses

    return for_model


def app_page(app_label):
    """An app's page of the admin lists the models the user has permissions on, if any."""
    return admin_site(404, superuser=200) | ({"judge_staff": 200} if app_label == "judging" else {})


MATRIX = {
    "": [Ask("GET", anyone(200))],
    "studies/<slug:slug>/": [Ask("GET", researchers(200))],
    # Starting a study: staff and the researchers of any study.
    "studies/new/": [
        Ask("GET", expect(404, anonymous=LOGIN, **dict.fromkeys((*RESEARCHERS, *STAFF), 200)))
    ],
    "studies/markdown-preview/": [
        Ask(
            "POST",
            expect(404, anonymous=LOGIN, **dict.fromkeys((*RESEARCHERS, *STAFF), 200)),
            data={"text": "*hi*"},
        ),
        Ask("GET", anyone(405)),
    ],
    "studies/<slug:slug>/settings/": [Ask("GET", admins(200))],
    "studies/<slug:slug>/clone/": [Ask("POST", admins(302)), Ask("GET", anyone(405))],
    "studies/<slug:slug>/archive/": [Ask("POST", admins(302)), Ask("GET", anyone(405))],
    "studies/<slug:slug>/status/": [
        Ask("POST", admins(302), data={"status": "paused"}),
        Ask("GET", anyone(405)),
    ],
    "studies/<slug:slug>/rubric/": [Ask("GET", admins(200))],
    "studies/<slug:slug>/rubric/preview/": [
        Ask("POST", admins(200), data={"definition": json.dumps(PAIRWISE_RUBRIC)}),
        Ask("GET", anyone(405)),
    ],
    "studies/<slug:slug>/report/": [Ask("GET", researchers(200))],
    "studies/<slug:slug>/judge-runs/estimate/": [Ask("GET", researchers(200), query=RUN_FORM)],
    "studies/<slug:slug>/judge-runs/start/": [
        Ask("POST", researchers(302), data=RUN_FORM),
        Ask("GET", anyone(405)),  # the same for every study: it reveals none
    ],
    "studies/<slug:slug>/judge-runs/<int:pk>/": [
        Ask("GET", researchers(200)),
        Ask("GET", expect(404, anonymous=LOGIN), args=OTHER_RUN),
    ],
    "studies/<slug:slug>/judge-runs/<int:pk>/cancel/": [
        Ask("POST", researchers(302)),
        Ask("POST", expect(404, anonymous=LOGIN), args=OTHER_RUN),
        Ask("GET", anyone(405)),
    ],
    "s/<slug:slug>/join": [
        # Signed in with an account of their own, a visitor is asked first (a 200 page);
        # anyone else becomes the participant and goes to label.
        Ask("GET", expect(200, anonymous=302, participant=302), query=JOIN),
        Ask("GET", expect(404), query={**JOIN, "token": "other-qz4-join"}),
        Ask("POST", expect(302), query=JOIN, csrf="token"),
        Ask("POST", expect(403), query=JOIN, csrf="no token"),
    ],
    "s/<slug:slug>/label/": [
        Ask("GET", members(200)),
        Ask("POST", members(302), data={"item": "q1", "action": "skip"}),
    ],
    "s/<slug:slug>/label/<path:external_id>/": [
        Ask("GET", members(200)),
        Ask("POST", members(302), data={"item": "q0", "q:pref": "B"}),
    ],
    "s/<slug:slug>/done/": [Ask("GET", members(200))],
    "s/<slug:slug>/queue/": [
        Ask("GET", experts(200)),
        # q1 is not in the queue: the decision is refused, to experts only.
        Ask("POST", experts(400), data={"item": "q1", "action": "unresolved"}),
    ],
    "s/<slug:slug>/items/<path:external_id>/history/": [Ask("GET", experts(200))],
    "s/<slug:slug>/items/<path:external_id>/gold/": [
        Ask("POST", researchers(400)),  # q0 has no adjudication
        Ask("GET", anyone(405)),
    ],
    "studies/<slug:slug>/final-labels.csv": [Ask("GET", researchers(200))],
    "studies/<slug:slug>/upload/": [
        Ask("GET", researchers(200)),
        Ask("POST", researchers(400), data={"kind": "items"}),  # no file: the form again
    ],
    "studies/<slug:slug>/uploads/<int:pk>/": [
        Ask("GET", researchers(200), args=UPLOAD),
        Ask("POST", researchers(302), args=UPLOAD),  # done already: confirming does nothing
        Ask("GET", expect(404, anonymous=LOGIN), args=OTHER_UPLOAD),
        Ask("POST", expect(404, anonymous=LOGIN), args=OTHER_UPLOAD),
    ],
    "studies/<slug:slug>/items/": [
        Ask("GET", researchers(200)),
        # A bad filter is a 400 to researchers only: the access check comes first.
        Ask("GET", researchers(400), query={"min_labels": "many"}),
    ],
    "studies/<slug:slug>/items/<path:external_id>/": [Ask("GET", researchers(200))],
    "studies/<slug:slug>/people/": [
        Ask("GET", admins(200)),
        Ask("POST", admins(302), data=INVITE),
        Ask("POST", admins(400), data={**INVITE, "names": "not a name"}),
    ],
    # The world's invitation is used: its link shows no one the study; an unknown one, 404.
    "invite/<str:token>/": [
        Ask("GET", expect(410), args=USED_INVITATION),
        Ask("POST", expect(410), args=USED_INVITATION),
        Ask("GET", expect(404), args={"token": "no_invitation"}),
    ],
    "api/studies/": [Ask("GET", anyone(200, anonymous=401)), DESCRIBE],
    "api/studies/<slug:slug>/": [
        Ask("GET", members(200, anonymous=401)),
        Ask(
            "PATCH",
            researchers(200, anonymous=401),
            data={"routing_rules": {"no_majority": True}},
            json=True,
        ),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/final-labels/": [
        Ask("GET", researchers(200, anonymous=401)),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/items/": [Ask("GET", researchers(200, anonymous=401)), DESCRIBE],
    "api/judges/": [
        Ask("GET", judge_configurers(200)),
        Ask("POST", judge_configurers(201), data=NEW_JUDGE, json=True),
        Ask("OPTIONS", judge_configurers(200)),
    ],
    "api/judges/<int:pk>/": [
        Ask("GET", judge_configurers(200), args=SPARE),
        Ask("PUT", judge_configurers(200), data=NEW_JUDGE, json=True, args=SPARE),
        Ask("PATCH", judge_configurers(200), data={"model": "m2"}, json=True, args=SPARE),
        Ask("DELETE", judge_configurers(204), args=SPARE),
        Ask("OPTIONS", judge_configurers(200), args=SPARE),
    ],
    "api/studies/<slug:slug>/judge-runs/": [
        Ask("GET", researchers(200, anonymous=401)),
        Ask("POST", researchers(201, anonymous=401), data=RUN_REQUEST, json=True),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/judge-runs/estimate/": [
        Ask("POST", researchers(200, anonymous=401), data=RUN_REQUEST, json=True),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/judge-runs/<int:pk>/": [
        Ask("GET", researchers(200, anonymous=401)),
        Ask("GET", expect(404, anonymous=401), args=OTHER_RUN),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/judge-runs/<int:pk>/cancel/": [
        Ask("POST", researchers(200, anonymous=401)),
        Ask("POST", expect(404, anonymous=401), args=OTHER_RUN),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/judge-templates/": [
        Ask("GET", researchers(200, anonymous=401)),
        DESCRIBE,
    ],
    "api/studies/<slug:slug>/judge-templates/<str:question_type>/": [
        Ask("GET", researchers(200, anonymous=401)),
        Ask("PUT", researchers(200, anonymous=401), data={}, json=True),
        Ask("DELETE", researchers(204, anonymous=401)),
        DESCRIBE,
    ],
    "api/schema/": [Ask("GET", expect(200))],
    # Any other address under /api/: a JSON 404 for the signed-in, 401 for the others.
    "^api/[\\s\\S]*/$": [Ask("GET", expect(404, anonymous=401), path="/api/no-such-endpoint/")],
    "login/": [Ask("GET", expect(200))],
    "logout/": [Ask("POST", expect(To("/login/"))), Ask("GET", expect(405))],
    # The admin, as a group: "<model>" stands for every registered model's pages.
    "admin/": [Ask("GET", admin_site(200))],
    "admin/login/": [Ask("GET", expect(200, **dict.fromkeys(STAFF, To("/admin/"))))],
    # Staff are signed out (to the site's login page); the others have no admin session.
    "admin/logout/": [Ask("POST", expect(To("/admin/"), **dict.fromkeys(STAFF, To("/login/"))))],
    "admin/password_change/": [Ask("GET", admin_site(200))],
    "admin/password_change/done/": [Ask("GET", admin_site(200))],
    "admin/autocomplete/": [Ask("GET", admin_site(403))],
    "admin/jsi18n/": [Ask("GET", admin_site(200))],
    "admin/r/<path:content_type_id>/<path:object_id>/": [
        Ask("GET", admin_site(404), args={"content_type_id": "study_type", "object_id": "study"})
    ],
    "admin/<app_label>/": [Ask("GET", app_page)],
    "admin/<model>/": [Ask("GET", model_page("changelist"))],
    "admin/<model>/add/": [Ask("GET", model_page("add"))],
    "admin/<model>/<path:object_id>/change/": [Ask("GET", model_page("change"))],
    "admin/<model>/<path:object_id>/history/": [Ask("GET", model_page("history"))],
    "admin/<model>/<path:object_id>/delete/": [Ask("GET", model_page("delete"))],
    "admin/<model>/<path:object_id>/": [Ask("GET", model_page("redirect"))],
    "admin/<model>/<id>/password/": [Ask("GET", model_page("password"))],
    "admin/(?P<url>.*)$": [Ask("GET", admin_site(404), path="/admin/no-such-page/")],
}
WEBSOCKET_MATRIX = {
    "ws/studies/<slug:slug>/progress/": expect("refused", **dict.fromkeys(RESEARCHERS, "accepted"))
}
# The object whose admin pages are asked, for each registered model: a world value.
ADMIN_SAMPLES = {
    Study: "study",
    Rubric: "rubric",
    Item: "item",
    Rater: "rater",
    Annotation: "label",
    Judge: "judge",
    JudgeRun: "run",
    PromptTemplate: "template",
    User: "annotator",
    Group: "group",
    TokenProxy: "annotator",  # a token's admin pages go by its user
    AccessAttempt: "access_attempt",
    AccessFailureLog: "access_failure",
    AccessLog: "access_log",
}


def addresses(resolver=None, prefix=""):
    """Every route of the URLconf, include()d ones and the admin's too, as written."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from addresses(pattern, route)
        else:
            yield route


def row_of(route):
    """The matrix row of a route, and the admin model it belongs to (or None)."""
    for model in admin.site._registry:
        prefix = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        if route.startswith(prefix):
            return "admin/<model>/" + route.removeprefix(prefix), model
    if "(?P<app_label>" in route:
        return "admin/<app_label>/", None
    return route, None


ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def path_of(route, args):
    """The route as a path template: each <parameter> becomes the {name} of its world value."""
    return "/" + ROUTE_PARAMETER.sub(lambda m: "{" + args[m[1]] + "}", route)


def requests():
    """(route, path template, ask, statuses) of every request the matrix asks, from the
    URLconf's own routes: a path template's {names} are world values."""
    for route in addresses():
        key, model = row_of(route)
        for ask in MATRIX[key]:
            if key == "admin/<app_label>/":
                for label in sorted({m._meta.app_label for m in admin.site._registry}):
                    yield route, f"/admin/{label}/", ask, ask.expected(label)
                continue
            args = dict(ask.args)
            if model is not None:
                args["object_id"] = args["id"] = ADMIN_SAMPLES[model]
            statuses = ask.expected(model) if callable(ask.expected) else ask.expected
            yield route, ask.path or path_of(route, args), ask, statuses


def tagged_study(tag):
    """An open study every string of whose data carries `tag`, its slug, with three items."""
    study = make_study(
        tag,
        name=f"Study {tag}",
        rubric={**PAIRWISE_RUBRIC, "name": f"Rubric {tag}"},
        status=Study.Status.OPEN,
        instructions=f"Instructions {tag}",
        join_token=f"{tag}-join",
        completion_code=f"{tag}-code",
    )
    for i in range(3):
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt=f"Prompt {i} of {tag}",
            responses=[
                {"key": "A", "text": f"Answer A {tag}", "model": "m1"},
                {"key": "B", "text": f"Answer B {tag}", "model": "m2"},
            ],
        )
    PromptTemplate.objects.create(
        study=study,
        question_type="pairwise",
        system=f"System {tag}",
        user=f"Judge {tag}: {{prompt}} {{response_a}} {{response_b}}",
    )
    return study


def label(study, user):
    return Annotation.objects.create(
        item=study.items.get(external_id="q0"),
        rater=rater_for(user),
        rubric_version=study.rubric_version,
        answers={"pref": "A", "why": f"Because {study.slug}"},
        order=Annotation.Order.AB,
        source=Annotation.Source.UI,
        submitted_at=timezone.now(),
    )


def login_records():
    """One of each of django-axes' records of logins, for their admin pages."""
    seen = {"user_agent": "test", "ip_address": "127.0.0.1", "username": "bob", "path_info": "/"}
    attempt = {"get_data": "", "post_data": "", "failures_since_start": 1}
    return {
        "access_attempt": AccessAttempt.objects.create(**seen, **attempt).pk,
        "access_failure": AccessFailureLog.objects.create(**seen).pk,
        "access_log": AccessLog.objects.create(**seen).pk,
    }


def build_world():
    """The two studies, a user for each role, and the values a route's parameters take."""
    study, other = tagged_study(TAGS["study"]), tagged_study(TAGS["other"])
    judge = Judge.objects.create(name="gpt-judge", base_url="http://127.0.0.1:9/v1", model="m")
    spare = Judge.objects.create(name="spare-judge", base_url="http://127.0.0.1:9/v1", model="m")
    runs = {}
    for s in (study, other):
        runs[s] = plan_run(s, judge, ["pref"])
        JudgeRun.objects.filter(pk=runs[s].pk).update(error=f"Run error {s.slug}")
    Role = StudyMembership.Role
    users = {
        "participant": study.participant("w1"),
        "annotator": make_user("bob", Role.ANNOTATOR, study),
        "expert": make_user("carol", Role.EXPERT, study),
        "researcher": make_user("dan", Role.RESEARCHER, study),
        "admin": make_user("alice", Role.ADMIN, study),
        "other_annotator": make_user("olga", Role.ANNOTATOR, other),
        "staff": User.objects.create_user("sam", password="pw-for-tests-only", is_staff=True),
        "judge_staff": User.objects.create_user("jo", password="pw-for-tests-only", is_staff=True),
        "superuser": User.objects.create_superuser("root", password="pw-for-tests-only"),
    }
    users["judge_staff"].user_permissions.add(Permission.objects.get(codename="change_judge"))
    labels = {role: label(study, users[role]) for role in MEMBERS}
    label(other, users["other_annotator"])
    Token.objects.create(user=users["annotator"])
    uploads = {
        s: Upload.objects.create(
            study=s,
            kind=Upload.Kind.ITEMS,
            filename=f"items-{s.slug}.jsonl",
            path=f"/nowhere/{s.slug}.jsonl",
            state=Upload.State.DONE,
            summary="3 items imported",
            created_by=by,
        )
        for s, by in ((study, users["researcher"]), (other, users["other_annotator"]))
    }
    Invitation.objects.create(
        study=study,
        name="newcomer",
        role=Role.ANNOTATOR,
        token="used-invitation-token",
        expires_at=timezone.now() + timedelta(days=7),
        used_at=timezone.now(),
        used_by=users["annotator"],
    )
    values = {
        "slug": study.slug,
        "labelled_item": "q0",
        "run": runs[study].pk,
        "other_run": runs[other].pk,
        "upload": uploads[study].pk,
        "other_upload": uploads[other].pk,
        "spare_judge": spare.pk,
        "question_type": "pairwise",
        "study_type": ContentType.objects.get_for_model(Study).pk,
        "study": study.pk,
        "rubric": study.rubric_id,
        "item": study.items.get(external_id="q0").pk,
        "rater": labels["annotator"].rater_id,
        "label": labels["annotator"].pk,
        "judge": judge.pk,
        "template": study.prompt_templates.get().pk,
        "annotator": users["annotator"].pk,
        "group": Group.objects.create(name="reviewers").pk,
        "used_invitation": "used-invitation-token",
        "no_invitation": "no-such-invitation",
        **login_records(),
    }
    return users, values


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Ten users per test: the default hasher's deliberate slowness would be most of the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def send(user, ask, path):
    client = Client(enforce_csrf_checks=ask.csrf is not None)
    if user is not None:
        client.force_login(user)
    data = dict(ask.data or {})
    if ask.csrf == "token":
        client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_TOKEN
        data["csrfmiddlewaretoken"] = CSRF_TOKEN
    if ask.query:
        path += "?" + urlencode(ask.query)
    if ask.json:
        return client.generic(ask.method, path, json.dumps(data), content_type="application/json")
    if ask.method == "GET":
        return client.get(path)
    if ask.method == "POST":
        return client.post(path, data)
    return client.generic(ask.method, path)


def outcome(response):
    """The status, and where a redirect goes: what a failure message shows."""
    if response.status_code in (301, 302):
        return f"{response.status_code} to {response['Location']}"
    return str(response.status_code)


def as_expected(expected, response):
    if isinstance(expected, To):
        return response.status_code == 302 and response["Location"].startswith(expected)
    return response.status_code == expected


def leaks(role, route, text):
    """The tags in a response of studies the role may not see there: on a study's own pages
    no other study's, on site-wide ones (lists, judges, the admin) none but the role's own."""
    hidden = {"other"} if "<slug:slug>" in route else set(TAGS) - VISIBLE[role]
    return [
        f"shows {TAGS[s]!r}: …{text[max(i - 80, 0) : i + 40]}…"
        for s in sorted(hidden)
        if (i := text.find(TAGS[s])) >= 0
    ]


def test_it_has_a_row_for_every_address():
    """A new page, endpoint or socket fails here until the matrix says who may open it."""
    routes = [row_of(route)[0] for route in addresses()]
    sockets = [str(p.pattern) for p in websocket_urlpatterns]
    assert sorted(set(routes) - set(MATRIX)) == [], "routes without a row in MATRIX"
    assert sorted(set(sockets) - set(WEBSOCKET_MATRIX)) == [], "sockets without a row"
    assert sorted(set(MATRIX) - set(routes)) == [], "rows of routes that are gone"
    assert sorted(set(WEBSOCKET_MATRIX) - set(sockets)) == [], "rows of sockets that are gone"
    assert set(admin.site._registry) - set(ADMIN_SAMPLES) == set(), "admin models, no sample"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_it_answers_every_address_as_the_matrix_says(role):
    """Each role against every request of the matrix; all that is wrong is listed at once."""
    users, values = build_world()
    wrong = []
    for route, template, ask, statuses in requests():
        path = template.format_map(values)
        with transaction.atomic():  # each request meets the world as built
            response = send(users.get(role), ask, path)
            # A streamed body is made as it is read: read it in the world it came from.
            body = b"".join(response.streaming_content) if response.streaming else response.content
            transaction.set_rollback(True)
        said = f"{ask.method} {path} as {role}"
        if not as_expected(statuses[role], response):
            wrong.append(f"{said}: expected {statuses[role]}, got {outcome(response)}")
        text = body.decode(errors="replace") + response.get("Location", "")
        wrong += [f"{said}: {leak}" for leak in leaks(role, route, text)]
    assert wrong == [], "\n".join(wrong)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
def test_it_lists_a_users_own_studies_and_no_others(role):
    """The studies page and the API list show each user the studies they belong to, all of
    them for a superuser; the matrix checks they show no others."""
    users, _ = build_world()
    client = Client()
    client.force_login(users[role])
    page = client.get("/").content.decode()
    listed = {s["slug"] for s in client.get("/api/studies/").json()["results"]}
    own = {TAGS[s] for s in VISIBLE[role]}
    assert listed == own
    assert {slug for slug in TAGS.values() if slug in page} == own


@pytest.mark.django_db(transaction=True)  # the consumer reads the database from its own thread
def test_it_lets_only_a_studys_researchers_watch_it_live():
    # Imported here, once the test's settings hold: quorum.asgi checks them as it loads.
    from quorum.asgi import application

    users, values = build_world()
    # A page of the site itself: the socket refuses other sites' pages (and no origin).
    origin = (b"origin", f"http://{settings.ALLOWED_HOSTS[0]}".encode())
    wrong = []
    for route, statuses in WEBSOCKET_MATRIX.items():
        path = path_of(route, DEFAULT_ARGS).format_map(values)
        for role in ROLES:
            headers = [origin]
            if role != "anonymous":
                client = Client()
                client.force_login(users[role])
                session = client.cookies[settings.SESSION_COOKIE_NAME].value
                headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
            got, text = asyncio.run(watch(application, path, headers))
            if got != statuses[role]:
                wrong.append(f"{path} as {role}: expected {statuses[role]}, got {got}")
            wrong += [f"{path} as {role}: {leak}" for leak in leaks(role, route, text)]
    assert wrong == [], "\n".join(wrong)


async def watch(application, path, headers):
    """Whether the socket was accepted, and the first message it sent."""
    communicator = WebsocketCommunicator(application, path, headers)
    connected, _ = await communicator.connect()
    text = await communicator.receive_from(timeout=5) if connected else ""
    await communicator.disconnect()
    await database_sync_to_async(connections.close_all)()  # the consumer's thread's
    return ("accepted" if connected else "refused"), text
