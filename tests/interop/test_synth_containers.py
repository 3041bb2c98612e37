"""gepa-cli drives a container built with the real synth-containers package (0.4.6).

The container below is the reference keyword task written against
``synth_containers.Container``: it serves contract ``synth_optimizers.gepa.v2``
(``/program``, ``/taskset``, ``/taskset/tasks``, ``/rollouts``) with the package's own
routes, request models and async rollout records. `gepa run` must find the contract
from ``/metadata``, run, cache, replay readonly without the container, and compare like
any other run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.checks import replay_check
from support.cli import run_cli
from support.task_dir import make_task_dir

synth_containers = pytest.importorskip("synth_containers")

SYNTH_APP = """
from datetime import datetime, timezone

from synth_containers import Container

from reference_container import SEED_PROMPT, SPLITS, keywords_for

container = Container("keywords-v2", description="mention the row's keywords")
SEEN = {"rollouts": [], "task_requests": []}


@container.program
def program():
    return {
        "version": "prompt_program.v1",
        "program_id": "keywords",
        "modules": [{"module_id": "instructions", "role": "system", "content": SEED_PROMPT,
                     "mutable": True, "candidate_field": "system_prompt"}],
        "target_modules": [{"module_id": "instructions", "candidate_field": "system_prompt",
                            "objective": "coverage"}],
        "seed_candidate": {"system_prompt": SEED_PROMPT},
    }


@container.taskset
def taskset():
    return {"taskset_id": "keywords", "splits": dict(SPLITS)}


@container.taskset_tasks
def taskset_tasks(payload):
    SEEN["task_requests"].append(payload)
    split = payload["split"]
    tasks = []
    for task_id in payload["task_ids"]:
        seed = int(task_id.split(":")[1])
        tasks.append({"task_id": task_id, "split": split, "rng_seed": seed,
                      "keywords": keywords_for(split, seed)})
    return {"tasks": tasks}


@container.rollout
async def rollout(payload):
    SEEN["rollouts"].append(payload)
    prompt = payload["candidate"]["system_prompt"].lower()
    keywords = payload["task"]["keywords"]
    missing = [word for word in keywords if word not in prompt]
    reward = 1 - len(missing) / len(keywords)
    now = datetime.now(timezone.utc).isoformat()
    return {
        "rollout_id": payload["rollout_id"],
        "status": "completed",
        "success_status": "success",
        "created_at": now,
        "updated_at": now,
        "task_id": payload["task_id"],
        "summary": {
            "reward": reward,
            "feedback": "All keywords present." if not missing
            else "Missing: " + ", ".join(missing) + ".",
        },
        "objective_scores": [{"objective": "coverage", "value": reward}],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 0,
                  "total_tokens": len(prompt.split()), "cost_usd": 0.0},
        "trace": {"event_history": [{"type": "prompt", "text": prompt}]},
        "output": [word for word in keywords if word in prompt],
    }


