"""Every contract violation is a ContainerContractError naming route and field, before
any rollout is spent."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gepa_cli.errors import ConfigError, ContainerContractError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container import handshake
from gepa_cli.runtime.container.contract import parse_rollout
from support.asgi import asgi_client
from support.memory_cache import MemoryCache
from support.reference_container import create_app
from support.task_dir import ConfigFactory

Patch = Callable[[Any], Any]


class PatchedTransport(httpx.AsyncBaseTransport):
    """The reference container, with one route's JSON answer rewritten."""

    def __init__(self, app: Any, patches: dict[str, Patch | bytes]) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.patches = patches

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        patch = self.patches.get(f"{request.method} {request.url.path}")
        if patch is None:
            return response
        raw = await response.aread()
        content = patch if isinstance(patch, bytes) else orjson.dumps(patch(orjson.loads(raw)))
        return httpx.Response(response.status_code, content=content)


def edit(path: str, value: Any) -> Patch:
    """Set (or with ... delete) one dotted field of a JSON answer."""

    def apply(body: Any) -> Any:
        body = copy.deepcopy(body)
        *parents, leaf = path.split(".")
        node = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is ...:
            del node[leaf]
        elif isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
        return body

    return apply


GEPA = "metadata.optimizer_contracts.gepa"
CASES: list[tuple[str, str, Patch | bytes, str]] = [
    ("health_status", "GET /health", edit("status", "starting"), "status"),
    ("health_version", "GET /health", edit("contract_version", "v0"), "contract_version"),
    ("metadata_missing", "GET /metadata", edit("metadata", ...), "metadata"),
    ("metadata_version", "GET /metadata", edit(f"{GEPA}.version", "gepa.v2"), f"{GEPA}.version"),
    ("route_no_slash", "GET /metadata", edit(f"{GEPA}.rollout_route", "rollout"), "rollout_route"),
    ("route_missing", "GET /metadata", edit(f"{GEPA}.program_route", ...), "program_route"),
    ("program_not_json", "GET /program", b"<html>oops</html>", "(body)"),
    ("program_id", "GET /program", edit("program_id", ""), "program_id"),
    ("targets_empty", "GET /program", edit("target_modules", []), "target_modules"),
    (
        "target_field",
        "GET /program",
        edit("target_modules.0.candidate_field", ...),
        "target_modules[0].candidate_field",
    ),
    (
        "no_seed_text",
        "GET /program",
        edit("seed_candidate", {}),
        "seed_candidate.system_prompt",
    ),
    ("rows_not_list", "POST /dataset/rows", edit("rows", {"a": 1}), "rows"),
    ("rows_too_few", "POST /dataset/rows", lambda b: {"rows": b["rows"][:-1]}, "rows"),
    ("rows_example_id", "POST /dataset/rows", edit("rows.1.example_id", ...), "rows[1].example_id"),
    (
        "rows_duplicate_id",
        "POST /dataset/rows",
        lambda b: {
            "rows": [
                b["rows"][0],
                {**b["rows"][1], "example_id": b["rows"][0]["example_id"]},
                *b["rows"][2:],
            ]
        },
        "rows[1].example_id",
    ),
    (
        "rows_order",
        "POST /dataset/rows",
        lambda b: {"rows": [b["rows"][1], b["rows"][0], *b["rows"][2:]]},
        "rows[0].seed",
    ),
    ("rows_split", "POST /dataset/rows", edit("rows.0.split", "other"), "rows[0].split"),
]


@pytest.mark.parametrize(("name", "route", "patch", "field"), CASES, ids=[c[0] for c in CASES])
async def test_violation_names_route_and_field(
    config_factory: ConfigFactory, name: str, route: str, patch: Patch | bytes, field: str
) -> None:
    app = create_app()
    config = config_factory()
    async with asgi_client(app, PatchedTransport(app, {route: patch})) as client:
        with pytest.raises(ContainerContractError) as caught:
            await handshake(config, client, NoCache())
    error = caught.value
    assert error.details["route"] == route
    assert error.details["field"].endswith(field), error.details
    assert route in str(error) and field in str(error)
    assert app.state.stats.live("POST /rollout") == 0


async def test_configured_target_module_must_exist(config_factory: ConfigFactory) -> None:
    app = create_app()
    config = config_factory(candidate={"target_modules": ["system_prompt", "critic_prompt"]})
    async with asgi_client(app) as client:
        with pytest.raises(ContainerContractError, match="critic_prompt") as caught:
            await handshake(config, client, NoCache())
    assert (caught.value.details["route"], caught.value.details["field"]) == (
        "GET /program",
        "target_modules",
    )


async def test_seed_text_from_config_fills_a_missing_program_seed(
    config_factory: ConfigFactory,
) -> None:
    app = create_app()
    config = config_factory(seed_candidate={"system_prompt": "Be brief."})
    patched = PatchedTransport(app, {"GET /program": edit("seed_candidate", {})})
    async with asgi_client(app, patched) as client:
        result = await handshake(config, client, NoCache())
    assert result.seed_texts == {"system_prompt": "Be brief."}


async def test_seed_for_unknown_module_is_a_config_error(config_factory: ConfigFactory) -> None:
    app = create_app()
    config = config_factory(seed_candidate={"planner": "Plan."})
    async with asgi_client(app) as client:
        with pytest.raises(ConfigError, match="planner"):
            await handshake(config, client, NoCache())


async def test_wrong_rows_are_never_cached(config_factory: ConfigFactory) -> None:
    app = create_app()
    cache = MemoryCache("readwrite")
    patched = PatchedTransport(app, {"POST /dataset/rows": edit("rows.0.split", "x")})
    async with asgi_client(app, patched) as client:
        with pytest.raises(ContainerContractError):
            await handshake(config_factory(), client, cache)
    assert not any(boundary == "container.dataset_rows" for boundary, _ in cache.actions)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "completed"}, "reward_info.outcome_reward"),
        ({"reward_info": {"outcome_reward": math.inf}}, "reward_info.outcome_reward"),
        ({"reward_info": {"score": math.nan}}, "reward_info.score"),
        ({"reward": "1.0"}, "reward"),
        ({"reward": True}, "reward"),
        ({"reward": 1, "reward_info": {"objectives": {"a": "x"}}}, "reward_info.objectives.a"),
        ({"reward": 1, "usage": {"prompt_tokens": -1}}, "usage.prompt_tokens"),
        ({"reward": 1, "feedback": 3}, "feedback"),
        ({"status": "weird", "reward": 1}, "status"),
        ([1, 2], "(body)"),
    ],
)
def test_malformed_rollout_answers(body: Any, field: str) -> None:
    with pytest.raises(ContainerContractError) as caught:
        parse_rollout(body)
    assert (caught.value.details["route"], caught.value.details["field"]) == (
        "POST /rollout",
        field,
    )


def test_reward_and_feedback_fallbacks() -> None:
    outcome = parse_rollout({"summary": {"outcome_reward": 0.5, "feedback": "half"}})
    assert (outcome.score, outcome.feedback) == (0.5, "half")
    outcome = parse_rollout({"reward_info": {"score": 1}, "reward": 0.0})
    assert outcome.score == 1.0 and outcome.feedback == "Score 1."
    outcome = parse_rollout({"reward": 0.25, "usage": {"prompt_tokens": 5}})
    assert outcome.usage.prompt_tokens == 5 and outcome.usage.cost_known is False
    failed = parse_rollout({"status": "failed", "error": {"message": "model down"}})
    assert failed.status == "failed" and failed.error == "model down" and failed.score == 0.0
