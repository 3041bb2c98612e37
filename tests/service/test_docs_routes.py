"""docs/service.md documents every route of the app, with its parameters, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from gepa_cli.service.app import create_app
from gepa_cli.service.submit import ServiceSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "service.md"
ROW = re.compile(r"^\| `(GET|POST|DELETE|PUT|PATCH)` \| `(/[^`]*)` \| ([^|]*)\|")


def _documented() -> dict[tuple[str, str], str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if found := ROW.match(line):
            rows[(found[1], found[2])] = found[3]
    return rows


def test_documented_routes_match_the_openapi_schema(tmp_path: Path) -> None:
    settings = ServiceSettings(
        db=str(tmp_path / "q.sqlite"),
        output_dir=tmp_path / "runs",
        allowed_roots=(tmp_path,),
        data_dir=tmp_path / "data",
    )
    spec = create_app(settings, start_workers=False).openapi()
    documented = _documented()
    served = {
        (method.upper(), path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    assert set(documented) == set(served)
    for route, operation in served.items():
        cell = documented[route]
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in route[1]
                continue
            name = "Last-Event-ID" if parameter["name"] == "last-event-id" else parameter["name"]
            assert f"`{name}`" in cell, f"{route}: parameter {name} is not documented"
        if "requestBody" in operation:
            assert "body" in cell, f"{route}: its body is not documented"
