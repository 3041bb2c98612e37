"""The Banking77 cookbook against an OpenAI-compatible model server, as a user meets it
with a local model: an unpriced model, a stopped server, answers cut at max_tokens, a
slow model (issue 20, items 1, 2, 3, 5 and 7). The server is `fake_model`, which
answers like llama.cpp's does (usage without cost, a finish_reason, /v1/models)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from banking77_task.container import create_app
from banking77_task.data import load_sample
from fake_model import (
    ANSWER_TOKENS,
    FLAKY_ANSWERS,
    PROMPT_TOKENS,
    SLOW_SECONDS,
    FakeModel,
    fake_model,
    stopped_server_url,
)
from fastapi.testclient import TestClient
from rich.console import Console

from gepa_cli.artifacts import read_jsonl
from gepa_cli.runner import RunResult, summary
from gepa_cli.workspace import workspace_status
from gepa_cli.workspace.render import render_status
from support.cli import run_cli
from support.task_dir import config_sections, config_toml

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "banking77"


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModel]:
    with fake_model() as served:
        yield served


def banking_config(
    path: Path, policy_url: str, proposer_url: str, **overrides: dict[str, Any]
) -> Path:
    """The shape of the cookbook's gepa.openai.toml, at a budget of seconds."""
    base = {
        "run": {"seed": 0},
        "container": {
            "app": "banking77_task.container:app",
            "max_concurrency": 4,
            "request_timeout_seconds": 30.0,
            "retries": 0,
        },
        "dataset": {
            "train_split": "train",
            "val_split": "val",
            "heldout_split": "heldout",
            "train_seeds": "0:12",
            "val_seeds": "0:4",
            "heldout_seeds": "0:4",
        },
        "policy": {
            "backend": "openai_chat",
            "model": "classifier",
            "base_url": policy_url,
            "max_tokens": 32,
        },
        "proposer": {
            "backend": "openai_chat",
            "model": "proposer",
            "base_url": proposer_url,
            "max_tokens": 400,
        },
        "gepa": {"max_total_rollouts": 40, "minibatch_size": 3},
        "cache": {"mode": "off"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_toml(config_sections(base, **overrides)), encoding="utf-8")
    return path


def run(config: Path, runs: Path, *extra: str) -> Any:
    return run_cli(
        "gepa", "run", "-c", str(config), "--output-dir", str(runs), "--run-id", "r", *extra
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error [")]


# -- 1. unknown cost reads as unknown, and the policy's calls can be priced -----------


def test_an_unpriced_local_model_reads_unknown_everywhere(model: FakeModel, tmp_path: Path) -> None:
    config = banking_config(tmp_path / "gepa.toml", model.url, model.url)
    result = run(config, tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "$0.0000" not in result.stderr
    assert "cost:       unknown recorded, unknown spent live" in result.stderr
    assert "container.rollout (set [policy.prices])" in result.stderr
    assert "proposer.openai_chat (set [proposer.prices])" in result.stderr

    run_dir = tmp_path / "runs" / "r"
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert (manifest["cost_known"], manifest["spent_known"]) == (False, False)
    # the tokens the server reported are all there, priced or not
    rollouts = read_jsonl(run_dir / "rollouts.jsonl")
    assert {row["usage"]["prompt_tokens"] for row in rollouts} == {PROMPT_TOKENS}
    assert not any(row["usage"]["cost_known"] for row in rollouts)

    facts = summary(RunResult(run_dir, manifest))  # what `gepa run --json` prints
    assert (facts["cost_usd"], facts["spent_usd"], facts["cost_known"]) == (None, None, False)

    console = Console(record=True, width=160)
    render_status(workspace_status(tmp_path / "runs"), console)
    table = console.export_text()
    assert "unknown" in table and "0.0000" not in table

    replay = run_cli("events", "replay", "--events", str(run_dir / "events.jsonl"))
    assert "cost unknown" in replay.stdout + replay.stderr


def test_policy_prices_price_the_tokens_the_container_reports(
    model: FakeModel, tmp_path: Path
) -> None:
    prices = {"input_per_million_usd": 2.0, "output_per_million_usd": 10.0}
    config = banking_config(
        tmp_path / "gepa.toml",
        model.url,
        model.url,
        **{"policy.prices": prices, "proposer.prices": prices},
    )
    result = run(config, tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "r"
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert manifest["cost_known"] and manifest["spent_known"] and manifest["cost_note"] is None
    per_rollout = (PROMPT_TOKENS * 2.0 + ANSWER_TOKENS * 10.0) / 1_000_000
    rollouts = read_jsonl(run_dir / "rollouts.jsonl")
    assert all(row["usage"]["cost_usd"] == pytest.approx(per_rollout) for row in rollouts)
    assert manifest["usage"]["container.rollout"]["cost_usd"] == pytest.approx(
        per_rollout * len(rollouts)
    )
    assert manifest["cost_usd"] > manifest["usage"]["container.rollout"]["cost_usd"] > 0
    assert "unknown" not in result.stderr and "cost:       $" in result.stderr


def test_the_cookbook_readme_prices_as_the_proposer_docs_say() -> None:
    readme = (COOKBOOK / "README.md").read_text(encoding="utf-8")
    docs = (COOKBOOK.parents[1] / "docs" / "proposers.md").read_text(encoding="utf-8")
    # docs/proposers.md: a local model's cost is unknown unless priced; 0 is a price
    assert "recorded as *unknown*" in docs and "[policy.prices]" in docs
    assert "record its cost as 0" not in readme
    assert "[policy.prices]" in readme and "[proposer.prices]" in readme


# -- 2. a stopped model server is named, with its cause --------------------------------


@pytest.mark.parametrize("val_seeds", ["0:4", "0:2"])  # a tiny run must not "finish" either
def test_a_stopped_model_server_is_named_with_its_cause(
    model: FakeModel, tmp_path: Path, val_seeds: str
) -> None:
    down = stopped_server_url()
    config = banking_config(
        tmp_path / "gepa.toml", down, model.url, dataset={"val_seeds": val_seeds}
    )
    result = run(config, tmp_path / "runs")
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert line.startswith(
        f"error [container_error]: the policy model at {down} is unreachable: "
        "cannot connect (Connection refused)"
    ), line
    assert "container.log" not in line and "looks down" not in line
    assert "[policy] base_url" in line
    # it failed validating the seed, before any checkpoint: there is nothing to resume
    assert line.endswith(
        "then start the run again (it stopped before its first checkpoint: nothing to resume)"
    )
    assert not (tmp_path / "runs" / "r" / "checkpoint.json").exists()


def test_a_model_server_that_goes_down_mid_run_says_how_to_go_on(
    model: FakeModel, tmp_path: Path
) -> None:
    model.flaky_calls, model.flaky_back = 0, False
    config = banking_config(
        tmp_path / "gepa.toml",
        model.url,
        model.url,
        policy={"model": "flaky-classifier"},
        dataset={"val_seeds": f"0:{FLAKY_ANSWERS}"},  # the seed validation gets through
    )
    runs = tmp_path / "runs"
    result = run(config, runs)
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert line.startswith(
        f"error [container_error]: the policy model at {model.url} is unreachable: HTTP 503: "
    ), line
    assert line.endswith(f"then continue the run with `gepa-cli gepa resume {runs / 'r'}`")

    # doing what it says: the server is back, and the run goes on from its checkpoint
    model.flaky_back = True
    resumed = run_cli("gepa", "resume", str(runs / "r"))
    assert resumed.exit_code == 0, resumed.output
    manifest = orjson.loads((runs / "r" / "manifest.json").read_bytes())
    assert manifest["state"] == "finished"


def test_the_container_says_its_model_is_unreachable_in_the_error_shape() -> None:
    down = stopped_server_url()
    with TestClient(create_app(load_sample(), api_key="")) as client:
        answer = client.post(
            "/rollout",
            json={
                "candidate": {"system_prompt": "Classify."},
                "policy": {"backend": "openai_chat", "model": "m", "base_url": down},
                "dataset_row": {
                    "example_id": "x:0",
                    "query": "Where is my card?",
                    "label": "card_arrival",
                },
            },
        )
    assert answer.status_code == 502
    assert answer.json() == {
        "error": {
            "code": "upstream_unavailable",
            "message": f"the model at {down} is unavailable: cannot connect (Connection refused)",
            "upstream_url": down,
            "cause": "cannot connect (Connection refused)",
        }
    }


# -- 3. validate checks both models before any budget is spent --------------------------


def test_validate_catches_a_stopped_policy_model(model: FakeModel, tmp_path: Path) -> None:
    down = stopped_server_url()
    config = banking_config(tmp_path / "gepa.toml", down, model.url)
    calls = len(model.bodies)
    result = run_cli("gepa", "validate", "-c", str(config))
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert f"the policy model at {down} is unreachable: cannot connect (Connection refused)" in line
    assert f"policy: openai_chat classifier at {down}: FAIL" in result.stdout
    assert (
        "proposer: openai_chat proposer at" in result.stdout
        and "serves 'proposer'" in result.stdout
    )
    assert not (tmp_path / "runs").exists()
    assert len(model.bodies) == calls  # no chat call: nothing spent


def test_validate_catches_a_stopped_proposer_model(model: FakeModel, tmp_path: Path) -> None:
    down = stopped_server_url()
    config = banking_config(tmp_path / "gepa.toml", model.url, down)
    result = run_cli("gepa", "validate", "-c", str(config), "--json")
    assert result.exit_code == 1
    checks = json.loads(result.stdout)["checks"]
    assert checks["policy"]["ok"] is True and "serves 'classifier'" in checks["policy"]["detail"]
    assert checks["proposer"]["ok"] is False
    [line] = error_lines(result.stderr)
    assert (
        f"the proposer model at {down} is unreachable: cannot connect (Connection refused)" in line
    )


def test_container_check_asks_the_policy_check_route(model: FakeModel, tmp_path: Path) -> None:
    up = banking_config(tmp_path / "up.toml", model.url, model.url)
    result = run_cli("container", "check", "--config", str(up), "--json")
    assert result.exit_code == 0, result.output
    steps = {step["route"]: step for step in json.loads(result.stdout)["steps"]}
    assert steps["POST /policy/check"]["ok"], steps
    down = stopped_server_url()
    failed = run_cli(
        "container", "check", "--config", str(banking_config(tmp_path / "d.toml", down, down))
    )
    assert failed.exit_code == 1
    [line] = [ln for ln in failed.stderr.splitlines() if "POST /policy/check" in ln]
    assert line.split()[0] == "FAIL", line
    assert f"model at {down} is unavailable: cannot connect" in failed.stderr


# -- 5. why generation ended, and labels that say what happened -------------------------


def test_the_proposals_ledger_records_finish_reason_and_what_was_evaluated(
    model: FakeModel, tmp_path: Path
) -> None:
    config = banking_config(
        tmp_path / "gepa.toml", model.url, model.url, proposer={"model": "proposer-cut"}
    )
    result = run(config, tmp_path / "runs")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(tmp_path / "runs" / "r" / "proposals.jsonl")
    cut = [row for row in rows if row["finish_reason"] == "length"]
    answered = [row for row in rows if row["finish_reason"] == "stop"]
    assert cut and answered
    # cut at max_tokens before any fence: truncated (raise max_tokens), never "no_fence"
    assert {row["outcome"] for row in cut} == {"unusable: truncated"}
    assert not any(row["evaluated"] for row in cut)
    # a usable answer was tested on the minibatch (rejected or accepted) and says so; the
    # same text proposed again is a duplicate, never evaluated
    kinds = {row["outcome"].split(":")[0]: row["evaluated"] for row in answered}
    evaluated = {"accepted", "rejected", "extended"}  # extended: a chain's tip, later validated
    assert kinds and all(kinds[k] is (k in evaluated) for k in kinds), kinds
    assert set(kinds) <= evaluated | {"duplicate"}


def test_a_short_answer_that_stops_inside_a_fence_is_not_called_truncated(
    model: FakeModel, tmp_path: Path
) -> None:
    config = banking_config(
        tmp_path / "gepa.toml",
        model.url,
        model.url,
        proposer={"model": "proposer-echo"},
        gepa={"max_consecutive_proposer_failures": 2},
    )
    result = run(config, tmp_path / "runs")
    assert result.exit_code == 1
    rows = read_jsonl(tmp_path / "runs" / "r" / "proposals.jsonl")
    assert {(row["outcome"], row["finish_reason"]) for row in rows} == {
        ("unusable: unclosed_fence", "stop")
    }
    [line] = error_lines(result.stderr)
    assert "max_tokens" not in line and "unclosed_fence" in line


# -- 7. [policy] timeout_seconds and params reach the container and are used -------------


def test_policy_timeout_and_params_reach_the_model_call(model: FakeModel) -> None:
    policy = {
        "backend": "openai_chat",
        "model": "classifier",
        "base_url": model.url,
        "timeout_seconds": SLOW_SECONDS * 4,
        "params": {"top_p": 0.5, "seed": 7, "temperature": 2.0},
    }
    row = {"example_id": "x:0", "query": "Where is my card?", "label": "card_arrival"}
    candidate = {"system_prompt": "Classify."}
    with TestClient(create_app(load_sample(), api_key="")) as client:
        ok = client.post(
            "/rollout", json={"candidate": candidate, "policy": policy, "dataset_row": row}
        )
        assert ok.json()["status"] == "completed"
        sent = model.bodies[-1]
        assert (sent["top_p"], sent["seed"]) == (0.5, 7)
        assert sent["temperature"] == 0.0  # [policy] temperature wins over params

        slow = {**policy, "model": "slow-classifier", "timeout_seconds": SLOW_SECONDS / 3}
        late = client.post(
            "/rollout", json={"candidate": candidate, "policy": slow, "dataset_row": row}
        )
    assert late.status_code == 504
    assert late.json()["error"]["cause"] == f"no answer within {SLOW_SECONDS / 3:g} s"


def test_policy_timeout_is_config_sent_but_never_a_cache_key(tmp_path: Path) -> None:
    from gepa_cli.config import load_config
    from gepa_cli.runtime.container.evaluator import POLICY_TRANSPORT_FIELDS, policy_body

    config = banking_config(
        tmp_path / "gepa.toml",
        "http://127.0.0.1:1/v1",
        "http://127.0.0.1:1/v1",
        policy={"timeout_seconds": 240.0},
        **{"policy.params": {"top_p": 0.9}},
    )
    policy = load_config(config).policy
    body = policy_body(policy)
    assert (body["timeout_seconds"], body["params"]) == (240.0, {"top_p": 0.9})
    assert "timeout_seconds" in POLICY_TRANSPORT_FIELDS  # patience, not content
