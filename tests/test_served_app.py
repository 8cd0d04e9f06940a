"""What a new user meets after `make run`: the demo loaded, the ASGI server up, a login.

Runs the same commands as `make run` (load_demo, uvicorn) as real processes on loopback.
"""

import asyncio
import json
import re
import subprocess
import sys

import websockets
from conftest import REPO, login, subprocess_env

from annotation.models import Study
from calibration.reports import build_report


def test_it_lets_the_printed_admin_log_in_and_see_the_demo_study(demo_server):
    base, output = demo_server
    client = login(base, output, "demo-admin")
    studies = client.get("/")
    assert "PandaLM demo" in studies.text
    page = client.get("/studies/demo/")
    assert page.status_code == 200
    assert re.search(r'data-counter="items">300<', page.text)
    assert re.search(r'data-counter="human_labels">900<', page.text)
    css = client.get("/static/css/quorum.css")
    assert css.status_code == 200 and "--accent" in css.text


def test_it_keeps_a_demo_annotator_out_of_the_study_dashboard(demo_server):
    base, output = demo_server
    client = login(base, output, "demo-annotator-1")
    assert "PandaLM demo" in client.get("/").text
    assert client.get("/studies/demo/").status_code == 404


def test_it_streams_live_counters_over_a_websocket(demo_server):
    base, output = demo_server
    client = login(base, output, "demo-admin")
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    url = base.replace("http", "ws") + "/ws/studies/demo/progress/"

    async def first_message():
        async with websockets.connect(
            url,
            additional_headers={
                "Cookie": cookie,
                "Origin": base,
            },
        ) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    counts = asyncio.run(first_message())
    assert counts["items"] == 300
    assert counts["complete_items"] == Study.objects.get(slug="demo").progress()["complete_items"]
    assert counts["judges"] == 1


# What a web process serves, driven in a fresh interpreter that loads the app as uvicorn does;
# it prints which of the report's libraries got imported.
SERVE_WITHOUT_A_REPORT = """
import json, re, sys, uuid
import quorum.asgi
from django.contrib.auth import get_user_model
from django.test import Client

def client_of(username):
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=username))
    return client

def field(page, name):
    return re.search(rf'name="{name}" value="([^"]*)"', page)[1]

admin, annotator = client_of("demo-admin"), client_of("demo-annotator-1")
statuses = [admin.get("/studies/demo/report/").status_code]  # built, before this label
page = annotator.get("/s/demo/label/").content.decode()
answer = {"item": field(page, "item"), "ticket": field(page, "ticket"), "q:pref": "A",
          "submission_id": str(uuid.uuid4()), "action": "submit"}
statuses.append(annotator.post("/s/demo/label/", answer).status_code)
statuses += [admin.get(path).status_code for path in ("/", "/studies/demo/", "/s/demo/label/")]
heavy = sorted(m for m in ("pandas", "numpy", "matplotlib", "pyarrow") if m in sys.modules)
print(json.dumps({"statuses": statuses, "imported": heavy}))
"""


def test_a_web_process_labels_and_shows_studies_without_loading_the_reports_libraries(
    demo_server,
):
    build_report(Study.objects.get(slug="demo"))  # the report page serves it from the cache
    served = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_A_REPORT],
        cwd=REPO,
        env=subprocess_env(DEBUG="1"),
        capture_output=True,
        text=True,
    )
    assert served.returncode == 0, served.stderr
    result = json.loads(served.stdout.strip().splitlines()[-1])
    assert result == {"statuses": [200, 302, 200, 200, 200], "imported": []}, served.stderr
