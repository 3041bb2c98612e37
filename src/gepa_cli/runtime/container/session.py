"""One run's view of its container: launch (if needed), connect, handshake, evaluate.

``live=False`` is readonly replay: nothing is launched or called, the handshake and
every rollout come from the cache.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from gepa_cli.config.models import GepaConfig
from gepa_cli.runtime.boundary import ResponseCache
from gepa_cli.runtime.container.client import ContainerClient
from gepa_cli.runtime.container.evaluator import ContainerEvaluator
from gepa_cli.runtime.container.handshake import HandshakeResult, handshake
from gepa_cli.runtime.container.launcher import ContainerLauncher


class ContainerSession:
    """``async with ContainerSession(config, cache, base_dir=..., log_dir=...) as session:``."""

    def __init__(
        self,
        config: GepaConfig,
        cache: ResponseCache,
        *,
        base_dir: Path,
        log_dir: Path,
        live: bool = True,
        install_signal_handlers: bool = True,
        app: Any = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self.live = live
        self.launcher = ContainerLauncher(
            config.container,
            base_dir=base_dir,
            log_dir=log_dir,
            install_signal_handlers=install_signal_handlers,
            app=app,
        )
        self.url: str | None = None
        self.client: ContainerClient | None = None
        self._handshake: HandshakeResult | None = None

    @property
    def handshake(self) -> HandshakeResult:
        if self._handshake is None:
            raise RuntimeError("the session is not open: use 'async with ContainerSession(...)'")
        return self._handshake

    def evaluator(self) -> ContainerEvaluator:
        return ContainerEvaluator(
            self.handshake,
            self.cache,
            self.client,
            policy=self.config.policy,
            submission_mode=self.config.gepa.rollout_submission_mode,
            max_consecutive_failures=self.config.container.max_consecutive_failures,
            log_hint=self.launcher.log_hint,
        )

    async def __aenter__(self) -> ContainerSession:
        try:
            if self.live:
                self.url = await self.launcher.__aenter__()
                self.client = ContainerClient.from_config(self.config.container, self.url)
            self._handshake = await handshake(self.config, self.client, self.cache, live=self.live)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            if self.client is not None:
                await self.client.aclose()
                self.client = None
        finally:
            if self.live:
                await self.launcher.__aexit__(None, None, None)
