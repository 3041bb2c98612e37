"""Every cookbook's real-model config, end to end against the local model server.

For each entry of COOKBOOKS: the cookbook's own `gepa.openai.toml`, pointed at the
server and cut to a tiny budget, runs live through `gepa-cli gepa run`; then a readonly
replay of its cache must give the same normalized event feed (`events compare`) without
a single model call; the tokens the run recorded must be the tokens the server counted
(its /metrics); and every cost must read as unknown unless a price is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import tomllib

import llm_server

REPO = Path(__file__).resolve().parents[1]
COOKBOOKS_DIR = REPO / "cookbooks"
GEPA_CLI = Path(sys.executable).with_name("gepa-cli")
REAL_MODEL_CONFIG = "gepa.openai.toml"


@dataclass(frozen=True)
class RealModelRun:
    """One cookbook's real-model config and the overrides that make its run tiny.

    ``overrides`` maps dotted config keys to values; they are applied after the model
    endpoint is pointed at the local server. Keep budgets small: every rollout is a
    model call on a shared 2-core machine.
    """

    cookbook: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # a defect of the cookbook that this server exposes: its tests are expected to fail
    known_issue: str | None = None

    def param(self) -> Any:
        marks = [pytest.mark.xfail(reason=self.known_issue)] if self.known_issue else []
        return pytest.param(self, id=self.cookbook, marks=marks)

    @property
    def config(self) -> Path:
        return COOKBOOKS_DIR / self.cookbook / REAL_MODEL_CONFIG


# A new cookbook with a gepa.openai.toml gets one entry here (the guard test below
# fails until it has one).
COOKBOOKS = [
    RealModelRun(
        "banking77",
        {
            "dataset.train_seeds": "0:9",
            "dataset.val_seeds": "0:4",
            "dataset.heldout_seeds": "0:4",
            "gepa.max_total_rollouts": 30,
            "gepa.max_proposals": 2,
            # one call at a time: the server reads the ~1k-token system prompt once into
            # its cache and every later call reuses it, and no call waits long enough to
            # hit [policy] timeout_seconds (60 s by default), whose retry would spend
            # tokens the run cannot record
            "container.max_concurrency": 1,
            # the config's 8,000 is for a real endpoint; a base model writes until the cap
            "proposer.max_tokens": 256,
        },
    ),
    RealModelRun(
        "crafter",
        {
            "dataset.train_seeds": "0:2",
            "dataset.val_seeds": "0:1",
            "dataset.heldout_seeds": "0:1",
            "gepa.minibatch_size": 1,
            # seed validation 1 + heldout 2 + one iteration (2) and its child's validation
            "gepa.max_total_rollouts": 8,
            "gepa.max_proposals": 1,
            # every step of an episode is a model call
            "policy.params.max_steps": 3,
            "proposer.max_tokens": 256,
            "container.max_concurrency": 1,
        },
    ),
    RealModelRun(
        "tblite",
        {
            "dataset.train_seeds": "0:2",
            "dataset.val_seeds": "0:1",
            "dataset.heldout_seeds": "0:1",
            "gepa.minibatch_size": 1,
            "gepa.max_total_rollouts": 8,
            "gepa.max_proposals": 1,
            # every command of an episode is a model call
            "policy.params.sandbox.max_commands": 2,
            "policy.max_tokens": 64,
            "proposer.max_tokens": 256,
            "container.max_concurrency": 1,
        },
    ),
    RealModelRun(
        "code_review",
        {
            "dataset.train_seeds": "0:2",
            "dataset.val_seeds": "0:2",
            "dataset.heldout_seeds": "0:2",
            "gepa.minibatch_size": 2,
            # seed validation 2 + heldout 4 + one iteration (4) and its child's validation
            "gepa.max_total_rollouts": 14,
            "gepa.max_proposals": 1,
            "policy.max_tokens": 64,
            "proposer.max_tokens": 256,
            "container.max_concurrency": 1,
        },
    ),
]

# prices for the proposer and the policy in the priced replay, USD per million tokens
PRICES = {"input_per_million_usd": 0.5, "output_per_million_usd": 1.5}
POLICY_PRICES = {"input_per_million_usd": 0.25, "output_per_million_usd": 1.0}


def test_every_real_model_config_has_an_entry() -> None:
    shipped = sorted(p.parent.name for p in COOKBOOKS_DIR.glob(f"*/{REAL_MODEL_CONFIG}"))
    listed = sorted(entry.cookbook for entry in COOKBOOKS)
    assert shipped == listed, (
        f"cookbooks with a {REAL_MODEL_CONFIG}: {shipped}; COOKBOOKS in {__file__} lists "
        f"{listed}: add an entry (with a tiny budget) for each new one"
    )


def point_at(raw: dict[str, Any], server: llm_server.Server) -> dict[str, Any]:
    """The config with every openai_chat endpoint at ``server``, no key and no price."""
    for name in ("policy", "proposer"):
        section = raw.get(name)
        if isinstance(section, dict) and section.get("backend") == "openai_chat":
            section["base_url"] = server.base_url
            section["model"] = llm_server.MODEL_ALIAS
            section.pop("api_key_env", None)
            section.pop("prices", None)
    return raw


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *sections, key = dotted.split(".")
    node = raw
    for name in sections:
        node = node.setdefault(name, {})
    node[key] = value


@dataclass
class Recorded:
    entry: RealModelRun
    tmp: Path
    config: Path  # the tiny, server-pointed copy of the cookbook's config
    priced: Path  # the same with a proposer and a policy price
    live: Path
    summary: dict[str, Any]
    server_before: dict[str, float]
    server_after: dict[str, float]
    live_seconds: float


def gepa(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEPA_CLI_")}
    proc = subprocess.run(
        [str(GEPA_CLI), *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if check and proc.returncode != 0:
        pytest.fail(f"gepa-cli {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module", params=[entry.param() for entry in COOKBOOKS])
def recorded(
    request: pytest.FixtureRequest,
    server: llm_server.Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Recorded]:
    entry: RealModelRun = request.param
    tmp = tmp_path_factory.mktemp(entry.cookbook)
    raw = point_at(tomllib.loads(entry.config.read_text()), server)
    for dotted, value in entry.overrides.items():
        set_dotted(raw, dotted, value)
    # beside the original, so the container and every relative path resolve the same way
    config = entry.config.with_name(f".llm-test-{os.getpid()}.toml")
    priced = entry.config.with_name(f".llm-test-{os.getpid()}-priced.toml")
    config.write_text(tomli_w.dumps(raw))
    raw["proposer"]["prices"] = PRICES
    raw["policy"]["prices"] = POLICY_PRICES
    priced.write_text(tomli_w.dumps(raw))
    try:
        before = llm_server.metrics(server.url)
        started = time.monotonic()
        proc = gepa(
            "gepa", "run", "--config", str(config), "--output-dir", str(tmp / "runs"),
            "--run-id", "live", "--cache-path", str(tmp / "cache"), "--cache-mode", "readwrite",
            "--json",
        )  # fmt: skip
        seconds = time.monotonic() - started
        after = llm_server.metrics(server.url)
        yield Recorded(
            entry,
            tmp,
            config,
            priced,
            tmp / "runs" / "live",
            json.loads(proc.stdout),
            before,
            after,
            seconds,
        )
    finally:
        config.unlink(missing_ok=True)
        priced.unlink(missing_ok=True)


def replay(
    recorded: Recorded, run_id: str, config: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return gepa(
        "gepa", "run", "--config", str(config), "--output-dir", str(recorded.tmp / "runs"),
        "--run-id", run_id, "--cache-path", str(recorded.tmp / "cache"),
        "--cache-mode", "readonly", *extra,
    )  # fmt: skip


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def live_tokens(run_dir: Path) -> tuple[int, int, int]:
    """(rollouts and proposals, prompt tokens, completion tokens) this run made live."""
    calls = prompt = completion = 0
    for ledger in ("rollouts.jsonl", "proposals.jsonl"):
        for row in jsonl(run_dir / ledger):
            usage = row.get("usage") or {}
            if row.get("cache_action") == "hit" or not usage:
                continue
            calls += 1
            prompt += int(usage["prompt_tokens"])
            completion += int(usage["completion_tokens"])
    return calls, prompt, completion


def test_live_run_finishes_and_its_tokens_are_the_servers(recorded: Recorded) -> None:
    manifest = json.loads((recorded.live / "manifest.json").read_text())
    assert manifest["state"] == "finished", manifest.get("error")
    calls, prompt, completion = live_tokens(recorded.live)
    assert calls > 0 and prompt > 0 and completion > 0
    assert "proposer.openai_chat" in manifest["usage"], (
        "the run made no proposal: raise the entry's gepa.max_total_rollouts"
    )
    delta = {k: recorded.server_after[k] - recorded.server_before[k] for k in recorded.server_after}
    # the server counts prompt tokens it read and those it took from its prompt cache
    # separately; the usage of each answer has their sum
    server_prompt = delta["prompt_tokens_total"] + delta["prompt_tokens_cached_total"]
    retried = [r for r in jsonl(recorded.live / "rollouts.jsonl") if (r.get("attempts") or 1) > 1]
    assert (prompt, completion) == (server_prompt, delta["tokens_predicted_total"]), (
        f"{len(retried)} rollouts were retried; the server also counts the tokens of the "
        "attempts the container gave up on (a timeout), which no rollout reports"
    )
    # the manifest's totals (cache hits included) are the ledgers' totals
    usage = manifest["usage"]
    assert sum(b["calls"] for b in usage.values()) >= calls
    rows = jsonl(recorded.live / "rollouts.jsonl")
    assert usage["container.rollout"]["prompt_tokens"] == sum(
        r["usage"]["prompt_tokens"] for r in rows
    )
    print(
        f"\n{recorded.entry.cookbook}: {recorded.live_seconds:.0f} s live, {calls} live "
        "rollouts and proposals, "
        f"{prompt} prompt tokens ({delta['prompt_tokens_cached_total']:.0f} from the server's "
        f"prompt cache), {completion} completion tokens"
    )


def test_readonly_replay_is_identical_and_calls_no_model(
    recorded: Recorded, server: llm_server.Server
) -> None:
    before = llm_server.metrics(server.url)
    replay(recorded, "replay", recorded.config, "--json")
    after = llm_server.metrics(server.url)
    for counter in ("prompt_tokens_total", "prompt_tokens_cached_total", "tokens_predicted_total"):
        assert after[counter] == before[counter], f"the replay called the model ({counter})"
    compared = gepa(
        "events", "compare", "--left", str(recorded.live / "events.jsonl"),
        "--right", str(recorded.tmp / "runs" / "replay" / "events.jsonl"), check=False,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr


def test_costs_are_unknown_unless_priced(recorded: Recorded) -> None:
    manifest = json.loads((recorded.live / "manifest.json").read_text())
    assert manifest["cost_known"] is False
    assert "unknown" in (manifest["cost_note"] or "")
    for boundary in manifest["usage"].values():
        assert boundary["cost_known"] is False
    for ledger in ("rollouts.jsonl", "proposals.jsonl"):
        for row in jsonl(recorded.live / ledger):
            if row.get("usage"):
                assert row["usage"]["cost_known"] is False, (ledger, row["usage"])

    # the same recording, priced: [proposer.prices] prices the proposer's calls and
    # [policy.prices] the tokens the container reports; each cost is tokens x price
    replay(recorded, "priced", recorded.priced, "--json")
    priced = json.loads((recorded.tmp / "runs" / "priced" / "manifest.json").read_text())
    for boundary, prices in (
        ("proposer.openai_chat", PRICES),
        ("container.rollout", POLICY_PRICES),
    ):
        usage = priced["usage"][boundary]
        expected = (
            usage["prompt_tokens"] * prices["input_per_million_usd"]
            + usage["completion_tokens"] * prices["output_per_million_usd"]
        ) / 1e6
        assert usage["cost_known"] is True, boundary
        assert usage["cost_usd"] == pytest.approx(expected), boundary
    assert priced["cost_known"] is True


def test_summaries_print_unknown_cost_as_unknown(recorded: Recorded) -> None:
    # the live run: what it recorded and what it spent are both unknown, never 0
    facts = recorded.summary
    assert (facts["cost_usd"], facts["spent_usd"], facts["cost_known"]) == (None, None, False)
    # its replay: the recorded cost is still unknown; it spent nothing live, a known 0
    human = replay(recorded, "human", recorded.config)
    cost_line = next(ln for ln in human.stderr.splitlines() if ln.strip().startswith("cost:"))
    assert cost_line.split() == ["cost:", "unknown", "recorded,", "$0.0000", "spent", "live"]
