"""ros2 launch hilserl_bringup record_demos.launch.py [name:=value ...]

record demonstrations, one MCAP bag per episode (oracle in sim, human on the robot).
The graph, its arguments and parameter files are described once in hilserl_bringup.graphs
(run_graph record_demos starts the same processes without ros2 launch); list them with
ros2 launch hilserl_bringup record_demos.launch.py --show-args.
"""
from hilserl_bringup.nodes.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description('record_demos')
