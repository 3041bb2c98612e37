"""The runs the show, diff and report tests look at (the fixtures are in conftest.py).

- small: the reference task (one module), finished by its rollout budget; while it
  ran, a listener rendered its report, so that report is of a still-running run;
- stopped: the same task, its proposer an OpenAI-compatible local model the price table
  does not know (so its cost is unknown), stopped at a safe point by a STOP file (as
  `gepa stop` does);
- merges: a two-module variant whose proposer rewrites one module to one focus word, so
  branches win different examples and merges are accepted; two frontier members besides
  the seed and the best are scored on heldout;
- failed: a proposer that keeps failing (the run fails after validating its seed);
- down: a container that never answers (the run fails before any event).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request

from gepa_cli.artifacts import read_jsonl
from gepa_cli.errors import GepaCliError
from gepa_cli.runner import GepaRun

# Two modules, scored together: a row's keywords count wherever they appear. The
# brevity objective makes shorter texts a trade-off against coverage.
TWO_MODULES = """
from gepa_cli.taskapp import Module, Rollout, RolloutResult, TaskApp
from reference_container import SPLITS, make_row


async def rollout(r: Rollout) -> RolloutResult:
    text = (r.candidate["system_prompt"] + " " + r.candidate["checklist"]).lower()
    missing = [word for word in r.row["keywords"] if word not in text]
    coverage = 1 - len(missing) / len(r.row["keywords"])
    feedback = "Missing: " + ", ".join(missing) + "." if missing else "All keywords present."
    brevity = 1 / (1 + len(text) / 200)
    return RolloutResult(
        reward=coverage, objectives={"coverage": coverage, "brevity": brevity},
        feedback=feedback, output=missing,
    )


app = TaskApp(
    name="keywords_two_modules",
    modules=[
        Module(module_id="instructions", field="system_prompt", seed="You are helpful."),
        Module(module_id="checks", field="checklist", seed="Check clarity."),
    ],
    splits=SPLITS, row=make_row, rollout=rollout,
)
"""

# A deterministic stand-in for an LLM proposer that replaces the text with one focus
# word (the keyword the minibatch misses most), so children trade examples off.
FOCUS_PROPOSER = """
import json, re, sys
from collections import Counter
request = json.load(sys.stdin)
text = request["current_text"]
missing = Counter()
for record in request["reflective_dataset"]:
    found = re.search(r"Missing: (.*)\\.", record["feedback"] or "")
    if found:
        missing.update(word.strip() for word in found.group(1).split(","))
ranked = sorted((w for w in missing if w not in text.lower()), key=lambda w: (-missing[w], w))
print("```\\n" + (f"Focus on {ranked[0]}." if ranked else text) + "\\n```")
"""

# An OpenAI-compatible stand-in for a model the price table does not know: it reads the
# reflection prompt (current text and feedback) and adds the first missing keyword.
LOCAL_MODEL = "local-unpriced-model"


def keyword_model() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        prompt = (await request.json())["messages"][-1]["content"]
        current = re.search(r"# Current text\n\n```\n(.*?)\n```", prompt, re.S)
        text = current.group(1) if current else ""
        missing = sorted(
            {w.strip() for m in re.findall(r"Missing: (.*?)\.", prompt) for w in m.split(",")}
        )
        new = [word for word in missing if word not in text.lower()]
        answer = text + f" Mind {new[0]}." if new else text
        return {
            "choices": [{"message": {"role": "assistant", "content": f"```\n{answer}\n```"}}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 12},
        }

    return app


def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port in a thread; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "model server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(5)


FAILING_PROPOSER = "import sys\nsys.stderr.write('model offline\\n')\nsys.exit(3)\n"


@dataclass
class Run:
    path: Path

    @property
    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads((self.path / "manifest.json").read_bytes())
        return data

    def ledger(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.path / name)


def execute(
    config: Path, run_id: str, runs: Path, listener: Any = None, *, fails: bool = False
) -> Path:
    run = GepaRun.from_toml(config, run_id=run_id, output_dir=runs)
    if listener is not None:
        run.on_event(listener)
    if fails:
        with pytest.raises(GepaCliError):
            run.execute()
    else:
        run.execute()
    return runs / run_id


@dataclass
class SmallRun(Run):
    running_report: Path  # rendered by a listener while the run was running
