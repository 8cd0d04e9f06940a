"""The upload page: researchers send an items or labels file from the browser, see its first
rows, confirm, and a Celery worker imports it all or nothing while the page shows progress."""

import csv
import io
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import REPO, make_study, make_user, subprocess_env
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.urls import reverse

from annotation.imports import import_items, import_labels
from annotation.models import Annotation, Item, StudyChange, StudyMembership, Upload
from quorum.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return settings.UPLOAD_DIR


@pytest.fixture
def dan(study):
    """Dan the researcher."""
    return make_user("dan", StudyMembership.Role.RESEARCHER, study)


@pytest.fixture
def client(dan):
    client = Client()
    client.force_login(dan)
    return client


def item(n, **fields):
    return {
        "external_id": f"item-{n:02}",
        "prompt": f"Prompt number {n}",
        "responses": [{"key": "A", "text": f"A{n}", "model": "m1"}, {"key": "B", "text": f"B{n}"}],
        **fields,
    }


def jsonl(*records):
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def send(client, study, name, content, kind="items", update=False):
    data = {"kind": kind, "file": SimpleUploadedFile(name, content)}
    if update:
        data["update"] = "on"
    return client.post(reverse("annotation:upload", args=[study.slug]), data)


def status_url(upload):
    return reverse("annotation:upload-status", args=[upload.study.slug, upload.pk])


def uploaded(client, study, name, content, **options):
    """Send a file that the page accepts: its Upload, awaiting confirmation."""
    response = send(client, study, name, content, **options)
    upload = Upload.objects.latest("pk")
    assert response.status_code == 302
    assert response["Location"] == status_url(upload)
    return upload


def confirm(client, upload, callbacks):
    """Press Import; the task it sends on commit runs here (eager_tasks)."""
    with callbacks(execute=True):
        response = client.post(status_url(upload))
    assert response.status_code == 302
    upload.refresh_from_db()
    return upload


def progress(client, upload):
    return client.get(status_url(upload), HTTP_ACCEPT="application/json").json()


def test_it_previews_a_jsonl_items_file_then_imports_it(
    client, study, dan, upload_dir, eager_tasks, django_capture_on_commit_callbacks
):
    content = jsonl(*(item(n) for n in range(1, 13)))
    upload = uploaded(client, study, "batch one.jsonl", content)

    assert (upload.state, upload.filename, upload.total_bytes) == (
        "awaiting",
        "batch one.jsonl",
        len(content),
    )
    stored = list(upload_dir.iterdir())
    assert [p.read_bytes() for p in stored] == [content]
    assert "batch" not in stored[0].name and stored[0].suffix == ".jsonl"
    page = client.get(status_url(upload)).content.decode()
    assert "12 items." in page
    assert "<code>item-10</code>" in page and "<code>item-11</code>" not in page  # 10 rows
    assert "Prompt number 1</td>" in page
    assert f" · {filesizeformat(len(content))} · " in page
    assert Item.objects.count() == 0  # nothing before the researcher confirms

    upload = confirm(client, upload, django_capture_on_commit_callbacks)

    assert upload.state == "done"
    assert upload.summary == "12 items imported"
    assert upload.finished_at is not None
    assert sorted(study.items.values_list("external_id", flat=True)) == [
        f"item-{n:02}" for n in range(1, 13)
    ]
    assert progress(client, upload) == {
        "state": "done",
        "state_display": "Done",
        "done_bytes": len(content),
        "total_bytes": len(content),
        "errors": [],
        "summary": "12 items imported",
    }
    page = client.get(status_url(upload)).content.decode()
    assert f'max="{len(content)}" value="{len(content)}">100%</progress>' in page
    assert "12 items imported" in page
    assert list(upload_dir.glob("*")) == []  # the stored file is gone
    change = StudyChange.objects.get(study=study)
    assert (change.user, change.what, change.before, change.after) == (
        dan,
        "items",
        "",
        "12 items imported",
    )


