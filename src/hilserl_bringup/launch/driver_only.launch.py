"""ros2 launch hilserl_bringup driver_only.launch.py [name:=value ...]

bring-up check: driver (+ cameras on the real robot) and safety filter.
The graph, its arguments and parameter files are described once in hilserl_bringup.graphs
(run_graph driver_only starts the same processes without ros2 launch); list them with
ros2 launch hilserl_bringup driver_only.launch.py --show-args.
"""
from hilserl_bringup.nodes.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description('driver_only')
