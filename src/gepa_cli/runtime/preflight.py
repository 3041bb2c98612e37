"""Before any budget is spent: can the run reach the models it will call?

`gepa validate` asks two questions a handshake does not. Does the proposer's endpoint
answer (an ``openai_chat`` server, or a ``command`` program that exists)? And can the
container's rollouts reach *their* model? Only the container knows how its policy
calls out, so it is asked through contract v1's optional ``POST /policy/check`` route;
a container without that route is reported as not checked, never as broken.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gepa_cli.config.models import GepaConfig
from gepa_cli.contracts import POLICY_CHECK_ROUTE
from gepa_cli.errors import ConfigError, ContainerContractError, ContainerError, GepaCliError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container.client import ContainerClient
from gepa_cli.runtime.container.contract import Routes
from gepa_cli.runtime.container.evaluator import policy_body
from gepa_cli.runtime.proposers import build_proposer


@dataclass(frozen=True)
class EndpointCheck:
    """One endpoint checked: ``ok`` is None when it could not be checked at all."""

    name: str  # "policy" or "proposer"
    ok: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def check_policy(
    config: GepaConfig, client: ContainerClient, routes: Routes
) -> EndpointCheck:
    """Ask the container whether its rollouts can reach their model (no rollout spent)."""
    if routes.policy_check is None:
        return EndpointCheck(
            "policy",
            None,
            f"not checked: the container serves no {POLICY_CHECK_ROUTE} route (optional; "
            "see docs/containers.md)",
        )
    route = f"POST {routes.policy_check}"
    try:
        # one attempt: a check that waits out the backoff of a dead model only stalls
        answer = await client.call(
            "POST", routes.policy_check, {"policy": policy_body(config.policy)}, retries=0
        )
    except ContainerError as exc:
        if "upstream_url" in exc.details:
            return EndpointCheck(
                "policy",
                False,
                f"the policy model at {exc.details['upstream_url']} is unreachable: "
                f"{exc.details['cause']}",
            )
        if "answer" in exc.details:  # a 4xx: the container judged the policy itself
            return EndpointCheck(
                "policy", False, f"the container refused the policy: {exc.details['answer']}"
            )
        return EndpointCheck("policy", False, exc.message)
    except ContainerContractError as exc:
        return EndpointCheck("policy", False, exc.message)
    body = answer.body
    if not isinstance(body, dict) or body.get("status") != "ok":
        return EndpointCheck(
            "policy", False, f'container contract violation at {route}: expected status "ok"'
        )
    return EndpointCheck("policy", True, str(body.get("detail") or "the container says ok"))


async def check_proposer(config: GepaConfig, base_dir: Path) -> EndpointCheck:
    """Whether the proposer can be reached, without asking it for a proposal."""
    try:
        proposer = build_proposer(config.proposer, NoCache(), base_dir)
        check = getattr(proposer, "check", None)
        if check is None:
            return EndpointCheck("proposer", None, "not checked: this backend has no check")
        detail = await check()
    except (ConfigError, GepaCliError) as exc:
        return EndpointCheck("proposer", False, exc.one_line())
    return EndpointCheck("proposer", True, str(detail))
