"""The quality benchmark suite: task/proposer pairs and the engines that optimize them.

- `core`: what a pair is (a task, a proposer factory, budgets) and the rollout records
  every engine passes to the proposer;
- `engines`: the reference `gepa` package, gepa-cli's `GepaEngine` (its defaults, its
  `full` mode and named variants) and a greedy loop without validation;
- `runner`: every engine x budget x seed of a list of pairs, the tables and the files;
- `banking77`, `code_review`, `crafter`: the tasks (the cookbooks' offline policies);
- `learned_cues`, `forgetful`: the proposers written for the benchmark;
- `pairs`: the pairs themselves, which bench/quality_<pair>.py and bench/quality_suite.py run.

Only the standard library is imported at module level: the pair scripts
(bench/quality_*.py) import this package before they re-run themselves in
bench/.venv-quality, where gepa-cli, the reference `gepa` and the cookbooks' deps live.
"""
