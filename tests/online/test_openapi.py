"""The OpenAPI document covers every online route."""

from __future__ import annotations

from online.support import OnlineService


def test_openapi_covers_the_online_routes(service: OnlineService) -> None:
    with service.control() as control:
        paths = control.get("/openapi.json").json()["paths"]
    expected = {
        "/online/sessions": {"get", "post"},
        "/online/sessions/{session_id}": {"get"},
        "/online/sessions/{session_id}/state": {"get"},
        "/online/sessions/{session_id}/prompt": {"get"},
        "/online/sessions/{session_id}/candidates": {"get"},
        "/online/sessions/{session_id}/pause": {"post"},
        "/online/sessions/{session_id}/resume": {"post"},
        "/online/sessions/{session_id}/cancel": {"post"},
        "/online/sessions/{session_id}/rewards": {"post"},
        "/online/sessions/{session_id}/events": {"get"},
        "/online/sessions/{session_id}/events/stream": {"get"},
        "/online/sessions/{session_id}/v1/chat/completions": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert set(paths[path]) >= methods, path
    chat = paths["/online/sessions/{session_id}/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["messages"]
    reward = paths["/online/sessions/{session_id}/rewards"]["post"]
    assert "requestBody" in reward
