"""ros2 launch hilserl_bringup real.launch.py [name:=value ...]

HIL-SERL training on the real SO-101 (cameras, gamepad/joystick teleoperation).
The graph, its arguments and parameter files are described once in hilserl_bringup.graphs
(run_graph real starts the same processes without ros2 launch); list them with
ros2 launch hilserl_bringup real.launch.py --show-args.
"""
from hilserl_bringup.nodes.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description('real')
