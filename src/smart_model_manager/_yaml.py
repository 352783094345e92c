"""YAML with line numbers, so a malformed data file is reported as ``file:line: what was expected``.

``load(text, path, error=ManifestError)`` returns ``Doc(data, lines)`` where ``lines`` maps each key path
(a tuple of mapping keys / list indexes) to its 1-based line. ``doc.fail(keypath, msg)`` raises the
caller's error class with the nearest known line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from .errors import FormatError

KeyPath = tuple[Any, ...]


@dataclass
class Doc:
    data: Any
    lines: dict[KeyPath, int]
    path: str
    error: type[FormatError]

    def line(self, keypath: KeyPath) -> int | None:
        kp = tuple(keypath)
        while kp:
            if kp in self.lines:
                return self.lines[kp]
            kp = kp[:-1]
        return self.lines.get((), None)

    def fail(self, keypath: KeyPath, message: str) -> NoReturn:
        field = ".".join(str(k) for k in keypath)
        text = f"{field}: {message}" if field else message
        raise self.error(text, path=self.path, line=self.line(keypath))


def _convert(node: yaml.Node, kp: KeyPath, lines: dict[KeyPath, int], doc: Doc) -> Any:
    lines.setdefault(kp, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = yaml.SafeLoader.construct_scalar(_LOADER, knode) if isinstance(knode, yaml.ScalarNode) else None
            if key is None or isinstance(knode, (yaml.MappingNode, yaml.SequenceNode)):
                lines[kp + ("?",)] = knode.start_mark.line + 1
                doc.fail(kp + ("?",), "mapping keys must be plain strings")
            key = str(key)
            if key in out:
                lines[kp + (key,)] = knode.start_mark.line + 1
                doc.fail(kp + (key,), "duplicate key")
            lines[kp + (key,)] = knode.start_mark.line + 1
            out[key] = _convert(vnode, kp + (key,), lines, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, kp + (i,), lines, doc) for i, v in enumerate(node.value)]
    return _LOADER.construct_object(node, deep=True)


_LOADER = yaml.SafeLoader("")


def load(text: str, path: str | Path, error: type[FormatError] = FormatError) -> Doc:
    doc = Doc(None, {}, str(path), error)
    try:
        # libyaml's parser when available: ~20x faster, which matters for the startup-probe path
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise error(f"invalid YAML: {problem}", path=path,
                    line=(mark.line + 1) if mark is not None else None) from err
    if node is None:
        raise error("the file is empty", path=path, line=1)
    try:
        doc.data = _convert(node, (), doc.lines, doc)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        raise error(f"invalid YAML value: {err}", path=path,
                    line=(mark.line + 1) if mark is not None else None) from err
    return doc


def dump(data: Any) -> str:
    """Canonical YAML: sorted keys, block style, no aliases, unicode kept."""

    class _NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(data, Dumper=_NoAlias, sort_keys=True, default_flow_style=False, allow_unicode=True, width=100)
