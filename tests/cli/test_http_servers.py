"""Every HTTP server nudge starts believes no ``X-Forwarded-For`` of its own accord:
``NUDGE_TRUSTED_PROXIES`` is the only rule for who a client is.

Uvicorn's default (``proxy_headers=True``, ``FORWARDED_ALLOW_IPS`` 127.0.0.1) would
rewrite the client address from any local process's header before the console's
login limiter reads it, so each uvicorn server nudge builds must turn it off. The
servers are built inside long-running commands; their source is read here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import services

SERVICES = Path(services.__file__).parent


def uvicorn_servers() -> list[tuple[str, ast.Call]]:
    """Every ``uvicorn.Config(...)`` and ``uvicorn.run(...)`` call under ``services/``."""
    calls = []
    for module in sorted(SERVICES.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), filename=str(module))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "uvicorn"
                and node.func.attr in ("Config", "run")
            ):
                calls.append((f"{module.relative_to(SERVICES.parent)}:{node.lineno}", node))
    return calls


def test_every_uvicorn_server_leaves_forwarded_headers_to_the_trusted_proxies_setting() -> None:
    servers = uvicorn_servers()
    assert len(servers) >= 4, "serve, ingest (one worker and several), console"
    believing = [
        where
        for where, call in servers
        if not any(
            keyword.arg == "proxy_headers"
            and isinstance(keyword.value, ast.Constant)
            and keyword.value.value is False
            for keyword in call.keywords
        )
    ]
    assert believing == []
