"""Online GEPA: an OpenAI-compatible proxy that serves candidates to live traffic, takes
rewards for rollout ids, learns, and survives restarts (docs/online.md).

A front end: mounted into the run service (`gepa-cli gepa service`), it imports the
service's helpers, the runtime's proposers and cache, and the artifacts' run directory
schema; nothing imports it but the CLI.
"""

from gepa_cli.online.client import OnlineClient
from gepa_cli.online.config import OnlineConfig, load_online_config

__all__ = ["OnlineClient", "OnlineConfig", "load_online_config"]
