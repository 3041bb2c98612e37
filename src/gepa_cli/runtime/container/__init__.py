"""Contract v1 container runtime: client, handshake, evaluator and local launcher."""

from gepa_cli.runtime.container.client import CallResult, ContainerClient, SubmissionMode
from gepa_cli.runtime.container.contract import CONTRACT_VERSION, Program, Routes
from gepa_cli.runtime.container.evaluator import ContainerEvaluator, policy_body
from gepa_cli.runtime.container.handshake import (
    HandshakeResult,
    SplitRows,
    handshake,
    wait_healthy,
)
from gepa_cli.runtime.container.inprocess import UvicornThread
from gepa_cli.runtime.container.launcher import ContainerLauncher, free_port
from gepa_cli.runtime.container.session import ContainerSession

__all__ = [
    "CONTRACT_VERSION",
    "CallResult",
    "ContainerClient",
    "ContainerEvaluator",
    "ContainerLauncher",
    "ContainerSession",
    "HandshakeResult",
    "Program",
    "Routes",
    "SplitRows",
    "SubmissionMode",
    "UvicornThread",
    "free_port",
    "handshake",
    "policy_body",
    "wait_healthy",
]