app = container.fastapi()
"""


@pytest.fixture(autouse=True)
def every_run_replays(tmp_path: Path) -> Iterator[None]:
    """Every run these tests make must also replay cleanly from its feed alone."""
    yield
    for manifest in sorted(tmp_path.rglob("manifest.json")):
        replay_check(manifest.parent)


@pytest.fixture
def task(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    make_task_dir(root)
    (root / "synth_keywords.py").write_text(SYNTH_APP)
    for name in ("synth_keywords", "reference_container"):
        sys.modules.pop(name, None)
    return root


def gepa(*args: str) -> Any:
    return run_cli(*args)


def run(config: Path, runs: Path, run_id: str, *extra: str) -> dict[str, Any]:
    result = gepa(
        "gepa", "run", "--config", str(config), "--run-id", run_id,
        "--output-dir", str(runs), "--json", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    facts: dict[str, Any] = json.loads(result.stdout)
    return facts


def profile(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "cache_profile.json").read_text())
    return data


def test_gepa_run_drives_a_synth_containers_app(task: Path, tmp_path: Path) -> None:
    config = make_task_dir(
        task,
        container={"app": "synth_keywords:app"},
        gepa={"max_total_rollouts": 90, "minibatch_size": 3},
    )
    runs = tmp_path / "runs"

    validated = gepa("gepa", "validate", "--config", str(config), "--json")
    assert validated.exit_code == 0, validated.output
    container = json.loads(validated.stdout)["container"]
    assert container["contract"] == "synth_optimizers.gepa.v2"
    assert container["routes"]["rollout"] == "/rollouts"
    assert container["routes"]["dataset_rows"] == "/taskset/tasks"

    live = run(config, runs, "live")
    assert live["state"] == "finished"
    assert live["best_val_mean"] > live["seed_val_mean"]  # it learns through v2
    import synth_keywords  # the in-process app: what it was asked

    first = synth_keywords.SEEN["task_requests"][0]
    assert first == {"split": "train", "task_ids": [f"train:{i}" for i in range(30)], "filters": {}}
    sent = synth_keywords.SEEN["rollouts"][0]
    assert sent["rollout_id"].startswith("gepa-")
    assert sent["task"]["task_id"] == sent["task_id"] and "keywords" in sent["task"]
    assert set(sent["candidate"]) == {"system_prompt"}

    # the recorded rollouts are contract-neutral v1 shapes
    entry = next((task / "cache" / "ref" / "container.rollout").rglob("*.json"))
    recorded = json.loads(entry.read_text())
    assert set(recorded["request"]) == {"task_id", "candidate", "policy", "dataset_row"}
    assert recorded["response"]["reward_info"]["objectives"] == {
        "coverage": recorded["response"]["reward_info"]["outcome_reward"]
    }
    assert recorded["response"]["usage"] == {
        "prompt_tokens": recorded["response"]["usage"]["prompt_tokens"],
        "completion_tokens": 0,
        "cost_usd": 0.0,
    }

    run(config, runs, "cached")
    totals = profile(runs / "cached")["totals"]
    assert totals["hits"] > 0 and totals["misses"] == 0 and totals["writes"] == 0

    (task / "synth_keywords.py").unlink()  # replay needs no container at all
    replayed = run(config, runs, "replay", "--cache-mode", "readonly")
    assert replayed["best_candidate_id"] == live["best_candidate_id"]
    for other in ("cached", "replay"):
        compare = gepa("events", "compare", "--left", str(runs / "live"), "--right",
                       str(runs / other))  # fmt: skip
        assert compare.exit_code == 0, compare.output


def test_async_submission_polls_the_synth_rollout_records(task: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    base = {"app": "synth_keywords:app"}
    small = {"max_total_rollouts": 60, "minibatch_size": 3}
    sync = make_task_dir(task, container=base, gepa=small, cache={"mode": "off"})
    run(sync, runs, "sync")
    sys.modules.pop("synth_keywords", None)
    polled = make_task_dir(
        task,
        name="async.toml",
        container={**base, "contract": "synth_optimizers.gepa.v2"},
        gepa={**small, "rollout_submission_mode": "async"},
        cache={"mode": "off"},
    )
    run(polled, runs, "async")
    import synth_keywords

    assert synth_keywords.SEEN["rollouts"][0]["submission_mode"] == "async"
    assert (runs / "sync" / "events.normalized.jsonl").read_bytes() == (
        runs / "async" / "events.normalized.jsonl"
    ).read_bytes()


def test_a_contract_mismatch_is_one_clear_line(task: Path, tmp_path: Path) -> None:
    config = make_task_dir(
        task, container={"app": "synth_keywords:app", "contract": "gepa_cli.container.v1"}
    )
    result = gepa("gepa", "validate", "--config", str(config))
    assert result.exit_code == 2
    assert "metadata.optimizer_contracts.gepa.version" in result.stderr
    assert "synth_optimizers.gepa.v2" in result.stderr and "contract" in result.stderr


def test_container_check_passes_the_synth_container(task: Path) -> None:
    config = make_task_dir(task, container={"app": "synth_keywords:app"})
    result = gepa("container", "check", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["contract"] == "synth_optimizers.gepa.v2"
    assert "POST /taskset/tasks [train]" in [step["route"] for step in report["steps"]]
    assert "POST /rollouts [test]" in [step["route"] for step in report["steps"]]
