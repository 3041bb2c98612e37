"""A reference container implementing contract v1 for a tiny deterministic task.

Task: the candidate's ``system_prompt`` should mention each of a row's keywords.
The reward is the fraction mentioned; the feedback names the missing ones. Supports
sync and async submission, an optional API key, a per-rollout latency, and counts
live requests per route (and rollouts in flight) so tests can assert on them.

Self-contained (fastapi + uvicorn only), so it also runs as a script:
``python tests/support/reference_container.py --port 8123 [--latency 0.05]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CONTRACT_VERSION = "gepa_cli.container.v1"
WORDS = (
    "accuracy", "brevity", "citations", "clarity", "examples", "format",
    "honesty", "json", "politeness", "safety", "steps", "tone",
)  # fmt: skip
SPLITS = {"train": 200, "test": 50}
SEED_PROMPT = "You are a helpful assistant. Answer with clarity."


def keywords_for(split: str, seed: int) -> list[str]:
    # deterministic and spread out: seed 0 of every split differs too
    offset = sum(map(ord, split))
    return [WORDS[(seed * 7 + offset + step * 5) % len(WORDS)] for step in range(3)]


def make_row(split: str, seed: int) -> dict[str, Any]:
    return {
        "example_id": f"{split}:{seed}",
        "split": split,
        "seed": seed,
        "question": f"Write instructions for task {split}-{seed}.",
        "keywords": keywords_for(split, seed),
    }


def score(prompt: str, row: dict[str, Any]) -> dict[str, Any]:
    text = prompt.lower()
    keywords: list[str] = row["keywords"]
    found = [word for word in keywords if word in text]
    missing = [word for word in keywords if word not in text]
    reward = len(found) / len(keywords)
    feedback = "All keywords present." if not missing else "Missing: " + ", ".join(missing) + "."
    return {
        "status": "completed",
        "reward_info": {
            "outcome_reward": reward,
            "objectives": {"coverage": reward},
            "feedback": feedback,
        },
        "output": found,
        "trace": {"messages": [{"role": "system", "content": prompt}]},
        "usage": {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(found),
            "cost_usd": 0.0,
        },
        "metadata": {},
    }


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    api_keys_seen: set[str] = field(default_factory=set)
    rollout_bodies: list[dict[str, Any]] = field(default_factory=list)
    terminated: dict[str, str] = field(default_factory=dict)

    def live(self, route: str) -> int:
        return self.requests[route]


class CountAndAuth:
    """Counts every request by route and checks the API key. Plain ASGI: Starlette's
    ``@app.middleware("http")`` wraps every request in extra tasks and streams, which
    cost this server more CPU per rollout than the route itself."""

    def __init__(self, app: Any, stats: Stats, api_key: str | None) -> None:
        self.app = app
        self.stats = stats
        self.api_key = api_key

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.stats.requests[f"{scope['method']} {scope['path']}"] += 1
        if self.api_key is not None:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            self.stats.api_keys_seen.add(given)
            if given != self.api_key:
                response = error(401, "unauthorized", "missing or wrong API key")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(
    *,
    api_key: str | None = None,
    latency_seconds: float = 0.0,
    async_latency_seconds: float | None = None,
    seed_prompt: str = SEED_PROMPT,
) -> FastAPI:
    app = FastAPI(title="reference container")
    stats = Stats()
    app.state.stats = stats
    jobs: dict[str, dict[str, Any]] = {}
    ids = itertools.count()
    tasks: set[asyncio.Task[None]] = set()

    app.add_middleware(CountAndAuth, stats=stats, api_key=api_key)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "contract_version": CONTRACT_VERSION}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        routes = {
            "version": CONTRACT_VERSION,
            "program_route": "/program",
            "dataset_route": "/dataset",
            "dataset_rows_route": "/dataset/rows",
            "rollout_route": "/rollout",
        }
        return {
            "name": "keywords",
            "description": "mention the row's keywords",
            "metadata": {"optimizer_contracts": {"gepa": routes}},
        }

    @app.get("/program")
    async def program() -> dict[str, Any]:
        return {
            "version": "prompt_program.v1",
            "program_id": "keywords",
            "modules": [
                {
                    "module_id": "instructions",
                    "role": "system",
                    "content": seed_prompt,
                    "mutable": True,
                    "candidate_field": "system_prompt",
                }
            ],
            "target_modules": [
                {
                    "module_id": "instructions",
                    "candidate_field": "system_prompt",
                    "objective": "coverage",
                }
            ],
            "seed_candidate": {"system_prompt": seed_prompt},
        }

    @app.get("/dataset")
    async def dataset() -> dict[str, Any]:
        return {"splits": {name: {"size": size} for name, size in SPLITS.items()}}

    @app.post("/dataset/rows")
    async def rows(request: Request) -> Any:
        body = await request.json()
        split, seeds = body.get("split"), body.get("seeds")
        if split not in SPLITS or not isinstance(seeds, list):
            return error(400, "bad_request", f"unknown split {split!r} or seeds not a list")
        if any(not isinstance(s, int) or not 0 <= s < SPLITS[split] for s in seeds):
            return error(400, "bad_request", f"seeds out of range for split {split!r}")
        return {"rows": [make_row(split, seed) for seed in seeds]}

    async def run(body: dict[str, Any]) -> dict[str, Any]:
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if latency_seconds:
                await asyncio.sleep(latency_seconds)
            prompt = str(body.get("candidate", {}).get("system_prompt", ""))
            return score(prompt, body["dataset_row"])
        finally:
            stats.in_flight -= 1

    @app.post("/rollout")
    async def rollout(request: Request) -> Any:
        body = await request.json()
        row = body.get("dataset_row")
        if not isinstance(row, dict) or "keywords" not in row:
            return error(400, "bad_request", "dataset_row with keywords is required")
        stats.rollout_bodies.append(body)
        rollout_id = f"r-{next(ids):06d}"
        if body.get("submission_mode") != "async":
            return {"rollout_id": rollout_id, **(await run(body))}
        jobs[rollout_id] = {"rollout_id": rollout_id, "status": "queued"}

        async def work() -> None:
            if async_latency_seconds:
                await asyncio.sleep(async_latency_seconds)
            result = await run(body)
            if jobs[rollout_id]["status"] == "queued":
                jobs[rollout_id] = {"rollout_id": rollout_id, **result}

        task = asyncio.create_task(work())
        tasks.add(task)  # keep a reference: the loop only holds weak ones
        task.add_done_callback(tasks.discard)
        return JSONResponse({"rollout_id": rollout_id, "status": "queued"}, status_code=202)

    @app.get("/rollouts/{rollout_id}")
    async def rollout_status(rollout_id: str) -> Any:
        if rollout_id not in jobs:
            return error(404, "not_found", f"no rollout {rollout_id}")
        return jobs[rollout_id]

    @app.post("/rollouts/{rollout_id}/terminate")
    async def terminate(rollout_id: str, request: Request) -> Any:
        if rollout_id not in jobs:
            return error(404, "not_found", f"no rollout {rollout_id}")
        reason = str((await request.json()).get("reason", ""))
        stats.terminated[rollout_id] = reason
        jobs[rollout_id] = {"rollout_id": rollout_id, "status": "terminated", "error": reason}
        return jobs[rollout_id]

    return app


app = create_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per rollout")
    parser.add_argument("--api-key-env", default=None, help="require the key in this env var")
    args = parser.parse_args()
    import uvicorn

    key = os.environ[args.api_key_env] if args.api_key_env else None
    served = create_app(api_key=key, latency_seconds=args.latency)
    uvicorn.run(served, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
