"""Proposer backends: turn a component's text and a reflective dataset into a new text.

`build_proposer` picks the backend named in ``[proposer]``; every backend renders the
same reflection prompt (`prompt.py`), calls out through the response cache under the
boundary ``proposer.<backend>``, and reads the new text from the answer's fenced block.
"""

from __future__ import annotations

from pathlib import Path

from gepa_cli.config.models import ProposerConfig
from gepa_cli.engine.types import Proposer
from gepa_cli.runtime.boundary import ResponseCache
from gepa_cli.runtime.proposers.command import CommandProposer
from gepa_cli.runtime.proposers.openai_chat import OpenAIChatProposer
from gepa_cli.runtime.proposers.pricing import BUILTIN_PRICES, Price
from gepa_cli.runtime.proposers.prompt import (
    DEFAULT_TEMPLATE,
    ParsedAnswer,
    check_template,
    load_template,
    parse_answer,
    render_prompt,
)

__all__ = [
    "BUILTIN_PRICES",
    "DEFAULT_TEMPLATE",
    "CommandProposer",
    "OpenAIChatProposer",
    "ParsedAnswer",
    "Price",
    "build_proposer",
    "check_template",
    "load_template",
    "parse_answer",
    "render_prompt",
]


def build_proposer(config: ProposerConfig, cache: ResponseCache, base_dir: Path) -> Proposer:
    """The proposer ``config`` describes. ``base_dir`` is the config file's directory: the
    command backend runs there and a relative prompt template is read from there.

    Raises `ConfigError` for an unreadable template or one missing a placeholder. A
    missing API key variable is reported on the first live call, so a readonly cache
    replay runs without the key.
    """
    template = load_template(config.prompt_template, base_dir)
    if config.backend == "openai_chat":
        return OpenAIChatProposer.from_config(config, cache, template)
    return CommandProposer.from_config(config, cache, template, base_dir)
