"""The console API's problem kinds, beyond the HTTP pieces' own
(:data:`services.http.problems.HTTP_PROBLEM_KINDS`).

Every kind has its stable ``type`` URI (``/problems/<kind>``) like the ingest API's;
:func:`services.console.app.create_console_app` registers them, so ``Problem(kind, ...)``
answers with them and ``GET /problems/<kind>`` describes them.
"""

from __future__ import annotations

from services.http.problems import ProblemKind

__all__ = ["CONSOLE_PROBLEM_KINDS"]

CONSOLE_PROBLEM_KINDS: dict[str, ProblemKind] = {
    "stale-version": (
        412,
        "Stale version",
        "The definition changed since you read it, or `If-Match` named no current version: "
        "nothing was saved. Read it again (`GET` answers its version as the `ETag`), apply your "
        "change to what is there now, and send it with `If-Match` set to that `ETag`. The 412 "
        "answer carries the current version as its `ETag` when there is one.",
    ),
    "precondition-required": (
        428,
        "Precondition required",
        'Changing a definition that exists needs `If-Match: "<version>"`, the `ETag` of the '
        "version you read, so that no one else's change is overwritten unknowingly. Creating "
        "a new key needs no `If-Match`.",
    ),
    "invalid-rule": (
        422,
        "Invalid rule",
        "The segment's rule does not parse; nothing was saved. The entry of `errors` names the "
        "JSON pointer of the bad node in the request body (under `/rule`) and what was "
        "expected there.",
    ),
    "invalid-template": (
        422,
        "Invalid template",
        "The template is not one its channel can send, or it does not render; nothing was "
        "saved. The entry of `errors` names the part (`/content/<part>`), the `line` in it "
        "where known, and the error. Names and attributes starting with `_` are refused.",
    ),
    "template-too-costly": (
        422,
        "Template too costly",
        "Rendering the template goes over a render limit; nothing was saved. `errors[0].limit` "
        "names which: `time` (it takes longer than `NUDGE_RENDER_TIMEOUT` seconds, or computes "
        "a number too large) or `output` (it writes more than the channel's "
        "`NUDGE_RENDER_MAX_<CHANNEL>_BYTES`, or needs too much memory). Loop over the buyer's "
        "data rather than over large ranges, and keep the message to a message's size.",
    ),
    "renderer-unavailable": (
        503,
        "Renderer unavailable",
        "No render worker process could be started to render the template (the server is "
        "short of processes or memory); the template itself is not at fault, and nothing "
        "was saved. Retry after the number of seconds in Retry-After.",
    ),
    "read-only": (
        409,
        "Read-only",
        "This definition is built into nudge and cannot be changed through the API; define "
        "your own under another key.",
    ),
    "invalid-campaign": (
        422,
        "Invalid campaign",
        "The campaign does not validate; nothing was saved. The entry of `errors` names the JSON "
        "pointer of the bad field in the request body and what was expected there "
        "(docs/campaigns.md).",
    ),
    "no-winner": (
        409,
        "No winner",
        "The step is not an adaptive split, or none of its variants has won yet "
        "(docs/programmes.md); nothing was changed.",
    ),
    "invalid-programme": (
        422,
        "Invalid programme",
        "The programme does not validate; nothing was saved. The entry of `errors` names the "
        "JSON pointer of the bad field in the request body (a step is `/steps/<index>`) and "
        "what was expected there (docs/programmes.md).",
    ),
}
