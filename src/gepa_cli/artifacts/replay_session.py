"""How `events replay` reads an online session's feed: the timeline lines of its events.

The state itself is folded by `SessionFold` (session_fold.py), the same fold a live
session and a restarted service use; these handlers say what happened, one line per
event, for the timeline, and fill in the facts the report plots from any feed: rollouts
spent (one per served call) and the decision that settled each challenger (the look of
the comparison that promoted or retired it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gepa_cli.artifacts.timeline import num

if TYPE_CHECKING:
    from gepa_cli.artifacts.replay import Replay


def _evidence(data: Mapping[str, Any]) -> str:
    return (
        f"{num(data.get('mean'))} on {data.get('n')} vs {data.get('incumbent_id')} "
        f"{num(data.get('incumbent_mean'))} on {data.get('incumbent_n')}"
    )


class SessionTimeline:
    """Mixed into the replay folder: one timeline line per online event (or None)."""

    replay: Replay

    def _session_created(self, data: Mapping[str, Any]) -> str:
        modules = ", ".join(map(str, data.get("target_modules", [])))
        return f"session created: modules {modules}; injection {data.get('injection')}"

    def _session_paused(self, data: Mapping[str, Any]) -> str:
        return f"session paused ({data.get('reason') or 'no reason given'})"

    def _session_resumed(self, data: Mapping[str, Any]) -> str:
        return f"session resumed ({data.get('reason') or 'no reason given'})"

    def _session_cancelled(self, data: Mapping[str, Any]) -> str:
        serve = data.get("serve_candidate_id")
        pinned = f", serving {serve}" if serve else ", serving the best"
        return f"session cancelled ({data.get('reason') or 'no reason given'}){pinned}"

    def _session_completed(self, data: Mapping[str, Any]) -> str:
        return f"session completed: stopped_by {data.get('stopped_by')}"

    def _session_failed(self, data: Mapping[str, Any]) -> str:
        return f"session failed: {data.get('error_code')}: {data.get('message')}"

    def _session_restored(self, data: Mapping[str, Any]) -> str:
        return f"session opened again after a restart (epoch {data.get('epoch')})"

    def _rollout_served(self, data: Mapping[str, Any]) -> None:
        # one per call: counted, not worth a line each
        self.replay.rollouts_spent += 1

    def _reward_recorded(self, data: Mapping[str, Any]) -> None:
        return None

    def _reflection_started(self, data: Mapping[str, Any]) -> str:
        count = len(data.get("rollout_ids") or [])
        return (
            f"{data.get('proposal_id')} reflection on {data.get('parent_id')} "
            f"[{data.get('component')}] over {count} rewarded rollouts"
        )

    def _candidate_compared(self, data: Mapping[str, Any]) -> str | None:
        if data.get("decision") == "continue":
            return None
        verdict = (
            f"look {data.get('look')}: {_evidence(data)}, "
            f"interval [{num(data.get('lower'))}, {num(data.get('upper'))}] -> "
            f"{data.get('decision')}"
        )
        self._settled(data, verdict)
        return f"{data.get('candidate_id')} {verdict}"

    def _settled(self, data: Mapping[str, Any], verdict: str) -> None:
        from gepa_cli.artifacts.replay import Decision  # replay imports this module

        replay = self.replay
        candidate = replay.candidate(data.get("candidate_id"))
        if candidate is None:
            return
        replay.decisions.append(
            Decision(
                seq=replay.events - 1,
                type="candidate.compared",
                iteration=None,
                ids=[candidate.proposal_id] if candidate.proposal_id else [],
                parent_ids=list(candidate.parents),
                candidate_id=candidate.id,
                verdict=verdict,
            )
        )

    def _candidate_promoted(self, data: Mapping[str, Any]) -> str:
        return f"{data.get('candidate_id')} promoted over {data.get('previous_id')}"

    def _candidate_retired(self, data: Mapping[str, Any]) -> str:
        return f"{data.get('candidate_id')} retired ({data.get('reason')})"

    def _traffic_updated(self, data: Mapping[str, Any]) -> str:
        shares = ", ".join(f"{k} {float(v):.2f}" for k, v in dict(data.get("shares", {})).items())
        return f"traffic: {shares}"
