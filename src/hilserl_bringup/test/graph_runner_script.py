"""run_graph with test graphs (not installed): the real runner, test lifecycle nodes.

    graph_runner_script.py <graph> [name:=value ...]

Graphs: ``counters`` (counter_a, counter_b: lifecycle_test_node.py processes, plus the
installed lifecycle_manager) and ``broken`` (a node whose executable does not exist).
"""
import pathlib
import sys

from hilserl_bringup import graphs, runner

HERE = pathlib.Path(__file__).resolve().parent
COUNTER = ('bringup_test', 'counter_node')


def counter(name: str) -> graphs.NodeSpec:
    return graphs.NodeSpec(*COUNTER, name, managed=True, use_sim_time=False)


MANAGER = graphs.NodeSpec(
    'hilserl_bringup', 'lifecycle_manager', 'lifecycle_manager',
    parameters={'node_names': graphs.MANAGED_NODE_NAMES, 'autostart': True,
                'monitor_period_s': 0.3, 'service_timeout_s': 60.0,
                'transition_timeout_s': 20.0, 'state_query_timeout_s': 1.0},
    use_sim_time=False, stop_first=True)
ARGUMENTS = (graphs.ArgumentSpec('log_level', 'info', 'log level of every node',
                                 ('debug', 'info', 'warn', 'error')),)
TEST_GRAPHS = {g.name: g for g in (
    graphs.GraphSpec('counters', 'two counter nodes and the lifecycle manager', ARGUMENTS,
                     (counter('counter_a'), counter('counter_b'), MANAGER)),
    graphs.GraphSpec('broken', 'a graph with a node that is not installed', ARGUMENTS,
                     (counter('counter_a'),
                      graphs.NodeSpec('hilserl_bringup', 'no_such_node', 'ghost', managed=True),
                      MANAGER)),
)}


def find_executable(package: str, executable: str):
    if (package, executable) == COUNTER:
        return [sys.executable, str(HERE / 'lifecycle_test_node.py')]
    return runner.installed_executable(package, executable)


if __name__ == '__main__':
    sys.exit(runner.main(sys.argv[1:], graphs=TEST_GRAPHS, find_executable=find_executable))
