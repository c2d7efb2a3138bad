"""ros2 launch hilserl_bringup sim.launch.py [name:=value ...]

main job: HIL-SERL training on the simulated SO-101, the scripted oracle as the human.
The graph, its arguments and parameter files are described once in hilserl_bringup.graphs
(run_graph sim starts the same processes without ros2 launch); list them with
ros2 launch hilserl_bringup sim.launch.py --show-args.
"""
from hilserl_bringup.nodes.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description('sim')
