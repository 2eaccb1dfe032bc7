"""Where each setting came from, and errors that say so without repeating a secret.

pydantic's own error text carries the offending input (``input_value=…``), which for a section
validator is the whole section, API secret included; so errors are rendered here from their
location and message only, and a value is echoed only when it is a plain scalar of a field that
is not a secret. Each line names its source: the environment variable, or the file and line.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

ENV_PREFIX = "HEDGEBOT__"
SECRET_KEYS = ("api_key", "api_secret")
_SCALARS = (str, int, float, bool, SecretStr, datetime, type(None))


def env_vars(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``HEDGEBOT__…`` variables of the environment, names upper-cased."""
    env = os.environ if environ is None else environ
    return {k.upper(): v for k, v in env.items() if k.upper().startswith(ENV_PREFIX)}


def _env_path(name: str) -> tuple[str, ...]:
    return tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))


def _env_name(path: Iterable[str]) -> str:
    return ENV_PREFIX + "__".join(p.upper() for p in path)


def _unwrap(annotation: Any) -> list[Any]:
    """The non-None members of an annotation (``X | None`` → [X])."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def field_kinds(model: type[BaseModel]) -> dict[tuple[str, ...], str]:
    """Every settable path of ``model``: ``scalar``, ``list`` (JSON in the environment) or
    ``mapping`` (free keys below it)."""
    out: dict[tuple[str, ...], str] = {}
    for name, info in model.model_fields.items():
        for ann in _unwrap(info.annotation):
            origin = typing.get_origin(ann)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out[(name,)] = "section"
                out.update({(name, *k): v for k, v in field_kinds(ann).items()})
            elif origin in (dict, Mapping):
                out[(name,)] = "mapping"
            elif origin in (tuple, list, set) or ann in (tuple, list):
                out[(name,)] = "list"
            elif origin is Literal or ann in _SCALARS or isinstance(ann, type):
                out.setdefault((name,), "scalar")
    return out


def check_environment(
    model: type[BaseModel], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One line per ``HEDGEBOT__`` variable that names no setting or cannot be parsed."""
    kinds = field_kinds(model)
    valid = sorted(_env_name(p) for p, k in kinds.items() if k != "section")
    lines = []
    for name, value in sorted(env_vars(environ).items()):
        path = _env_path(name)
        kind = kinds.get(path)
        under_mapping = any(kinds.get(path[:i]) == "mapping" for i in range(1, len(path)))
        if kind is None and not under_mapping:
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            lines.append(f"environment variable {name}: names no setting{hint}")
        elif kind == "section" and not _is_json_object(value):
            lines.append(
                f"environment variable {name}: a whole section takes a JSON object; or set one "
                "field, "
                f"e.g. {_env_name((*path, next(iter(_children(kinds, path)))))}"
            )
        elif kind in ("list", "mapping") and path[-1] not in SECRET_KEYS:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            want = list if kind == "list" else dict
            if not isinstance(parsed, want):
                example = '["BTC", "ETH"]' if kind == "list" else '{"BTC": 1.0}'
                lines.append(
                    f"environment variable {name}: {value!r} is not a JSON "
                    f"{'list' if kind == 'list' else 'object'}; write e.g. {name}='{example}'"
                )
    return lines


def _is_json_object(value: str) -> bool:
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _children(kinds: Mapping[tuple[str, ...], str], path: tuple[str, ...]) -> list[str]:
    return [p[len(path)] for p in kinds if len(p) == len(path) + 1 and p[: len(path)] == path]


def yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line (1-based) where each key path of a YAML mapping starts."""
    out: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                out[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    with contextlib.suppress(yaml.YAMLError):  # unparsable text is reported elsewhere
        walk(yaml.compose(text), ())
    return out


def _source(
    loc: tuple[str, ...], file: Path | None, lines: Mapping[tuple[str, ...], int], env: set[str]
) -> str:
    """Where the value at ``loc`` came from, for the end of an error line."""
    for i in range(len(loc), 0, -1):
        name = _env_name(loc[:i])
        if name in env:
            return f"environment variable {name}"
    below = sorted(
        n for n in env if _env_path(n)[: len(loc)] == loc and _env_path(n)[-1] not in SECRET_KEYS
    )
    for i in range(len(loc), 0, -1):
        if loc[:i] in lines and file is not None:
            where = f"{file} line {lines[loc[:i]]}"
            return where if not below else f"{where} (or environment {', '.join(below)})"
    if below:
        return f"environment {', '.join(below)}"
    return "the defaults" if file is None else f"{file} or the defaults"


def _shown(loc: tuple[str, ...], value: Any) -> str:
    """`` (got …)`` for a plain scalar of a field that is not a secret, else nothing."""
    if any(part in SECRET_KEYS for part in loc) or isinstance(
        value, (dict, list, tuple, SecretStr)
    ):
        return ""
    if not isinstance(value, (str, int, float, bool)) or value is None:
        return ""
    return f" (got {value!r:.60})"


def error_lines(
    exc: ValidationError,
    model: type[BaseModel],
    file: Path | None,
    text: str | None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per error: ``where: what is wrong (got …) [source]``; never a secret."""
    lines_at = yaml_lines(text) if text else {}
    env = set(env_vars(environ))
    kinds = field_kinds(model)
    out = []
    for err in exc.errors(include_input=True, include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        where = ".".join(loc) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            siblings = _children(kinds, loc[:-1])
            close = difflib.get_close_matches(loc[-1], siblings, n=1) if siblings else []
            msg = "not a setting (extra inputs are not permitted)"
            msg += f"; did you mean {close[0]}?" if close else ""
        out.append(
            f"{where}: {msg}{_shown(loc, err.get('input'))} [{_source(loc, file, lines_at, env)}]"
        )
    return out
