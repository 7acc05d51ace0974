"""A loopback HTTP server that speaks enough of the Anthropic Messages API for the real SDK.

The judge's verdict is decided from the prompt: the answer that contains "GOOD" wins, both or
neither is a tie; `always_a` answers "A" whatever it is shown (a position-biased judge). Failure
modes are scripted: the first `rate_limited` requests get 429, prompts containing a word in
`fail_words` get 500 every time, prompts containing a word in `malformed_words` get prose instead
of JSON (`malformed_once` only the first time each prompt is seen). `latency_s` delays every reply.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubState:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.rate_limited = 0
        self.fail_words: set[str] = set()
        self.malformed_words: set[str] = set()
        self.malformed_once = False
        self.always_a = False
        self.latency_s = 0.0
        self.seen_prompts: set[str] = set()
        self.api_keys: set[str] = set()
        self.batches: dict[str, list[dict]] = {}
        self.batched_requests = 0


def _verdict(prompt: str, state: StubState) -> str:
    if state.always_a:
        return "A"
    match = re.search(r"Answer A:\n(.*)\n\nAnswer B:\n(.*)$", prompt, re.DOTALL)
    a_good, b_good = ("GOOD" in match.group(1), "GOOD" in match.group(2)) if match else (False, False)
    return "A" if a_good and not b_good else "B" if b_good and not a_good else "tie"


def make_handler(state: StubState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: dict | str, headers: dict | None = None):
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            with state.lock:
                state.requests += 1
                number = state.requests
                bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
                state.api_keys.add(self.headers.get("x-api-key") or bearer)
            if state.latency_s:
                time.sleep(state.latency_s)
            if self.path.rstrip("/") == "/v1/messages/batches":
                return self._create_batch(body)
            if self.path.rstrip("/") != "/v1/messages":
                return self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            if number <= state.rate_limited:
                return self._send(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
                                  {"retry-after-ms": "5"})
            status, payload = self._answer(body, number)
            return self._send(status, payload, {"retry-after-ms": "5"} if status != 200 else None)

        def _answer(self, body: dict, number: int) -> tuple[int, dict]:
            prompt = body["messages"][-1]["content"]
            if any(word in prompt for word in state.fail_words):
                return 500, {"type": "error", "error": {"type": "api_error", "message": "boom"}}
            with state.lock:
                first_time = prompt not in state.seen_prompts
                state.seen_prompts.add(prompt)
            if any(word in prompt for word in state.malformed_words) and (first_time or not state.malformed_once):
                text = "I think the first one is better, probably."
            else:
                text = json.dumps({"winner": _verdict(prompt, state), "reason": "criteria 1-4 compared"})
            return 200, {
                "id": f"msg_{number}", "type": "message", "role": "assistant", "model": body.get("model"),
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": len(prompt) // 4, "output_tokens": 20},
            }

        def _batch(self, batch_id: str) -> dict:
            count = len(state.batches[batch_id])
            return {"id": batch_id, "type": "message_batch", "processing_status": "ended",
                    "request_counts": {"processing": 0, "succeeded": count, "errored": 0, "canceled": 0, "expired": 0},
                    "created_at": "2026-11-23T00:00:00Z", "ended_at": "2026-11-23T00:00:01Z",
                    "expires_at": "2026-11-24T00:00:00Z", "archived_at": None, "cancel_initiated_at": None,
                    "results_url": f"http://127.0.0.1:{self.server.server_address[1]}/v1/messages/batches/{batch_id}/results"}

        def _create_batch(self, body: dict):
            with state.lock:
                batch_id = f"msgbatch_{len(state.batches) + 1}"
                state.batches[batch_id] = []
            for request in body["requests"]:
                with state.lock:
                    state.batched_requests += 1
                    number = state.batched_requests + 10_000
                status, payload = self._answer(request["params"], number)
                result = ({"type": "succeeded", "message": payload} if status == 200
                          else {"type": "errored", "error": payload})
                state.batches[batch_id].append({"custom_id": request["custom_id"], "result": result})
            return self._send(200, self._batch(batch_id))

        def do_GET(self):
            match = re.match(r"^/v1/messages/batches/([^/]+)(/results)?$", self.path.split("?")[0])
            if not match or match.group(1) not in state.batches:
                return self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            if match.group(2):
                return self._send(200, "".join(json.dumps(e) + "\n" for e in state.batches[match.group(1)]))
            return self._send(200, self._batch(match.group(1)))

    return Handler


class AnthropicStub:
    """Context manager: `with AnthropicStub() as stub:` ... `stub.url`, `stub.state`."""

    def __init__(self):
        self.state = StubState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
