"""Banking77 intent classification as a gepa-cli cookbook: container, policies, proposer."""

CONTRACT_VERSION = "gepa_cli.container.v1"
PROGRAM_ID = "banking77"
MODULE_ID = "classifier"
CANDIDATE_FIELD = "system_prompt"
