"""TBLite as a gepa-cli cookbook: sandboxed shell tasks, a terminal agent, its playbook."""

from pathlib import Path

CONTRACT_VERSION = "gepa_cli.container.v1"
PROGRAM_ID = "tblite"
MODULE_ID = "agent"
CANDIDATE_FIELD = "system_prompt"
SEED_PLAYBOOK = (Path(__file__).with_name("seed_playbook.md")).read_text(encoding="utf-8")
