"""Reading ``params.yaml`` strictly: a missing file, a YAML slip, a repeated key or a
broken rule is one line naming the file and the line or dotted key, never a fallback."""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic.dataclasses import is_pydantic_dataclass
from pydantic_core import ErrorDetails

from anomalyflow.errors import Refusal


class ParamsError(Refusal, ValueError):
    """``params.yaml`` is missing, not valid YAML, or has an unknown key or a bad value."""


class _DuplicateKey(yaml.MarkedYAMLError):
    """A key repeated within one mapping."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``, but a repeated key is an error.

    PyYAML silently keeps the last of two equal keys, so an edited copy of a key further
    down would quietly win over the one a reader sees first.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # PyYAML itself refuses it, with its line
            if key in seen:
                raise _DuplicateKey(
                    problem=f"duplicated key '{key}' (YAML would keep only the last one)",
                    problem_mark=key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The parsed YAML of ``path`` (None when empty).

    A missing file is an error rather than a run on defaults: a mistyped ``--params``
    would otherwise train, judge and promote with settings nobody chose.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except OSError as error:
        raise ParamsError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        raise _yaml_error(error, path) from None


def _yaml_error(error: yaml.YAMLError, path: Path) -> ParamsError:
    """One line naming the file and the line: PyYAML's own message spans several."""
    mark = getattr(error, "problem_mark", None)
    where = f" line {mark.line + 1}:" if mark else ""
    problem = getattr(error, "problem", None) or str(error)
    if not isinstance(error, _DuplicateKey):
        problem = f"not valid YAML ({problem})"
    return ParamsError(" ".join(f"{path}:{where} {problem}".split()))


class KeyRule(ValueError):
    """A rule across the keys of one section, naming the key at fault.

    Raised by a section's model validator; pydantic would otherwise place the error on the
    whole section, and the message could not name the key.
    """

    def __init__(self, key: str, value: object, rule: str) -> None:
        super().__init__(rule)
        self.key = key
        self.value = value


def one_line(error: ValidationError, source: Path, root: Any) -> ParamsError:
    """The first broken rule: the file, the dotted key, the value and the rule.

    A union such as ``batch_size`` (an integer or ``auto``) fails once per member; those
    failures share the key and are joined with "or".
    """
    details = error.errors(include_url=False)
    found = [_located(detail, root) for detail in details]
    key, value, _ = found[0]
    if details[0]["type"] == "unexpected_keyword_argument":
        return ParamsError(f"{source}: unknown key '{key}'")
    rules = " or ".join(dict.fromkeys(rule for k, _, rule in found if k == key))
    return ParamsError(f"{source}: '{key}' = {value!r}: {rules}")


def _located(detail: ErrorDetails, root: Any) -> tuple[str, object, str]:
    """Dotted key, offending value and rule of one pydantic error."""
    loc, value, rule = list(detail["loc"]), detail["input"], detail["msg"]
    cause = detail.get("ctx", {}).get("error")
    if isinstance(cause, KeyRule):
        loc, value, rule = [*loc, cause.key], cause.value, str(cause)
    # pydantic says "Input should be ...", "String should have ...": the key is the subject.
    return _dotted(loc, root), value, re.sub(r"^\w+ should", "must", rule)


def _dotted(loc: list[str | int], root: Any) -> str:
    """``['data', 'features', 1]`` as ``data.features[1]``.

    Names are followed only through the sections: below a key, pydantic adds the tag of
    each member of a union (``constrained-int``, ``literal['auto']``), which is no key.
    """
    key = ""
    section: Any = root  # the class of the section reached; None below a key
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif section is not None:
            key = f"{key}.{part}" if key else part
            nested = section.__pydantic_fields__.get(part)
            inner = nested.annotation if nested else None
            section = inner if inner and is_pydantic_dataclass(inner) else None
    return key
