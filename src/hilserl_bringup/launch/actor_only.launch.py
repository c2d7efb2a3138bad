"""ros2 launch hilserl_bringup actor_only.launch.py [name:=value ...]

robot side without the learner (robot PC / actor container).
The graph, its arguments and parameter files are described once in hilserl_bringup.graphs
(run_graph actor_only starts the same processes without ros2 launch); list them with
ros2 launch hilserl_bringup actor_only.launch.py --show-args.
"""
from hilserl_bringup.nodes.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description('actor_only')
