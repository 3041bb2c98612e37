"""The task/proposer pairs of the quality suite (issue 22's (a) to (d)).

Each pair names its task loader, a factory for a fresh proposer (one per run), its
budgets, and what it is built to show. bench/quality_<key>.py runs one pair,
bench/quality_suite.py all of them.
"""

from __future__ import annotations

from quality import banking77, code_review, crafter
from quality.core import Pair
from quality.forgetful import CARELESS_SHARE, careless_learned_cues
from quality.learned_cues import CUES_PER_EXAMPLE, LearnedCuesProposer

BANKING77 = Pair(
    key="banking77",
    title="(a) Banking77, cookbook proposer",
    load=banking77.load_task,
    proposer=banking77.cookbook_proposer,
    about=(
        "Pair (a). The cookbook's offline proposer "
        "(cookbooks/banking77/banking77_task/propose.py) fixes every wrong example it is "
        "shown: it adds the query's most distinctive words as cues on the expected label "
        "and drops the cues the query matched from the wrongly predicted label, so a "
        "child can lose elsewhere what it gained on its minibatch."
    ),
)

LEARNED = Pair(
    key="banking77_learned",
    title="(b) Banking77, learned-cues proposer",
    load=banking77.load_task,
    proposer=LearnedCuesProposer,
    about=(
        "Pair (b). The proposer (bench/quality/learned_cues.py, written for this "
        f"benchmark) adds at most {CUES_PER_EXAMPLE} cue words per wrong example, never "
        "removes one, and ranks words by statistics it learns only from the records "
        "shown to it in the run (a fresh proposer per run). Its children differ from "
        "their parents on few examples and rarely lose what worked: validating each of "
        "them mostly re-measures what did not change."
    ),
)

CARELESS = Pair(
    key="banking77_careless",
    title="(c) Banking77, careless proposer",
    load=banking77.load_task,
    proposer=careless_learned_cues,
    about=(
        "Pair (c). The proposer (bench/quality/forgetful.py) is pair (b)'s, except that "
        f"for {CARELESS_SHARE:.0%} of requests (a hash of the request decides) it also "
        "forgets the cues of every label its minibatch did not show. Such a child wins "
        "its minibatch (it fixed what it was shown) and loses on validation: minibatch "
        "gains often do not survive validation, and a loop that never validates keeps "
        "whatever its last minibatch liked."
    ),
)

CODE_REVIEW = Pair(
    key="code_review",
    title="(d) code review, cookbook proposer",
    load=code_review.load_task,
    proposer=code_review.cookbook_proposer,
    about=(
        "Pair (d). The code-review cookbook offline: its pattern-detector reviewer follows "
        "the checklist, its grader scores findings against labelled defects, and its "
        "offline proposer (cookbooks/code_review/code_review_task/propose.py) adds "
        "items for missed defects or narrows the item that raised the most false alarms."
    ),
)

CRAFTER = Pair(
    key="crafter",
    title="(d) Crafter, cookbook proposer",
    load=crafter.load_task,
    proposer=crafter.cookbook_proposer,
    budgets=(100, 300),
    about=(
        "Pair (d). The Crafter cookbook offline: each rollout plays a real episode "
        "(crafter 1.8.3) on a fixed world with the offline agent following the playbook's "
        "rules; the offline proposer (cookbooks/crafter/crafter_task/propose.py) rewrites "
        "rules from the episodes it is shown. Episodes cost real CPU, so its budgets are "
        "small (100 and 300 rollouts by default) and the episode step limit is "
        "`--crafter-steps`; the whole split has 24 train, 8 val and 12 heldout worlds."
    ),
)

ALL = (BANKING77, LEARNED, CARELESS, CODE_REVIEW, CRAFTER)
