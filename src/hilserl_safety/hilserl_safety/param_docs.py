"""Field docstrings of a dataclass (the string literal after each field), for parameter
descriptions. Python drops these strings at runtime, so they are read back from the source.
"""
import ast
import dataclasses
import functools
import inspect
import textwrap


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """``{field name: docstring}`` for the fields of ``cls`` that carry one."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
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
