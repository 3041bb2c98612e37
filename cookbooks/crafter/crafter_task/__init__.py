"""Crafter as a gepa-cli cookbook: a multi-turn agent task on the real game, offline by default.

Import with ``cookbooks/crafter`` on ``sys.path`` (the optimizer does that for the
config's folder). The modules are plain Python, usable without HTTP: ``game`` (headless
worlds and the semantic state), ``playbook`` (the rule grammar), ``agent`` (the offline
rule follower), ``episode`` (one scored episode), ``llm`` (the openai_chat agent loop),
``rollout`` (one rollout from candidate, row and policy), ``propose`` (the offline
proposer) and ``data`` (world seeds by split).
"""

PROGRAM_ID = "crafter"
MODULE_ID = "agent"
CANDIDATE_FIELD = "instructions"
