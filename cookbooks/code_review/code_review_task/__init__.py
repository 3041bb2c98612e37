"""Code review as a gepa-cli cookbook: a reviewer's checklist, optimized against
labelled defects in small diffs, with precision, recall and noise as objectives."""

PROGRAM_ID = "code_review"
MODULE_ID = "reviewer"
CANDIDATE_FIELD = "checklist"

# The defect categories a finding may name (labels use the same list).
CATEGORIES = (
    "sql-injection",
    "command-injection",
    "unchecked-error",
    "resource-leak",
    "off-by-one",
    "race",
    "wrong-default",
    "hardcoded-secret",
)
LANGUAGES = ("python", "go")
