"""All judge HTTP in one place: an async client for OpenAI-compatible chat completions.

Bounded concurrency, a requests-per-minute limit, per-request timeouts, and retries with
exponential backoff and jitter on 429, 5xx and timeouts, honouring Retry-After. The API key
travels in the Authorization header only; errors and logs never include it.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class JudgeRequestFailed(Exception):
    """No usable reply after every retry; the message is safe to store and show."""


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency: float
    attempts: int
    logprobs: list | None = None


@dataclass
class JudgeClient:
    base_url: str
    model: str
    api_key: str = ""
    max_concurrency: int = 8
    requests_per_minute: int | None = None
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    _connections: asyncio.Queue = field(init=False, repr=False)
    _rate_lock: asyncio.Lock = field(init=False, repr=False)
    _next_start: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self):
        # One single-connection httpx client per concurrent request, taken from a queue: this
        # bounds concurrency, and each pool stays trivial (one pool of many connections costs
        # milliseconds of CPU per request in httpcore's bookkeeping at a few dozen).
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        tls = httpx.create_ssl_context()
        self._connections = asyncio.Queue()
        for _ in range(self.max_concurrency):
            self._connections.put_nowait(
                httpx.AsyncClient(
                    base_url=self.base_url.rstrip("/") + "/",
                    headers=headers,
                    timeout=self.timeout,
                    verify=tls,
                    limits=httpx.Limits(max_connections=1),
                )
            )
        self._rate_lock = asyncio.Lock()

    def __repr__(self):
        return f"JudgeClient({self.model!r} at {self.base_url!r})"  # never the key

    async def close(self):
        while not self._connections.empty():
            await self._connections.get_nowait().aclose()

    async def complete(self, messages, *, temperature=0.0, max_tokens=512, logprobs=True):
        """One chat completion, retried as needed; raises JudgeRequestFailed."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if logprobs:
            body.update(logprobs=True, top_logprobs=5)
        problem = ""
        for attempt in range(1, self.max_retries + 2):
            http = await self._connections.get()
            try:
                await self._wait_for_rate()
                started = time.monotonic()
                try:
                    response = await http.post("chat/completions", json=body)
                except httpx.TimeoutException:
                    problem, wait = "the request timed out", None
                except httpx.TransportError as e:
                    problem, wait = f"connection failed ({type(e).__name__})", None
                else:
                    latency = time.monotonic() - started
                    if response.status_code == 200:
                        return _reply(response, latency, attempt)
                    problem = f"HTTP {response.status_code}"
                    if response.status_code not in RETRY_STATUSES:
                        detail = _error_text(response)
                        if self.api_key:
                            detail = detail.replace(self.api_key, "[key]")
                        raise JudgeRequestFailed(f"{problem}: {detail}")
                    wait = _retry_after(response)
            finally:
                self._connections.put_nowait(http)
            if attempt <= self.max_retries:
                await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        raise JudgeRequestFailed(f"{problem}, after {self.max_retries + 1} attempts")

    async def _wait_for_rate(self):
        if not self.requests_per_minute:
            return
        async with self._rate_lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 60.0 / self.requests_per_minute
        await asyncio.sleep(start - now)

    def _backoff(self, attempt):
        """Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter")."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))


def _reply(response, latency, attempt):
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        text = response.text  # kept raw; the parser will call it invalid
        return Reply(
            text=text, prompt_tokens=0, completion_tokens=0, latency=latency, attempts=attempt
        )
    usage = data.get("usage") or {}
    logprobs = (choice.get("logprobs") or {}).get("content")
    return Reply(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency=latency,
        attempts=attempt,
        logprobs=logprobs,
    )


def _retry_after(response):
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 300.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_text(response):
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    return str(message)[:500]
