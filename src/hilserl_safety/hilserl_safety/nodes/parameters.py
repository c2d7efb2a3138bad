"""Declare ROS parameters from a params dataclass and read them back into it."""
import dataclasses
import typing

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from so101_driver.dataclass_docs import field_docs

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_ARRAY_TYPES = {float: ParameterType.PARAMETER_DOUBLE_ARRAY,
                str: ParameterType.PARAMETER_STRING_ARRAY}


def _parameter_type(annotation) -> int:
    if typing.get_origin(annotation) is tuple:
        return _ARRAY_TYPES[typing.get_args(annotation)[0]]
    return _TYPES[annotation]


def descriptor(cls, field: dataclasses.Field) -> ParameterDescriptor:
    """The ParameterDescriptor of one field: docstring, type, read-only flag, range."""
    hints = typing.get_type_hints(cls)
    result = ParameterDescriptor(
        name=field.name, type=_parameter_type(hints[field.name]),
        description=field_docs(cls).get(field.name, ''),
        read_only=bool(field.metadata.get('read_only', False)))
    tighten = field.metadata.get('tighten')
    if tighten:
        result.additional_constraints = (f'safety limit: may only {tighten} at run time; '
                                         'restart to loosen')
    value_range = field.metadata.get('range')
    if value_range and hints[field.name] is float:
        result.floating_point_range = [FloatingPointRange(
            from_value=float(value_range[0]), to_value=float(value_range[1]))]
    elif value_range and hints[field.name] is int:
        result.integer_range = [IntegerRange(
            from_value=int(value_range[0]), to_value=int(value_range[1]), step=1)]
    return result


def declare_parameters(node, cls) -> None:
    """Declare every field of ``cls`` on ``node`` with its default and descriptor."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        value = getattr(defaults, field.name)
        node.declare_parameter(field.name, list(value) if isinstance(value, tuple) else value,
                               descriptor(cls, field))


def read_parameters(node, cls, overrides=None):
    """Build ``cls`` from the node's current parameter values (plus ``overrides``, name ->
    value); raises ValueError naming a bad field.
    """
    values = {field.name: node.get_parameter(field.name).value
              for field in dataclasses.fields(cls)}
    values.update(overrides or {})
    return cls(**values)
