from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from banking77_task.data import load_sample
from banking77_task.guidance import PromptDoc, seed_prompt, surface_words
from banking77_task.policy import UNKNOWN, offline_classify
from banking77_task.propose import propose_text
from banking77_task.smoke import accuracy, evaluate, greedy

LABELS = load_sample().labels


def test_offline_policy_cues_ties_and_unknown() -> None:
    prompt = "Intro line\n- card_arrival: arrive, not received\n- card_linking: link\n"
    assert offline_classify(prompt, "My card hasn't arrived", LABELS)[0] == "card_arrival"
    assert offline_classify(prompt, "It was not received", LABELS)[0] == "card_arrival"
    assert offline_classify(prompt, "How to link it?", LABELS)[0] == "card_linking"
    assert offline_classify(prompt, "What is the weather?", LABELS)[0] == UNKNOWN
    tie = "- card_linking: card\n- card_arrival: card\n"
    assert offline_classify(tie, "my card", LABELS)[0] == "card_linking"  # first listed
    # a cue shared by two labels weighs half: the label with its own cue wins
    shared = "- card_linking: card\n- card_arrival: card, waiting\n- pin_blocked: card\n"
    assert offline_classify(shared, "waiting for my card", LABELS)[0] == "card_arrival"
    assert offline_classify("- not_a_label: card\n", "card", LABELS)[0] == UNKNOWN


def test_seed_is_low_but_nonzero() -> None:
    data = load_sample()
    acc = accuracy(seed_prompt(LABELS), data.splits["train"], LABELS)
    assert 0.0 < acc < 0.2


def _request(text: str, records: list[dict[str, object]]) -> str:
    return json.dumps(
        {
            "prompt": "ignored by the offline proposer",
            "candidate": {"system_prompt": text},
            "component": "system_prompt",
            "current_text": text,
            "reflective_dataset": records,
        }
    )


def test_proposer_edits_only_from_given_examples(cookbook_dir: Path) -> None:
    seed = seed_prompt(LABELS)
    data = load_sample()
    records = evaluate(seed, data.splits["train"][:3], LABELS)
    new = propose_text(seed, records)
    assert new != seed
    before, after = PromptDoc.parse(seed), PromptDoc.parse(new)
    wrong = {r["inputs"]["label"] for r in records if r["score"] < 1}  # type: ignore[index]
    words = set(surface_words(" ".join(str(r["inputs"]["query"]) for r in records)))  # type: ignore[index]
    changed = set()
    for line in after.guidance():
        old_line = before.line_for(line.label)
        assert old_line is not None
        added = set(line.cues) - set(old_line.cues)
        if added:
            changed.add(line.label)
            assert added <= words  # cues come only from the queries it was given
    assert changed and changed <= wrong
    score = sum(r["score"] for r in evaluate(new, data.splits["train"][:3], LABELS))
    assert score > sum(r["score"] for r in records)  # type: ignore[misc]
    # nothing wrong -> nothing to change
    right = [{**r, "score": 1.0, "feedback": "Correct."} for r in records]
    assert propose_text(seed, right) == seed

    # the CLI: deterministic, one fenced block holding the full new prompt
    def run() -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "banking77_task.propose"],
            input=_request(seed, records),
            capture_output=True,
            text=True,
            cwd=cookbook_dir,
            check=True,
        )
        return proc.stdout

    out = run()
    assert out == run()
    assert out.startswith("```\n") and out.rstrip().endswith("```")
    assert out.strip().strip("`").strip("\n") == new.rstrip("\n") or new in out


def test_proposer_cli_rejects_bad_input(cookbook_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "banking77_task.propose"],
        input="not json",
        capture_output=True,
        text=True,
        cwd=cookbook_dir,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_greedy_loop_raises_heldout_accuracy() -> None:
    result = greedy(load_sample(), minibatch_size=3, epochs=1)
    assert result.best["heldout"] >= result.seed["heldout"] + 0.25
    assert result.best["val"] >= result.seed["val"] + 0.25
    assert result.accepted > 0
    again = greedy(load_sample(), minibatch_size=3, epochs=1)
    assert again.best_prompt == result.best_prompt  # deterministic end to end