def test_it_imports_a_csv_items_file(
    client, study, eager_tasks, django_capture_on_commit_callbacks
):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "prompt", "response_a", "response_b", "model_a", "topic"])
    writer.writerow(["c1", "First\nprompt, quoted", "yes", "no", "gpt-x", "maths"])
    writer.writerow(["c2", "Second prompt", "up", "down", "", ""])
    upload = uploaded(client, study, "items.csv", out.getvalue().encode())

    page = client.get(status_url(upload)).content.decode()
    assert "2 items." in page
    assert re.search(r"<td>4</td>\s*<td><code>c2</code>", page)  # c1's prompt spans 2 lines

    upload = confirm(client, upload, django_capture_on_commit_callbacks)

    assert (upload.state, upload.summary) == ("done", "2 items imported")
    first = study.items.get(external_id="c1")
    assert first.prompt == "First\nprompt, quoted"
    assert first.metadata == {"topic": "maths"}
    assert first.responses[0] == {"key": "A", "text": "yes", "model": "gpt-x"}
    assert progress(client, upload)["done_bytes"] == upload.total_bytes


def test_a_bad_items_file_fails_with_its_line_and_writes_nothing(
    client, study, upload_dir, eager_tasks, django_capture_on_commit_callbacks
):
    lines = [item(1), item(2), {**item(3), "responses": "none"}, item(4)]
    upload = uploaded(client, study, "bad.jsonl", jsonl(*lines))
    page = client.get(status_url(upload)).content.decode()
    assert "1 row the import will refuse" in page  # the preview checks each item too

    upload = confirm(client, upload, django_capture_on_commit_callbacks)

    expected = 'bad.jsonl:3: "responses" must be a list of 2+ objects with "text"'
    assert upload.state == "failed"
    assert upload.errors == [expected]
    assert upload.summary == ""
    assert Item.objects.count() == 0
    assert not StudyChange.objects.exists()
    assert list(upload_dir.glob("*")) == []
    page = client.get(status_url(upload)).content.decode()
    assert f"<li><code>{expected.replace(chr(34), '&quot;')}</code></li>" in page
    assert str(upload_dir) not in page  # the name it was sent as, not where it waited
    assert progress(client, upload)["errors"] == [expected]


def test_it_imports_a_labels_csv(
    client, study, write, eager_tasks, django_capture_on_commit_callbacks
):
    import_items(study, write("items.jsonl", jsonl(item(1), item(2)).decode()))
    content = (
        b"item,rater,kind,question,value,order\n"
        b"item-01,ann1,human,pref,A,AB\n"
        b"item-01,ann1,human,why,clearer,AB\n"
        b"item-02,ann1,,pref,tie,BA\n"
        b"item-02,judge-x,llm,pref,B,AB\n"
    )
    upload = uploaded(client, study, "labels.csv", content, kind="labels")

    page = client.get(status_url(upload)).content.decode()
    assert "4 label rows." in page
    assert "<td>judge-x</td><td>llm</td>" in page
    assert (
        "<td>ann1</td><td>human</td><td><code>pref</code></td><td>tie</td>" in page
    )  # kind defaults

    upload = confirm(client, upload, django_capture_on_commit_callbacks)

    assert (upload.state, upload.summary) == ("done", "3 labels imported")
    labels = Annotation.objects.of_study(study).current()
    assert sorted(labels.values_list("item__external_id", "rater__name", "answers__pref")) == [
        ("item-01", "ann1", "A"),
        ("item-02", "ann1", "tie"),
        ("item-02", "judge-x", "B"),
    ]
    assert StudyChange.objects.get(study=study, what="labels").after == "3 labels imported"


