"""Unit tests of the ROS-free lifecycle sequencer (an in-memory graph stands in for the nodes)."""
import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from hilserl_bringup.errors import NodeUnreachableError
from hilserl_bringup.lifecycle_sequencer import (
    ACTIVE,
    FINALIZED,
    INACTIVE,
    TRANSITIONS,
    UNCONFIGURED,
    UNREACHABLE,
    Command,
    GraphSequencer,
    SequencerTimeouts,
    is_worse,
    plan,
)
from hilserl_bringup.params import LifecycleManagerParams
from so101_driver.dataclass_docs import field_docs

NODES = ('driver', 'safety', 'actor')


@dataclasses.dataclass
class FakeGraph:
    """In-memory lifecycle nodes that follow the ROS 2 lifecycle state machine."""

    states: dict
    failing: set = dataclasses.field(default_factory=set)  # {(node, transition)}
    unreachable: set = dataclasses.field(default_factory=set)
    silent: dict = dataclasses.field(default_factory=dict)  # node -> get_state calls unanswered
    log: list = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, nodes=NODES, state=UNCONFIGURED, **kwargs):
        return cls(dict.fromkeys(nodes, state), **kwargs)

    def is_available(self, node):
        return node not in self.unreachable

    def wait_until_available(self, node, timeout_s):
        return self.is_available(node)

    def get_state(self, node, timeout_s):
        if node in self.unreachable:
            raise NodeUnreachableError(node, f'{node}/get_state', 'did not answer')
        if self.silent.get(node, 0) > 0:  # services still listed, but no answer
            self.silent[node] -= 1
            raise NodeUnreachableError(node, f'{node}/get_state', 'did not answer')
        return self.states[node]

    def change_state(self, node, transition, timeout_s):
        if node in self.unreachable:
            raise NodeUnreachableError(node, f'{node}/change_state', 'did not answer')
        start, goal = TRANSITIONS[transition]
        if self.states[node] != start:
            return False  # rejected, as rcl_lifecycle rejects an invalid transition
        self.log.append((node, transition))
        if (node, transition) in self.failing:
            return False  # callback FAILURE: the node stays in its start state
        self.states[node] = goal
        return True


def sequencer(graph, **kwargs):
    return GraphSequencer(list(graph.states), graph, SequencerTimeouts(1.0, 1.0, 0.5), **kwargs)


def test_plan_follows_the_lifecycle_graph():
    assert plan(UNCONFIGURED, ACTIVE) == ['configure', 'activate']
    assert plan(ACTIVE, UNCONFIGURED) == ['deactivate', 'cleanup']
    assert plan(ACTIVE, FINALIZED) == ['deactivate', 'cleanup', 'unconfigured_shutdown']
    assert plan(INACTIVE, INACTIVE) == []
    with pytest.raises(ValueError):
        plan(FINALIZED, ACTIVE)
    assert is_worse(UNREACHABLE, ACTIVE) and is_worse(INACTIVE, ACTIVE)
    assert not is_worse(ACTIVE, INACTIVE) and not is_worse(UNREACHABLE, FINALIZED)


def test_startup_configures_and_activates_in_list_order():
    graph = FakeGraph.of()
    seq = sequencer(graph)
    result = seq.run(Command.STARTUP)
    assert result.success, result.message
    assert graph.log == [(n, t) for n in NODES for t in ('configure', 'activate')]
    assert result.states == dict.fromkeys(NODES, ACTIVE)
    assert seq.graph_active and seq.last_error == ''


def test_down_commands_run_in_reverse_order():
    graph = FakeGraph.of(state=ACTIVE)
    seq = sequencer(graph)
    assert seq.run(Command.PAUSE).success
    assert graph.log == [(n, 'deactivate') for n in reversed(NODES)]
    assert not seq.graph_active
    graph.log.clear()
    assert seq.run(Command.RESUME).success
    assert graph.log == [(n, 'activate') for n in NODES]
    graph.log.clear()
    assert seq.run(Command.RESET).success
    assert graph.log == [(n, t) for n in reversed(NODES) for t in ('deactivate', 'cleanup')]
    graph.log.clear()
    result = seq.run(Command.SHUTDOWN)
    assert result.success and result.states == dict.fromkeys(NODES, FINALIZED)
    assert graph.log == [(n, 'unconfigured_shutdown') for n in reversed(NODES)]


