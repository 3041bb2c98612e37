"""The container contracts gepa-cli speaks, by the names containers advertise.

A leaf module: the optimizer side (`runtime.container`) and the container-writing kit
(`taskapp`) both name contracts from here, and neither imports the other.
"""

from __future__ import annotations

CONTAINER_V1 = "gepa_cli.container.v1"  # container-contract.md
SYNTH_GEPA_V2 = "synth_optimizers.gepa.v2"  # the synth-containers package's GEPA routes
CONTRACTS = (CONTAINER_V1, SYNTH_GEPA_V2)
AUTO = "auto"  # read the version from the container's /metadata

# Contract v1's optional route: "can your rollouts reach their model?" A container that
# serves it names it in /metadata under this key (docs/container-contract.md).
POLICY_CHECK_KEY = "policy_check_route"
POLICY_CHECK_ROUTE = "/policy/check"
# The error code of a container whose rollouts' model (its upstream) is down; the error
# object then also holds "upstream_url" and "cause".
UPSTREAM_UNAVAILABLE = "upstream_unavailable"
