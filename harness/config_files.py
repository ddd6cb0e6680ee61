"""Reading config files, whatever their schema: strict YAML (a duplicated key is an error) validated into a
pydantic model, every way it can fail turned into one ``ConfigError`` naming the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError


def format_validation_error(err: ValidationError) -> list[str]:
    """One line per problem: ``key.path: what was expected (got <value>)``."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<top level>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; allowed keys are listed by `harness config show`)"
        elif "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"{path}: {msg}")
    return lines


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (YAML would silently keep the last)."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first given on line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate keys: ``lr:`` twice is a mistake, not an override."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # keys merged in with ``<<`` may be overridden: that is what merging is for
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, list | dict):
                    continue  # unhashable keys: let the base class report them
                if key in seen:
                    raise DuplicateKeyError(key, line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML text with ``StrictLoader`` (duplicate keys raise ``DuplicateKeyError``)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every way it can fail into a ConfigError naming the file (and, for a
    duplicated key, the key and both lines)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), ["file not found" if not path.exists() else "not a regular file"])
    try:
        raw = load_yaml(path.read_text())
    except DuplicateKeyError as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}invalid YAML ({getattr(exc, 'problem', exc)})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(str(path), [f"expected a mapping at the top level, got {type(raw).__name__}"])
    return raw


def parse_config(model_cls: type[BaseModel], raw: dict[str, Any], source: str) -> Any:
    """Validate ``raw`` into ``model_cls``; errors become one ConfigError listing every problem."""
    try:
        return model_cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(source, format_validation_error(err)) from None


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw["a"]["b"] = value`` for ``dotted="a.b"``, creating mappings on the way."""
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError("<override>", [f"{dotted}: {key} is not a mapping"])
    node[leaf] = value
