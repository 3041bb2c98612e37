"""`TaskApp`: a container declared as plain Python, served as contract v1.

The object is itself an ASGI app, so the same value runs in-process
(``[container] app = "pkg.module:app"``), as a child process
(``command = ["{python}", "-m", "pkg.module", "--port", "{port}"]`` with
``app.main()`` under ``if __name__ == "__main__"``) and standalone (uvicorn).
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI

from gepa_cli.taskapp.execute import RolloutFn
from gepa_cli.taskapp.types import BadRequest, Module, PolicySettings

RowFn = Callable[[str, int], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
# answers whether rollouts under this policy can reach their model: a short detail, or
# an ApiError (UpstreamUnavailable when the model is down, BadRequest for a bad policy)
CheckPolicyFn = Callable[[PolicySettings], str | Awaitable[str | None] | None]
Splits = Mapping[str, int] | Callable[[], Mapping[str, int]]
Lifespan = Callable[..., AbstractAsyncContextManager[Any]]
IDENTITY_FIELDS = ("example_id", "split", "seed")


class TaskApp:
    """A task served over HTTP: its program, its dataset and one rollout function."""

    def __init__(
        self,
        *,
        name: str,
        modules: Sequence[Module],
        splits: Splits,
        row: RowFn,
        rollout: RolloutFn,
        description: str = "",
        max_rollout_seconds: float | None = 60.0,
        max_steps: int | None = None,
        max_concurrency: int | None = None,
        api_key_env: str | None = None,
        lifespan: Lifespan | None = None,
        api_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        check_policy: CheckPolicyFn | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("TaskApp.name must be a non-empty string (it is the program id)")
        self.name = name
        self.description = description
        self.modules = tuple(modules)
        _check_modules(self.modules)
        if not callable(splits):
            _check_splits(splits)
        self._splits = splits
        for label, fn in (("row", row), ("rollout", rollout)):
            if not callable(fn):
                raise ValueError(f"TaskApp.{label} must be a function")
        self.row = row
        self.rollout = rollout
        if check_policy is not None and not callable(check_policy):
            raise ValueError("TaskApp.check_policy must be a function (or None)")
        self.check_policy = check_policy
        if max_rollout_seconds is not None and not (
            math.isfinite(max_rollout_seconds) and max_rollout_seconds > 0
        ):
            raise ValueError("TaskApp.max_rollout_seconds must be > 0 (or None for no limit)")
        for label, value in (("max_steps", max_steps), ("max_concurrency", max_concurrency)):
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"TaskApp.{label} must be >= 1 (or None for no limit)")
        self.max_rollout_seconds = max_rollout_seconds
        self.max_steps = max_steps
        self.max_concurrency = max_concurrency
        self.api_key_env = api_key_env
        self.api_key = api_key  # wins over api_key_env; "" means no key at all
        self.lifespan = lifespan
        self.metadata = dict(metadata or {})
        self.state = SimpleNamespace()  # for the lifespan to fill; rollouts see it as r.state
        self._asgi: FastAPI | None = None
        self._lock = threading.Lock()

    # -- what the routes serve --------------------------------------------------------

    def split_sizes(self) -> dict[str, int]:
        sizes = self._splits() if callable(self._splits) else self._splits
        _check_splits(sizes)
        return dict(sizes)

    def program(self) -> dict[str, Any]:
        targets = [m for m in self.modules if m.mutable]
        return {
            "version": "prompt_program.v1",
            "program_id": self.name,
            "modules": [
                {
                    "module_id": m.module_id,
                    "role": m.role,
                    "content": m.seed,
                    "mutable": m.mutable,
                    "candidate_field": m.field,
                }
                for m in self.modules
            ],
            "target_modules": [
                {
                    "module_id": m.module_id,
                    "candidate_field": m.field,
                    **({"objective": m.objective} if m.objective else {}),
                }
                for m in targets
            ],
            "seed_candidate": {m.field: m.seed for m in targets},
        }

    def full_candidate(self, given: Mapping[str, str]) -> dict[str, str]:
        """Every module's text: what the optimizer sent, the seed for the rest."""
        fields = {m.field: m for m in self.modules}
        unknown = sorted(set(given) - set(fields))
        if unknown:
            raise BadRequest(
                "unknown_candidate_field",
                f"candidate field {unknown[0]!r} is not a module of {self.name!r} "
                f"(fields: {', '.join(fields)})",
            )
        candidate: dict[str, str] = {}
        for name, module in fields.items():
            text = given.get(name, module.seed)
            if not text.strip() and name not in given:
                raise BadRequest("missing_candidate_field", f"candidate needs {name!r}")
            candidate[name] = text
        return candidate

    async def make_row(self, split: str, seed: int) -> dict[str, Any]:
        value = self.row(split, seed)
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, Mapping):
            raise TypeError(
                f"the row function returned {type(value).__name__} for {split}:{seed}, "
                "not a dict of task fields"
            )
        row: dict[str, Any] = {"example_id": f"{split}:{seed}", "split": split, "seed": seed}
        row.update(value)
        return row

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key or None
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None

    # -- serving ----------------------------------------------------------------------

    def asgi(self) -> FastAPI:
        """The FastAPI app (built once, on first use)."""
        with self._lock:
            if self._asgi is None:
                from gepa_cli.taskapp.server import build

                self._asgi = build(self)
            return self._asgi

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi()(scope, receive, send)

    def main(self, argv: Sequence[str] | None = None) -> None:
        """Serve standalone: ``python -m pkg.module [--host H] [--port P]``."""
        import uvicorn

        parser = argparse.ArgumentParser(description=f"Serve the {self.name!r} container.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--log-level", default="warning")
        args = parser.parse_args(argv)
        uvicorn.run(self, host=args.host, port=args.port, log_level=args.log_level)


def _check_modules(modules: Sequence[Module]) -> None:
    if not modules or not all(isinstance(m, Module) for m in modules):
        raise ValueError("TaskApp.modules must be a non-empty list of Module(...)")
    for attr in ("module_id", "field"):
        names = [getattr(m, attr) for m in modules]
        if len(set(names)) != len(names):
            raise ValueError(f"TaskApp.modules: every module needs its own {attr}")
    if not any(m.mutable for m in modules):
        raise ValueError("TaskApp.modules: at least one module must be mutable")


def _check_splits(splits: Any) -> None:
    if not isinstance(splits, Mapping) or not splits:
        raise ValueError("TaskApp.splits must map split names to sizes, e.g. {'train': 100}")
    for name, size in splits.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"TaskApp.splits: split name {name!r} must be a non-empty string")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"TaskApp.splits[{name!r}] must be a whole number >= 0")
