"""Validated TOML configuration (design.md section 2)."""

from gepa_cli.config.load import ENV_OVERRIDES, config_from_dict, load_config
from gepa_cli.config.models import (
    CacheConfig,
    CandidateConfig,
    ContainerConfig,
    DatasetConfig,
    GepaConfig,
    GepaSettings,
    PolicyConfig,
    ProposerConfig,
    RunConfig,
)

__all__ = [
    "ENV_OVERRIDES",
    "CacheConfig",
    "CandidateConfig",
    "ContainerConfig",
    "DatasetConfig",
    "GepaConfig",
    "GepaSettings",
    "PolicyConfig",
    "ProposerConfig",
    "RunConfig",
    "config_from_dict",
    "load_config",
]
