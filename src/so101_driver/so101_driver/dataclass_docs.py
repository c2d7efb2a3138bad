"""Field docstrings of a dataclass (the string literal after each field), for ROS parameter
descriptions. Python drops these strings at runtime, so they are read back from the source.

ROS-free and shared: the driver, the safety filter, the actor and the bring-up declare their
parameters from dataclasses with it (each of them depends on so101_driver).
"""
import ast
import dataclasses
import functools
import inspect
import textwrap


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """``{field name: docstring}`` for the fields of dataclass ``cls`` that carry one; empty
    when the source is not available (parameters are then declared without descriptions).
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    docs = {}
    for statement, following in zip(body, body[1:]):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[statement.target.id] = ' '.join(following.value.value.split())
    names = {field.name for field in dataclasses.fields(cls)}
    return {name: doc for name, doc in docs.items() if name in names}