def test_it_shows_gold_items_and_imports_their_answers(
    client, study, eager_tasks, django_capture_on_commit_callbacks
):
    content = jsonl(item(1), item(2, gold={"pref": "B"}), item(3, gold={"pref": "tie"}))
    upload = uploaded(client, study, "gold.jsonl", content)

    page = client.get(status_url(upload)).content.decode()
    assert "3 items, 2 of them gold" in page
    assert "<code>pref</code> = B" in page

    confirm(client, upload, django_capture_on_commit_callbacks)

    gold = study.items.filter(is_gold=True).order_by("external_id")
    assert [(i.external_id, i.gold_answers) for i in gold] == [
        ("item-02", {"pref": "B"}),
        ("item-03", {"pref": "tie"}),
    ]


def test_it_updates_existing_items_only_when_asked(
    client, study, write, eager_tasks, django_capture_on_commit_callbacks
):
    import_items(study, write("items.jsonl", jsonl(item(1)).decode()))
    changed = jsonl({**item(1), "prompt": "Changed"}, item(2))

    refused = confirm(
        client, uploaded(client, study, "again.jsonl", changed), django_capture_on_commit_callbacks
    )
    assert refused.state == "failed"
    assert refused.errors[0].startswith("again.jsonl:1: \"external_id\" 'item-01' is already")
    updated = uploaded(client, study, "again.jsonl", changed, update=True)
    updated = confirm(client, updated, django_capture_on_commit_callbacks)

    assert (updated.state, updated.summary) == ("done", "1 item imported, 1 updated")
    assert study.items.get(external_id="item-01").prompt == "Changed"


def test_confirming_twice_queues_the_import_once(client, study, django_capture_on_commit_callbacks):
    upload = uploaded(client, study, "items.jsonl", jsonl(item(1)))
    with django_capture_on_commit_callbacks() as sent:
        first = client.post(status_url(upload))
        second = client.post(status_url(upload))

    assert first.status_code == second.status_code == 302
    assert len(sent) == 1
    upload.refresh_from_db()
    assert upload.state == "queued"
    assert progress(client, upload)["state"] == "queued"


def test_it_refuses_a_file_that_is_not_utf8_at_once(client, study, upload_dir):
    content = jsonl(item(1)) + '{"prompt": "café"}\n'.encode("latin-1")
    response = send(client, study, "latin.jsonl", content)

    assert response.status_code == 400
    assert "latin.jsonl:2: is not UTF-8 text" in response.content.decode()
    assert not Upload.objects.exists()
    assert list(upload_dir.glob("*")) == []


@pytest.mark.parametrize(
    ("kind", "name", "content", "message"),
    [
        ("items", "items.txt", b"{}", "items.txt: expected a .jsonl or .csv file of items"),
        ("labels", "labels.jsonl", b"{}", "labels.jsonl: expected a .csv file of labels"),
        (
            "labels",
            "labels.csv",
            b"item,rater,question\nq1,ann1,pref\n",
            "labels.csv:1: &quot;value&quot; is a required column",
        ),
        ("items", "empty.jsonl", b"\n\n", "empty.jsonl: holds no items"),
        ("items", "broken.jsonl", b"{not json\n", "broken.jsonl:1: is not valid JSON"),
    ],
)
def test_it_refuses_a_file_it_cannot_read(client, study, upload_dir, kind, name, content, message):
    response = send(client, study, name, content, kind=kind)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Upload.objects.exists()
    assert list(upload_dir.glob("*")) == []


def test_a_post_without_a_file_is_the_form_again(client, study):
    response = client.post(reverse("annotation:upload", args=[study.slug]), {"kind": "items"})

    assert response.status_code == 400
    assert 'id="file-error"' in response.content.decode()


