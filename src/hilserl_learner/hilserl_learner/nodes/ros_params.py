"""Declare ROS parameters from a params dataclass and read them back into one.

Each field becomes ``<prefix><field>`` with its default, its type and its docstring as the
description. All are read-only: the learner takes no runtime parameter changes.
"""
import ast
import dataclasses
import functools
import inspect
import typing

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY}
_DESCRIPTOR_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                     float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_DESCRIPTOR_ARRAY_TYPES = {str: ParameterType.PARAMETER_STRING_ARRAY,
                           int: ParameterType.PARAMETER_INTEGER_ARRAY,
                           float: ParameterType.PARAMETER_DOUBLE_ARRAY}


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """The string literal under each field of a dataclass (its docstring), by field name."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    docs, body = {}, tree.body[0].body
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = ' '.join(following.value.value.split())
    return docs


def _element_type(hint):
    args = typing.get_args(hint)
    return args[0] if typing.get_origin(hint) is tuple else None


def declare_dataclass(node, cls, prefix: str = '') -> None:
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for field in dataclasses.fields(cls):
        hint, element = hints[field.name], _element_type(hints[field.name])
        descriptor = ParameterDescriptor(
            description=docs.get(field.name, ''), read_only=True,
            type=(_DESCRIPTOR_ARRAY_TYPES[element] if element else _DESCRIPTOR_TYPES[hint]))
        default = field.default
        if element is not None and len(default) == 0:
            node.declare_parameter(prefix + field.name, _ARRAY_TYPES[element], descriptor)
        else:
            node.declare_parameter(prefix + field.name,
                                   list(default) if element else default, descriptor)


def read_dataclass(node, cls, prefix: str = ''):
    """Build ``cls`` from the node's parameters (``__post_init__`` validates: ValueError)."""
    hints, values = typing.get_type_hints(cls), {}
    for field in dataclasses.fields(cls):
        try:
            value = node.get_parameter(prefix + field.name).value
        except ParameterUninitializedException:  # an empty-array default, never set
            value = field.default
        element = _element_type(hints[field.name])
        if element is not None:
            value = tuple(element(v) for v in (value if value is not None else ()))
        elif hints[field.name] is float:
            value = float(value)
        values[field.name] = value
    return cls(**values)
