"""Declare a node's ROS parameters from its params dataclass, and build the dataclass back."""
import dataclasses
import typing

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from so101_driver.dataclass_docs import field_docs

_EMPTY_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                      float: Parameter.Type.DOUBLE_ARRAY}


def declare_from_dataclass(node, params_cls) -> None:
    """Declare every field of ``params_cls`` with its default, docstring, range and read_only.

    Parameters are dynamically typed, so a value of the wrong type in a parameters file reaches
    the dataclass, which rejects it with the field name (configure then fails and says why)
    instead of the node dying at start-up; YAML ``rate: 10`` for a float is accepted.
    """
    docs = field_docs(params_cls)
    hints = typing.get_type_hints(params_cls)
    for field in dataclasses.fields(params_cls):
        meta, kind = field.metadata, hints[field.name]
        description = docs.get(field.name, '')
        if meta.get('choices'):
            description += f' One of: {", ".join(map(str, meta["choices"]))}.'
        descriptor = ParameterDescriptor(description=description, dynamic_typing=True,
                                         read_only=bool(meta.get('read_only', True)))
        low, high = meta.get('min'), meta.get('max')
        if kind is float and low is not None and high is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high))]
        elif kind is int and low is not None and high is not None:
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
        if typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            # An empty list has no ROS type: declare the typed array, left unset.
            default = list(field.default) or _EMPTY_ARRAY_TYPES[element]
            node.declare_parameter(field.name, default, descriptor)
        else:
            node.declare_parameter(field.name, field.default, descriptor)


def params_from_node(node, params_cls):
    """The params dataclass from the node's current parameter values (ValueError if bad)."""
    values = {}
    for field in dataclasses.fields(params_cls):
        try:
            value = node.get_parameter(field.name).value
        except ParameterUninitializedException:  # an empty-array default, never set
            value = field.default
        values[field.name] = value
    return params_cls(**values)


def summary(params) -> str:
    """'name=value, ...' of a params dataclass, for the configure log line."""
    return ', '.join(f'{f.name}={getattr(params, f.name)!r}' for f in dataclasses.fields(params))
