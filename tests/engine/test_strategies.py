"""Each strategy is registered once: the config's choices come from the registry, a
strategy registered from Python is a valid config value, and the Python API takes a
strategy object in place of a name."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from gepa_cli.config import load_config
from gepa_cli.engine import EngineSettings, registry
from gepa_cli.engine.state import Candidate, EngineState
from gepa_cli.errors import ConfigError
from support.task_dir import make_task_dir

from .fakes import PhraseTask, execute, make_run

SETTINGS_FIELD_OF = registry.KINDS


class LastCandidate:
    """Always reflect on the newest candidate: a strategy the engine does not ship."""

    name = "last_candidate"

    def __init__(self) -> None:
        self.calls = 0

    def select(self, state: EngineState, frontier_type: str, rng: random.Random) -> str:
        self.calls += 1
        return state.candidates[-1].id


class EveryModuleTwice:
    """Proposes for every module, twice: it must reserve that many calls."""

    name = "every_module_twice"

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        return [*modules, *modules]

    def most_per_iteration(self, modules: int) -> int:
        return 2 * modules


@pytest.fixture
def registered() -> Iterator[None]:
    registry.register("candidate_selector", "last_candidate")(lambda _s: LastCandidate())
    yield
    registry._FACTORIES["candidate_selector"].pop("last_candidate")


def test_every_kind_lists_the_builtin_names_in_order() -> None:
    assert registry.names("candidate_selector") == (
        "pareto",
        "current_best",
        "epsilon_greedy",
        "top_k_pareto",
    )
    assert registry.names("validation") == ("full", "adaptive", "racing")
    assert registry.names("minibatch_schedule") == ("fixed", "validation_share")
    for kind, field in SETTINGS_FIELD_OF.items():
        default = getattr(EngineSettings(), field)
        assert default in registry.names(kind)
        assert EngineSettings().strategy(kind).name == default


def test_the_config_refuses_an_unregistered_name_and_lists_the_registered_ones(
    tmp_path: Path,
) -> None:
    config = make_task_dir(tmp_path, gepa={"max_total_rollouts": 150, "acceptance": "always"})
    with pytest.raises(ConfigError, match="'strict_improvement', 'improvement_or_equal'"):
        load_config(config)


def test_a_strategy_registered_from_python_is_a_valid_config_value(
    tmp_path: Path, registered: None
) -> None:
    config = make_task_dir(
        tmp_path, gepa={"max_total_rollouts": 150, "candidate_selector": "last_candidate"}
    )
    settings = EngineSettings.from_mapping(load_config(config).gepa.model_dump())
    assert isinstance(settings.strategy("candidate_selector"), LastCandidate)


def test_the_engine_runs_a_strategy_object_and_records_its_name() -> None:
    selector = LastCandidate()
    run = make_run(
        EngineSettings(max_total_rollouts=80, candidate_selector=selector), n_val=4, n_train=6
    )
    execute(run)
    started = run.sink.of("run.started")[0]
    assert started["settings"]["candidate_selector"] == "last_candidate"
    parents = [e["parent_id"] for e in run.sink.of("iteration.started")]
    assert selector.calls == len(parents) > 0
    registered = [e["candidate_id"] for e in run.sink.of("candidate.registered")]
    # every reflection starts from the newest candidate registered before it
    assert all(p in registered for p in parents)


def test_a_custom_component_selector_is_reserved_for_before_it_runs() -> None:
    task = PhraseTask(modules=("a", "b"))
    settings = EngineSettings(max_proposals=6, component_selector=EveryModuleTwice())
    run = make_run(settings, task=task, n_val=4)
    result = execute(run)
    # 4 calls an iteration: a budget of 6 allows one iteration, never a second that
    # would stop halfway
    assert result.budget["proposals"] == 4
    assert result.stopped_by == "max_proposals"


def test_an_object_without_a_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="candidate_selector must be a name or a strategy"):
        EngineSettings(max_total_rollouts=10, candidate_selector=object())  # type: ignore[arg-type]