def test_a_crashed_import_ends_failed_with_the_reason(
    client, study, eager_tasks, django_capture_on_commit_callbacks
):
    upload = uploaded(client, study, "items.jsonl", jsonl(item(1)))
    with django_capture_on_commit_callbacks() as sent:
        client.post(status_url(upload))
    gone = str(Path(upload.path).with_name("gone.jsonl"))  # lost on the way to the worker
    Upload.objects.filter(pk=upload.pk).update(path=gone)

    sent[0]()
    upload.refresh_from_db()

    assert upload.state == "failed"
    assert upload.errors == ["items.jsonl: No such file or directory"]
    assert upload.finished_at is not None


def test_the_upload_page_lists_the_studys_recent_uploads(client, study, dan):
    mine = uploaded(client, study, "mine.jsonl", jsonl(item(1)))
    other = make_study("other-study")
    Upload.objects.create(study=other, kind="items", filename="theirs.jsonl", path="/nowhere")

    page = client.get(reverse("annotation:upload", args=[study.slug])).content.decode()

    assert f'<a href="{status_url(mine)}">mine.jsonl</a>' in page
    assert "theirs.jsonl" not in page


def test_an_annotator_gets_404(study, bob, dan, client):
    upload = uploaded(client, study, "items.jsonl", jsonl(item(1)))
    annotator = Client()
    annotator.force_login(bob)

    assert annotator.get(reverse("annotation:upload", args=[study.slug])).status_code == 404
    assert send(annotator, study, "items.jsonl", jsonl(item(2))).status_code == 404
    assert annotator.get(status_url(upload)).status_code == 404
    assert annotator.post(status_url(upload)).status_code == 404
    upload.refresh_from_db()
    assert upload.state == "awaiting"
    assert Upload.objects.count() == 1


def test_another_studys_upload_is_404_under_this_study(client, study, dan):
    other = make_study("other-study")
    make_user("olga", StudyMembership.Role.RESEARCHER, other)
    theirs = Upload.objects.create(study=other, kind="items", filename="t.jsonl", path="/nowhere")
    address = reverse("annotation:upload-status", args=[study.slug, theirs.pk])

    assert client.get(address).status_code == 404
    assert client.post(address).status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == "awaiting"


def test_the_import_reports_the_bytes_it_has_read(study, write):
    items = write("items.jsonl", jsonl(*(item(n) for n in range(1, 301))).decode())
    seen = []
    import_items(study, items, progress=seen.append)

    size = items.stat().st_size
    assert seen[-1] == size
    assert seen == sorted(seen)
    assert 90 <= len(seen) <= 110  # every 1% of the file, and the end

    rows = "".join(f"item-{n:02},ann1,,pref,A,AB\n" for n in range(1, 301))
    labels = write("labels.csv", "item,rater,kind,question,value,order\n" + rows)
    told = []
    import_labels(study, labels, progress=told.append)
    assert told[-1] == labels.stat().st_size
    assert told == sorted(told) and len(told) > 50


@pytest.fixture
def own_queue():
    """Tasks sent by this test go to a queue of its own, which only its worker reads."""
    queue = f"test-{uuid.uuid4().hex}"
    default = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = default


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_imports_an_upload_while_the_page_polls(own_queue, upload_dir):
    study = make_study("worker-upload")
    dan = make_user("dan", StudyMembership.Role.RESEARCHER, study)
    client = Client()
    client.force_login(dan)
    content = jsonl(*(item(n) for n in range(1, 51)))
    upload = uploaded(client, study, "worker.jsonl", content)
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "quorum", "worker", "-Q", own_queue),
            *("--concurrency=1", "--pool=solo", "--loglevel=info"),
        ],
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        client.post(status_url(upload))  # committed at once: the task is sent now
        deadline = time.monotonic() + 90
        state = progress(client, upload)
        while state["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.3)
            state = progress(client, upload)
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0]

    assert state["state"] == "done", log
    assert state["done_bytes"] == state["total_bytes"] == len(content)
    assert state["summary"] == "50 items imported"
    assert study.items.count() == 50
    assert list(upload_dir.glob("*")) == []
    assert StudyChange.objects.filter(study=study, what="items").count() == 1
