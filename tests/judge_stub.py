"""A local OpenAI-compatible judge: real HTTP on a loopback port, behaviour set by the test.

The judging tests and the benchmark talk to this server instead of a provider, so the client
is exercised through its own HTTP stack (connections, timeouts, retries, headers) rather than
through mocks of httpx. It is a plain ASGI app, `JudgeStub`, served by uvicorn in a thread:

    with running_stub(StubConfig(bias="longer", latency=0.05)) as base_url:
        client = JudgeClient(base_url=base_url, model="stub-judge")   # http://127.0.0.1:PORT/v1

Pass a `JudgeStub` instead of a config to keep a handle on what it received (`stub.requests`,
`stub.attempts`, `stub.max_in_flight`, ...). `StubServer(stub).start()` / `.stop()` do the same
for fixtures and scripts that cannot use a `with` block; `python tests/judge_stub.py --port 8100
--bias first` serves it on its own, so a benchmark can keep the server out of its process.

Endpoints: `POST /v1/chat/completions` and `GET /v1/models`, in OpenAI's shapes; with
`api_key` set, both answer 401 unless the request carries `Authorization: Bearer <api_key>`.

The prompt contract (the real prompt templates use the same markers, as MT-Bench does):

- A pairwise prompt puts the two responses in the last user message between
  `[The Start of Assistant A's Answer]` and `[The End of Assistant A's Answer]`, and likewise
  for B. The stub replies with a one-sentence rationale, then `[[A]]`, `[[B]]` or `[[C]]` (tie).
- Any other prompt is a single-response question. If some message mentions `[[YES]]` or
  `[[NO]]` it is a yes/no question, answered `[[<yes_no_verdict>]]`; otherwise it is a rating,
  answered `Rating: [[<rating_verdict>]]`.

Whether a request fails, and how, is drawn from a hash of (seed, request body, attempt number),
so a run is reproducible, and a retry of the same body (its attempt number one higher) can get
a different outcome, as with a real provider. `script` overrides the draw for the first
attempts of every body, for tests that need an exact sequence such as 429, 429, success.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

import uvicorn

BIASES = ("none", "first", "longer", "random")
OUTCOMES = ("ok", "rate_limit", "server_error", "timeout", "malformed_json", "no_verdict")
ANSWER_MARKERS = {
    slot: re.compile(
        rf"\[The Start of Assistant {slot}'s Answer\]\s*(.*?)\s*"
        rf"\[The End of Assistant {slot}'s Answer\]",
        re.DOTALL,
    )
    for slot in "AB"
}
YES_NO_MARKER = re.compile(r"\[\[(YES|NO)\]\]", re.IGNORECASE)
WORD_TOKENS = re.compile(r"\S+\s*|\s+")
TOKEN_LOGPROB = -0.01  # ordinary rationale tokens: all but certain
UNLIKELY = -9999.0  # what OpenAI reports for a token with no probability left
REMEMBERED_BODIES = 1000


@dataclass
class StubConfig:
    """How the stub behaves. Rates are shares of requests in [0, 1] and must sum to at most 1."""

    latency: float = 0.0  # seconds from a request's arrival to its reply, errors included
    error_rate: float = 0.0  # answered 429 or 500
    rate_limit_share: float = 0.5  # of those errors, the share that are 429 (the rest 500)
    retry_after: float = 1.0  # the 429's Retry-After header, seconds (fractions allowed)
    timeout_rate: float = 0.0  # hang for hang_seconds before answering: the client times out
    hang_seconds: float = 30.0
    malformed_rate: float = 0.0  # 200 with a truncated JSON body, or a reply with no verdict
    bias: str = "none"  # none | first | longer | random; see JudgeStub.pairwise_verdict
    seed: int = 0
    script: tuple[str, ...] = ()  # outcomes (see OUTCOMES) of the first attempts of each body
    api_key: str = ""  # when set, required as "Authorization: Bearer <api_key>"
    model: str = "stub-judge"  # listed by /v1/models; replies echo the requested model
    rating_verdict: str = "5"
    yes_no_verdict: str = "YES"
    verdict_confidence: float = 0.9  # probability given to the verdict token in logprobs

    def __post_init__(self):
        if self.bias not in BIASES:
            raise ValueError(f"bias must be one of {BIASES}, not {self.bias!r}")
        rates = (self.error_rate, self.timeout_rate, self.malformed_rate, self.rate_limit_share)
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("rates and shares must lie in [0, 1]")
        if self.error_rate + self.timeout_rate + self.malformed_rate > 1.0:
            raise ValueError("error_rate + timeout_rate + malformed_rate must be at most 1")
        if not 0.0 < self.verdict_confidence <= 1.0:
            raise ValueError("verdict_confidence must lie in (0, 1]")
        self.script = tuple(self.script)
        if unknown := set(self.script) - set(OUTCOMES):
            raise ValueError(f"unknown outcomes in script: {sorted(unknown)}; see {OUTCOMES}")


class JudgeStub:
    """The ASGI app. Its counters are what tests assert on; `reset()` clears them.

    requests: chat-completion requests received, whatever became of them.
    attempts: how many times each distinct body arrived (keyed by its SHA-256), so a test sees
        retries as `list(stub.attempts.values())`.
    outcomes: how many requests got each outcome of OUTCOMES.
    bodies: the last 1,000 request bodies, parsed, to check what the client sent.
    authorizations: how many requests carried each Authorization header ("" for none).
    max_in_flight: the most requests being handled at once: the client's real concurrency.
    """

    def __init__(self, config=None):
        self.config = config or StubConfig()
        self._loop = None  # the serving event loop and its "stopping" event, from the lifespan
        self._stopping = None
        self.in_flight = 0  # not reset: requests under way still finish and count down
        self.reset()

    def reset(self):
        self.requests = 0
        self.attempts = Counter()
        self.outcomes = Counter()
        self.bodies = deque(maxlen=REMEMBERED_BODIES)
        self.authorizations = Counter()  # Authorization headers received ("" when none)
        self.max_in_flight = self.in_flight

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _handle(self, scope, receive, send):
        arrived = time.monotonic()
        path = scope["path"].rstrip("/")
        routes = {"/v1/chat/completions": "POST", "/v1/models": "GET"}
        if path not in routes:
            await _send_error(send, 404, f"Unknown path {path}", "invalid_request_error")
            return
        if scope["method"] != routes[path]:
            await _send_error(send, 405, "Method not allowed", "invalid_request_error")
            return
        self.authorizations[dict(scope["headers"]).get(b"authorization", b"").decode()] += 1
        if refusal := self._refuse_key(scope):
            await _send_error(send, 401, refusal, "invalid_request_error", "invalid_api_key")
            return
        if path == "/v1/models":
            await self._send_models(send)
            return
        raw = await _read_body(receive)
        self.requests += 1
        digest = hashlib.sha256(raw).hexdigest()
        self.attempts[digest] += 1
        try:
            body = json.loads(raw)
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            await _send_error(send, 400, "A JSON body with messages is required.", "invalid_json")
            return
        self.bodies.append(body)
        outcome = self.outcome(digest, self.attempts[digest])
        self.outcomes[outcome] += 1
        # The reply is made before the wait, so that it leaves `latency` after the request
        # came, however long making it took: the stub's own work is not part of the latency.
        reply = None
        if outcome in ("ok", "no_verdict"):
            reply = self.completion(body, digest, outcome == "no_verdict")
        delay = self.config.hang_seconds if outcome == "timeout" else self.config.latency
        delay -= time.monotonic() - arrived
        if not await _wait_unless_disconnected(receive, delay, self._stopping):
            return  # the client gave up; nobody is left to answer
        if outcome == "rate_limit":
            retry_after = f"{self.config.retry_after:g}"
            await _send_error(
                send,
                429,
                f"Rate limit reached for {self.config.model}; try again in {retry_after}s.",
                "requests",
                "rate_limit_exceeded",
                headers=[(b"retry-after", retry_after.encode())],
            )
        elif outcome == "server_error":
            message = "The server had an error while processing your request."
            await _send_error(send, 500, message, "server_error")
        elif outcome == "malformed_json":
            cut = b'{"id": "chatcmpl-stub", "object": "chat.completion", "choices": [{"index": 0'
            await _send(send, 200, cut)
        else:
            await _send_json(send, 200, reply)

    def release_hangs(self):
        """Answer every hanging request now; callable from any thread. A server stops at once
        rather than waiting out, or cancelling, requests that are still inside `hang_seconds`.
        """
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._loop = self._stopping = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _refuse_key(self, scope):
        """The 401 message, or "" when the key is right. A wrong key is echoed back in full,
        as providers echo part of it, so tests can check the client keeps it out of its errors.
        """
        if not self.config.api_key:
            return ""
        headers = dict(scope["headers"])
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return "You didn't provide an API key."
        if key != self.config.api_key:
            return f"Incorrect API key provided: {key}."
        return ""

    def outcome(self, digest, attempt):
        """What becomes of this attempt at this body: scripted, else drawn from the rates."""
        config = self.config
        if attempt <= len(config.script):
            return config.script[attempt - 1]
        rng = random.Random(f"{config.seed}:{digest}:{attempt}")
        draw, split = rng.random(), rng.random()
        if draw < config.timeout_rate:
            return "timeout"
        draw -= config.timeout_rate
        if draw < config.error_rate:
            return "rate_limit" if split < config.rate_limit_share else "server_error"
        draw -= config.error_rate
        if draw < config.malformed_rate:
            return "malformed_json" if split < 0.5 else "no_verdict"
        return "ok"

    def completion(self, body, digest, without_verdict=False):
        rationale, verdict, alternatives = self.judge(body["messages"], digest)
        if without_verdict:
            rationale, verdict = "I cannot tell which of these is better.", None
        tokens = WORD_TOKENS.findall(rationale)
        if verdict is not None:
            tokens += ["[[", verdict, "]]"]
        content = "".join(tokens)
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        if body.get("logprobs"):
            top = max(0, min(int(body.get("top_logprobs") or 0), 20))
            logprobs = self._token_logprobs(tokens, verdict, alternatives, top)
            choice["logprobs"] = {"content": logprobs, "refusal": None}
        prompt_tokens = sum(max(1, len(_text(m.get("content"))) // 4) for m in body["messages"])
        return {
            "id": f"chatcmpl-stub-{digest[:12]}-{self.attempts[digest]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.config.model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            },
        }

    def judge(self, messages, digest):
        """(rationale, verdict, the verdict's alternatives most likely first) for a prompt."""
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        prompt = _text(last_user.get("content"))
        answers = [ANSWER_MARKERS[slot].search(prompt) for slot in "AB"]
        if all(answers):
            verdict, rationale = self.pairwise_verdict(answers[0][1], answers[1][1], digest)
            return rationale, verdict, [verdict] + [v for v in "ABC" if v != verdict]
        if any(YES_NO_MARKER.search(_text(m.get("content"))) for m in messages):
            verdict = self.config.yes_no_verdict
            other = "NO" if verdict.upper() == "YES" else "YES"
            return "Judged against the criterion. ", verdict, [verdict, other]
        verdict = self.config.rating_verdict
        neighbours = []
        if verdict.isdigit():
            score = int(verdict)
            near = (score - 1, score + 1, score - 2, score + 2)
            neighbours = [str(s) for s in near if 1 <= s <= 10]
        return "The response addresses the question. Rating: ", verdict, [verdict, *neighbours]

    def pairwise_verdict(self, answer_a, answer_b, digest):
        """The verdict and rationale the configured bias gives for answers A and B.

        first: always A, the response shown first, whatever it says.
        longer: the one with more characters; C when both are as long.
        random: A or B, drawn from the seed and the request body, so a swapped pair is judged
            independently of the original (about half the swaps disagree).
        none: the one whose text hashes higher with the seed: blind to position and length,
            so swapping the pair swaps the verdict, and equal texts tie.
        """
        bias = self.config.bias
        if bias == "first":
            return "A", "Assistant A's answer addresses the question well. "
        if bias == "longer":
            if len(answer_a) == len(answer_b):
                return "C", "Both answers are equally detailed. "
            slot = "A" if len(answer_a) > len(answer_b) else "B"
            return slot, f"Assistant {slot}'s answer is more detailed. "
        if bias == "random":
            slot = random.Random(f"{self.config.seed}:{digest}:verdict").choice("AB")
            return slot, f"Assistant {slot}'s answer is better. "
        score_a, score_b = (
            hashlib.sha256(f"{self.config.seed}:{answer}".encode()).digest()
            for answer in (answer_a, answer_b)
        )
        if score_a == score_b:
            return "C", "The two answers are equally good. "
        slot = "A" if score_a > score_b else "B"
        return slot, f"Assistant {slot}'s answer is more helpful and accurate. "

    def _token_logprobs(self, tokens, verdict, alternatives, top):
        """One entry per token; at the verdict token, the alternatives share what the verdict
        leaves, each half as likely as the one before, so a client can compute a confidence."""
        remainder = 1.0 - self.config.verdict_confidence
        weights = [0.5**k for k in range(1, len(alternatives))]
        probabilities = [self.config.verdict_confidence] + [
            remainder * w / sum(weights) for w in weights
        ]
        verdict_top = [
            _logprob_entry(token, math.log(p) if p > 0 else UNLIKELY)
            for token, p in zip(alternatives, probabilities, strict=True)
        ]
        entries = []
        verdict_index = len(tokens) - 2 if verdict is not None else -1
        for index, token in enumerate(tokens):
            if index == verdict_index:
                entry = dict(verdict_top[0], top_logprobs=verdict_top[:top])
            else:
                own = _logprob_entry(token, TOKEN_LOGPROB)
                entry = dict(own, top_logprobs=[own][:top])
            entries.append(entry)
        return entries

    async def _send_models(self, send):
        model = {
            "id": self.config.model,
            "object": "model",
            "created": 0,
            "owned_by": "quorum-stub",
        }
        await _send_json(send, 200, {"object": "list", "data": [model]})


class StubServer:
    """A JudgeStub under uvicorn on a free loopback port, in a daemon thread.

    `start()` returns the base URL (".../v1") once the server accepts connections; `stop()`
    shuts it down, first answering any request still hanging.
    """

    def __init__(self, stub=None):
        self.stub = stub if isinstance(stub, JudgeStub) else JudgeStub(stub)
        self.base_url = ""
        self._server = None
        self._thread = None

    def start(self, timeout=10.0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # binding here, not in uvicorn, leaves no race for the port
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.stub,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="judge-stub", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the judge stub did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    def stop(self):
        if self._server is not None:
            self.stub.release_hangs()
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


@contextlib.contextmanager
def running_stub(stub=None):
    """Serve a JudgeStub (or a new one from a StubConfig) for the block; yields the base URL."""
    with StubServer(stub) as base_url:
        yield base_url


async def _read_body(receive):
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _wait_unless_disconnected(receive, seconds, stopping=None):
    """Sleep, but stop early when the client hangs up (False) or the server stops (True);
    whether the client is still there."""
    if seconds <= 0:
        return True
    sleeping = asyncio.ensure_future(asyncio.sleep(seconds))
    waits = {sleeping}
    if stopping is not None:
        waits.add(asyncio.ensure_future(stopping.wait()))
    listening = None
    try:
        while True:
            listening = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait(waits | {listening}, return_when=asyncio.FIRST_COMPLETED)
            if listening in done and listening.result()["type"] == "http.disconnect":
                return False
            if done - {listening}:
                return True
    finally:
        for task in [*waits, listening]:
            if task is not None:
                task.cancel()


def _text(content):
    """A message's text, whether a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _logprob_entry(token, logprob):
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


async def _send(send, status, body, content_type=b"application/json", headers=()):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send, status, payload, headers=()):
    await _send(send, status, json.dumps(payload).encode(), headers=headers)


async def _send_error(send, status, message, kind, code=None, headers=()):
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    await _send_json(send, status, payload, headers=headers)


def main():
    """Serve the stub on its own, each StubConfig field a flag: --bias first --latency 0.5."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    for field in dataclasses.fields(StubConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "script":
            parser.add_argument(flag, default="", help="comma-separated outcomes")
        else:
            parser.add_argument(flag, type=field.type, default=field.default)
    options = vars(parser.parse_args())
    port = options.pop("port")
    options["script"] = tuple(filter(None, options["script"].split(",")))
    stub = JudgeStub(StubConfig(**options))
    print(f"judge stub on http://127.0.0.1:{port}/v1")
    uvicorn.run(stub, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
