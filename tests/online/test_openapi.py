"""The OpenAPI document covers every online route, and docs/online.md documents each
one of them and no other."""

from __future__ import annotations

import re
from pathlib import Path

from online.support import OnlineService

DOC = Path(__file__).resolve().parents[2] / "docs" / "online.md"
ROW = re.compile(r"^\| `(GET|POST|DELETE|PUT|PATCH) (/online/[^`?]*)(\?[^`]*)?` \|")


def test_openapi_covers_the_online_routes_as_documented(service: OnlineService) -> None:
    with service.control() as control:
        paths = control.get("/openapi.json").json()["paths"]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/online/")
        for method in operations
    }
    documented = {
        (found[1], found[2].replace("{id}", "{session_id}"))
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if (found := ROW.match(line))
    }
    assert len(served) == 13
    assert documented == served
    chat = paths["/online/sessions/{session_id}/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["messages"]
    reward = paths["/online/sessions/{session_id}/rewards"]["post"]
    assert "requestBody" in reward