def test_restart_resets_then_starts_up():
    graph = FakeGraph.of(state=ACTIVE)
    result = sequencer(graph).run(Command.RESTART)
    assert result.success and result.command == 'RESTART'
    down = [(n, t) for n in reversed(NODES) for t in ('deactivate', 'cleanup')]
    assert graph.log == down + [(n, t) for n in NODES for t in ('configure', 'activate')]


def test_configure_failure_names_the_node_and_rolls_back_earlier_nodes():
    graph = FakeGraph.of(failing={('safety', 'configure')})
    seq = sequencer(graph)
    result = seq.run(Command.STARTUP)
    assert not result.success
    assert (result.failed_node, result.failed_transition) == ('safety', 'configure')
    assert 'safety' in result.message and 'configure' in result.message
    assert 'rolled back: driver' in result.message
    assert graph.log == [('driver', 'configure'), ('driver', 'activate'),
                         ('safety', 'configure'), ('driver', 'deactivate'),
                         ('driver', 'cleanup')]
    assert result.states == dict.fromkeys(NODES, UNCONFIGURED)  # actor never touched
    assert not seq.graph_active and seq.last_error == result.message


def test_activate_failure_cleans_up_the_failed_node_too():
    graph = FakeGraph.of(failing={('actor', 'activate')})
    result = sequencer(graph).run(Command.STARTUP)
    assert (result.failed_node, result.failed_transition) == ('actor', 'activate')
    assert graph.log[-5:] == [('actor', 'cleanup'), ('safety', 'deactivate'),
                              ('safety', 'cleanup'), ('driver', 'deactivate'),
                              ('driver', 'cleanup')]
    assert set(graph.states.values()) == {UNCONFIGURED}


def test_rollback_restores_the_states_before_the_command():
    graph = FakeGraph({'driver': ACTIVE, 'safety': INACTIVE, 'actor': UNCONFIGURED},
                      failing={('actor', 'configure')})
    result = sequencer(graph).run(Command.STARTUP)
    assert not result.success
    assert graph.states == {'driver': ACTIVE, 'safety': INACTIVE, 'actor': UNCONFIGURED}


def test_resume_does_not_configure_an_unconfigured_node():
    graph = FakeGraph({'driver': INACTIVE, 'safety': UNCONFIGURED, 'actor': INACTIVE})
    result = sequencer(graph).run(Command.RESUME)
    assert not result.success and result.failed_node == 'safety'
    assert ('safety', 'configure') not in graph.log
    assert graph.states['driver'] == INACTIVE  # rolled back


def test_missing_services_fail_startup_before_any_transition_of_that_node():
    graph = FakeGraph.of(unreachable={'actor'})
    result = sequencer(graph).run(Command.STARTUP)
    assert (result.failed_node, result.failed_transition) == ('actor', 'wait_for_service')
    assert result.states['actor'] == UNREACHABLE
    assert graph.states == {'driver': UNCONFIGURED, 'safety': UNCONFIGURED,
                            'actor': UNCONFIGURED}


def test_down_commands_carry_on_past_a_failing_node():
    graph = FakeGraph.of(state=ACTIVE, failing={('safety', 'deactivate')})
    result = sequencer(graph).run(Command.RESET)
    assert not result.success and result.failed_node == 'safety'
    assert 'safety' in result.message and 'deactivate' in result.message
    assert graph.states == {'driver': UNCONFIGURED, 'safety': ACTIVE, 'actor': UNCONFIGURED}


def test_shutdown_passes_over_a_node_that_has_exited_but_reset_does_not():
    graph = FakeGraph.of(state=ACTIVE)
    graph.unreachable.add('safety')  # its process exited: its lifecycle services are gone
    result = sequencer(graph).run(Command.SHUTDOWN)
    assert result.success and result.message.endswith('2 node(s) finalized; already exited: '
                                                      'safety')
    assert result.states == {'driver': FINALIZED, 'safety': UNREACHABLE, 'actor': FINALIZED}
    assert ('safety', 'active_shutdown') not in graph.log
    graph = FakeGraph.of(state=ACTIVE, unreachable={'safety'})
    result = sequencer(graph).run(Command.RESET)
    assert not result.success and result.failed_node == 'safety'
    assert graph.states == {'driver': UNCONFIGURED, 'safety': ACTIVE, 'actor': UNCONFIGURED}


