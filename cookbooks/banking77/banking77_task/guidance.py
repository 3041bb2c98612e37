"""The shared vocabulary of the offline policy and the offline proposer.

A prompt carries *guidance lines* such as ``- card_arrival: arrive, delivery, not received``:
a label, then comma-separated cues. The offline policy scores labels by the cues that
occur in a query; the proposer edits the cues. Both normalize text the same way here,
so a cue written by the proposer matches the queries it was taken from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Function words carry no intent; a cue made only of them would match almost every query.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "get",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "i'm",
        "if",
        "in",
        "into",
        "is",
        "it",
        "it's",
        "its",
        "just",
        "me",
        "might",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "please",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yet",
        "also",
        "still",
        "now",
        "today",
        "want",
        "need",
        "like",
        "know",
        "tell",
        "help",
        "hi",
        "hello",
        "thanks",
        "thank",
        "one",
        "im",
        "ive",
        "id",
        "able",
        "let",
        "may",
        "much",
        "many",
        "way",
    ]
)

_TOKEN = re.compile(r"[a-z0-9]+")
_GUIDANCE = re.compile(r"^\s*[-*]\s+(?P<label>[^\s:][^:]*?)\s*:\s*(?P<cues>.*?)\s*$")


def _expand_contractions(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\bcan't\b", "can not", text)
    text = re.sub(r"\bwon't\b", "will not", text)
    return re.sub(r"n't\b", " not", text)


def stem(word: str) -> str:
    """A deliberately light stemmer: enough that 'arrived', 'arrive' and 'arrives' meet."""
    w = word
    if (len(w) >= 5 and w.endswith("ies")) or (len(w) >= 5 and w.endswith("ied")):
        w = w[:-3] + "y"
    elif len(w) >= 6 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) >= 5 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) >= 4 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) >= 5 and w.endswith("e"):
        w = w[:-1]
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeious":
        w = w[:-1]
    return w


def surface_words(text: str) -> list[str]:
    """Lowercased words of ``text`` as a reader would write them (contractions expanded)."""
    return _TOKEN.findall(_expand_contractions(text))


def tokens(text: str) -> tuple[str, ...]:
    """Normalized tokens of ``text``, stopwords kept so phrases stay contiguous."""
    return tuple(stem(w) for w in surface_words(text))


def is_content_word(word: str) -> bool:
    return word not in STOPWORDS and len(word) >= 3 and not word.isdigit()


def cue_key(cue: str) -> tuple[str, ...]:
    """The normalized form of a cue; empty when the cue is only function words."""
    words = surface_words(cue)
    if not any(is_content_word(w) for w in words):
        return ()
    return tuple(stem(w) for w in words)


@dataclass
class GuidanceLine:
    label: str
    cues: list[str] = field(default_factory=list)

    def render(self) -> str:
        return f"- {self.label}: {', '.join(self.cues)}"


@dataclass
class PromptDoc:
    """A prompt split into guidance lines (editable) and every other line (kept verbatim)."""

    lines: list[str | GuidanceLine]

    @classmethod
    def parse(cls, text: str) -> PromptDoc:
        out: list[str | GuidanceLine] = []
        for raw in text.split("\n"):
            m = _GUIDANCE.match(raw)
            if m:
                cues = [c.strip() for c in re.split(r"[,;]", m.group("cues")) if c.strip()]
                out.append(GuidanceLine(m.group("label"), cues))
            else:
                out.append(raw)
        return cls(out)

    def render(self) -> str:
        return "\n".join(x.render() if isinstance(x, GuidanceLine) else x for x in self.lines)

    def guidance(self) -> list[GuidanceLine]:
        return [x for x in self.lines if isinstance(x, GuidanceLine)]

    def line_for(self, label: str) -> GuidanceLine | None:
        for g in self.guidance():
            if g.label == label:
                return g
        return None


def label_words(label: str) -> list[str]:
    """The content words of a label name: 'card_arrival' -> ['card', 'arrival']."""
    return [w for w in surface_words(label.replace("_", " ")) if is_content_word(w)]


PROMPT_HEADER = """\
You are the intent classifier of an online bank's customer support.
Read the customer's message and answer with exactly one intent label from the list
below, written exactly as listed, and nothing else.
Each line gives a label and cue words or phrases that suggest it.

Labels:"""


def seed_prompt(labels: Sequence[str]) -> str:
    """The starting prompt: every label, cued only by the phrase of its own name words.

    A query must say e.g. "card arrival" literally to match, so the seed is right only
    now and then; every better cue has to be learned from feedback.
    """
    lines = [PROMPT_HEADER]
    for label in labels:
        lines.append(GuidanceLine(label, [" ".join(label_words(label))]).render())
    return "\n".join(lines) + "\n"


def cue_keys(cues: Iterable[str]) -> set[tuple[str, ...]]:
    return {k for k in (cue_key(c) for c in cues) if k}
