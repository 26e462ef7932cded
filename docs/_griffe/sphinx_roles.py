"""A griffe extension for the API reference: ganforge's docstrings use reST conventions, the site
renders Markdown. Cross-reference roles (``:class:`~ganforge.x.Y` ``) become code spans (``Y``)
and a paragraph ending in ``::`` before an indented block ends in ``:`` (the block stays code).
Only docstring text changes; nothing is imported."""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(\S)::(\n[ \t]*\n)")


def _role(match: re.Match) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(_role, obj.docstring.value)
            obj.docstring.value = _LITERAL.sub(r"\1:\2", text)