def test_dead_node_is_reported_and_the_rest_reset():
    graph = FakeGraph.of()
    seq = sequencer(graph)
    assert seq.run(Command.STARTUP).success
    assert seq.check_health() == []
    graph.unreachable.add('safety')
    failures = seq.check_health()
    assert [(f.node, f.expected, f.actual) for f in failures] == [('safety', ACTIVE,
                                                                    UNREACHABLE)]
    graph.log.clear()
    reaction = seq.react(failures, 'reset')
    assert reaction.success
    assert graph.log == [('actor', 'deactivate'), ('actor', 'cleanup'),
                         ('driver', 'deactivate'), ('driver', 'cleanup')]
    assert 'safety' in seq.last_error and not seq.graph_active
    assert seq.check_health() == []  # reported once
    graph.unreachable.clear()
    graph.states['safety'] = UNCONFIGURED  # respawned
    assert seq.check_health() == []


def test_node_leaving_active_pauses_the_rest_with_pause_policy():
    graph = FakeGraph.of()
    seq = sequencer(graph)
    seq.run(Command.STARTUP)
    graph.states['driver'] = INACTIVE  # e.g. deactivated itself after a hardware fault
    failures = seq.check_health()
    assert [f.node for f in failures] == ['driver']
    seq.react(failures, 'pause')
    assert graph.states == {'driver': INACTIVE, 'safety': INACTIVE, 'actor': INACTIVE}


def test_ignore_policy_only_reports():
    graph = FakeGraph.of()
    seq = sequencer(graph)
    seq.run(Command.STARTUP)
    graph.unreachable.add('actor')
    graph.log.clear()
    failures = seq.check_health()
    assert seq.react(failures, 'ignore') is None and graph.log == []
    assert 'actor' in seq.last_error


def test_abort_stops_startup_without_further_transitions():
    graph = FakeGraph.of()
    calls = []

    def abort():
        calls.append(1)
        return len(graph.log) >= 2

    result = sequencer(graph, abort=abort).run(Command.STARTUP)
    assert not result.success and 'aborted' in result.message
    assert graph.log == [('driver', 'configure'), ('driver', 'activate')]


def test_transition_callback_is_told_about_each_transition():
    seen = []
    graph = FakeGraph.of(nodes=('a',))
    sequencer(graph, on_transition=lambda *a: seen.append(a[:3])).run(Command.STARTUP)
    assert seen == [('a', 'configure', True), ('a', 'activate', True)]


@settings(max_examples=60, deadline=None)
@given(failing=st.sets(st.tuples(st.sampled_from(NODES),
                                 st.sampled_from(['configure', 'activate']))),
       dead=st.sets(st.sampled_from(NODES), max_size=1))
def test_startup_is_all_or_nothing(failing, dead):
    graph = FakeGraph.of(failing=set(failing), unreachable=set(dead))
    result = sequencer(graph).run(Command.STARTUP)
    if result.success:
        assert set(graph.states.values()) == {ACTIVE}
    else:
        assert set(graph.states.values()) == {UNCONFIGURED}
        assert result.failed_node in NODES and result.failed_node in result.message


def test_params_validation_names_the_field():
    assert LifecycleManagerParams(node_names=['a', '/ns/b']).node_names == ('a', '/ns/b')
    for kwargs, field in (({}, 'node_names'), ({'node_names': ['a', 'a']}, 'node_names'),
                          ({'node_names': ['bad name']}, 'node_names'),
                          ({'node_names': ['a'], 'service_timeout_s': 0.0}, 'service_timeout_s'),
                          ({'node_names': ['a'], 'monitor_period_s': float('nan')},
                           'monitor_period_s'),
                          ({'node_names': ['a'], 'on_node_failure': 'panic'}, 'on_node_failure')):
        with pytest.raises(ValueError, match=field):
            LifecycleManagerParams(**kwargs)


def test_every_param_has_a_description():
    docs = field_docs(LifecycleManagerParams)
    assert set(docs) == {f.name for f in dataclasses.fields(LifecycleManagerParams)}
    assert all(len(text) > 20 for text in docs.values())


def test_one_lost_answer_is_not_a_node_failure_but_two_are():
    graph = FakeGraph.of()
    seq = sequencer(graph)
    seq.run(Command.STARTUP)
    graph.silent['actor'] = 1
    assert seq.check_health() == []
    graph.silent['actor'] = 2
    failures = seq.check_health()
    assert [(f.node, f.actual) for f in failures] == [('actor', UNREACHABLE)]
    assert 'did not answer' in failures[0].reason
