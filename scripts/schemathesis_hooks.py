"""schemathesis hooks for the local stack's run (scripts/local.sh, SCHEMATHESIS_HOOKS).

Two kinds of failure are the emulator's, not the function's, and are dropped, narrowly:
`cargo lambda watch` turns an HTTP request into the API Gateway event itself, and what
is not UTF-8 cannot go into the event's JSON strings, so it answers 500 (text/plain,
its own fixed body) without invoking the function:
- a `text/*` or `application/json` body that is not UTF-8. API Gateway delivers such a
  body base64-encoded, and the function answers 400 `malformed_json` to it
  (functions/cases-api/tests/edges.rs, `a_body_that_is_not_utf8_is_malformed_json`);
- a header value that is not UTF-8 (schemathesis sends, e.g., a random `Authorization`
  with bytes over 0x7F). On AWS, API Gateway's IAM authorizer refuses such a request
  before the function runs.
Only that exact answer to such a request is dropped; every other failure stands, and
the count of dropped ones is printed at the end.
"""

import atexit
import sys
from collections import Counter

import schemathesis

# What the emulator answers, byte for byte (cargo-lambda-watch, ServerError::StringBody).
EMULATOR_500 = b'{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}'


def _not_utf8(data) -> bool:
    if data is None:
        return False
    if isinstance(data, str):
        # As http.client sends a str header value or body: Latin-1, one byte per character.
        try:
            data = data.encode("latin-1")
        except UnicodeEncodeError:
            return False
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _why_emulator_refused(request) -> str | None:
    if _not_utf8(request.body):
        return "a body that is not UTF-8"
    if any(_not_utf8(value) for value in request.headers.values()):
        return "a header that is not UTF-8"
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if response.status_code != 500 or response.content != EMULATOR_500:
        return True
    why = _why_emulator_refused(response.request)
    if why is None:
        return True
    _DROPPED[f"{case.method} {case.path}: {why}"] += 1
    return False


_DROPPED: Counter = Counter()


@atexit.register
def _report() -> None:
    # Said once, at the end: what was not counted, so that a run never hides it.
    if _DROPPED:
        ops = "; ".join(f"{op} x{n}" for op, n in sorted(_DROPPED.items()))
        print(
            f"schemathesis_hooks: failures not counted, all of them cargo lambda watch's own 500: {ops}",
            file=sys.stderr,
            flush=True,
        )
