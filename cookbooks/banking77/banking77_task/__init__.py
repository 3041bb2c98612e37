"""Banking77 intent classification as a gepa-cli cookbook: container, policies, proposer."""

PROGRAM_ID = "banking77"
MODULE_ID = "classifier"
CANDIDATE_FIELD = "system_prompt"
