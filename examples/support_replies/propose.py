"""A rule-based stand-in for an LLM proposer, so the example runs offline.

It reads the reflection request (``input = "json"``) on stdin and, for each
"Missing for <topic>: a, b." feedback, adds those points to the playbook line of that
topic. It prints the new playbook in one fenced block, as a model would. Point
``[proposer]`` at a real model (``backend = "openai_chat"``) for real optimization.
"""

from __future__ import annotations

import json
import re
import sys

request = json.load(sys.stdin)
lines = request["current_text"].splitlines()
for record in request["reflective_dataset"]:
    found = re.match(r"Missing for (\w+): (.*)\.$", record.get("feedback") or "")
    if not found:
        continue
    topic, points = found.group(1), found.group(2).split(", ")
    index = next((i for i, line in enumerate(lines) if line.startswith(f"- {topic}:")), None)
    if index is None:
        lines.append(f"- {topic}: {', '.join(points)}")
    else:
        lines[index] += "".join(f", {p}" for p in points if p not in lines[index])
print("```\n" + "\n".join(lines) + "\n```")
