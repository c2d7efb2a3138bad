"""Translate a graph description into a ros2 launch description (full ROS 2 installs).

This is the ROS-side layer of the launch files (``launch/<graph>.launch.py``), next to the
nodes because it imports ``launch``/``launch_ros``, which exist only on full ROS 2 installs.
The graph itself, its arguments and their resolution stay in the ROS-free
``hilserl_bringup.graphs``, shared with ``run_graph``.
"""
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from hilserl_bringup.graphs import graph as find_graph
from hilserl_bringup.robot_description import so101_urdf

PACKAGE = 'hilserl_bringup'


def graph_launch_description(graph_name: str) -> LaunchDescription:
    """DeclareLaunchArgument per graph argument, then the graph's nodes."""
    graph = find_graph(graph_name)
    actions = []
    for argument in graph.arguments:
        options = {'choices': list(argument.choices)} if argument.kind == 'str' and (
            argument.choices) else {}
        actions.append(DeclareLaunchArgument(argument.name, default_value=argument.default,
                                             description=argument.description, **options))
    actions.append(OpaqueFunction(function=_graph_nodes, args=[graph_name]))
    return LaunchDescription(actions)


def _graph_nodes(context, graph_name: str):
    graph = find_graph(graph_name)
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
    nodes = graph.resolve(values, get_package_share_directory(PACKAGE),
                          robot_description=so101_urdf)
    actions = []
    for node in nodes:
        kwargs = node.launch_kwargs()
        if node.required:
            kwargs['on_exit'] = Shutdown(reason=f'required node {node.name} exited')
        actions.append(LifecycleNode(**kwargs) if node.managed else Node(**kwargs))
    return actions
