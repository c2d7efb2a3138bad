"""Declare ROS parameters from a params dataclass and build the dataclass back from them.

Descriptions come from the dataclass fields' docstrings and ranges from their ``within`` bounds.
A value the declaration refuses (wrong type, out of range) is recorded instead of crashing the
constructor, so that configure fails with the reason. The nodes read their parameters at
configure; ``reject_while_configured`` refuses changes between configure and cleanup, where
they would silently not apply.
"""
import dataclasses
import typing

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from so101_driver.dataclass_docs import field_docs

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
}


def _element_type(annotation):
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return typing.get_args(annotation)[0], True
    return annotation, False


def declare(node, cls, read_only: frozenset[str] = frozenset()) -> list[str]:
    """Declare one parameter per field of ``cls`` on ``node``; return declaration errors.

    Fields already declared (by another dataclass) are skipped.
    """
    errors = []
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if node.has_parameter(field.name):
            continue
        element, is_array = _element_type(hints[field.name])
        kind = (_ARRAY_TYPES if is_array else _TYPES)[element]
        default = field.default if field.default is not dataclasses.MISSING \
            else field.default_factory()
        value = list(default) if is_array else default
        descriptor = ParameterDescriptor(
            name=field.name, type=kind, description=docs.get(field.name, ''),
            read_only=field.name in read_only)
        if 'range' in field.metadata:
            low, high = field.metadata['range']
            if kind == ParameterType.PARAMETER_INTEGER:
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high),
                                                         step=0)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(low), to_value=float(high), step=0.0)]
        try:
            node.declare_parameter(field.name, value, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            errors.append(f'{field.name}: {error}')
            node.declare_parameter(field.name, value, descriptor, ignore_override=True)
    return errors


def build(node, cls):
    """An instance of ``cls`` from the node's parameters (ValueError naming a bad field)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        value = node.get_parameter(field.name).value
        element, is_array = _element_type(hints[field.name])
        values[field.name] = tuple(value) if is_array else value
    return cls(**values)


def reject_while_configured(node, is_configured, exempt=frozenset({'use_sim_time'})) -> None:
    """Refuse parameter changes while ``is_configured()``: they are read at configure."""

    def check(changes):
        names = [change.name for change in changes if change.name not in exempt]
        if names and is_configured():
            return SetParametersResult(
                successful=False,
                reason=f'{", ".join(names)}: parameters are read at configure; cleanup, set '
                       'them, then configure again')
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
