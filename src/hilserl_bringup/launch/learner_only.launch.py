"""ros2 launch hilserl_bringup learner_only.launch.py [name:=value ...]

the learner alone (GPU box / learner container), pairs with actor_only.
The graph, its arguments and parameter files are described once in hilserl_bringup.graphs
(run_graph learner_only starts the same processes without ros2 launch); list them with
ros2 launch hilserl_bringup learner_only.launch.py --show-args.
"""
from hilserl_bringup.nodes.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description('learner_only')
