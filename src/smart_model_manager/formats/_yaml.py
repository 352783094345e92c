"""YAML with line numbers, so a malformed data file is reported as ``file:line: what was expected``.

``load(text, path, error=ManifestError)`` returns ``Doc(data, lines)`` where ``lines`` maps each key path
(a tuple of mapping keys / list indexes) to its 1-based line. ``doc.fail(keypath, msg)`` raises the
caller's error class with the nearest known line. ``read(path, error)`` reads a file for it, refusing
files over :data:`MAX_BYTES` before reading them whole.

Our YAML files (model-metadata.yaml, models.lock, models.yaml) are plain data, so the reader accepts
only plain data (hostile files made PyYAML raise ValueError/KeyError/RecursionError or
spend minutes expanding a 300-byte alias chain):

* anchors and aliases are refused at the first one (no alias bombs, no recursive structures);
* explicit tags are refused unless they are the core schema's str/int/float/bool/null/seq/map;
* nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` values (or :data:`MAX_RESOLVED` in
  the forms only the slow resolver types: dates, hex, ...), more than one document,
  or a file over :data:`MAX_BYTES` are refused;
* a value PyYAML cannot construct (``2026-13-45``, ``!!float abc``, ``!!int`` on an empty value, a
  5,000-digit int), whatever exception PyYAML raises for it, is reported with its line, as the
  caller's error class.

The document is built from the parser's event stream in one pass with an explicit stack (no recursion,
no second parse), so the cost is linear in the file and bounded by the caps above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..errors import FormatError

KeyPath = tuple[Any, ...]

MAX_BYTES = 4 * 1024 * 1024   # a lock of ~30,000 files; real ones are a few KB
MAX_DEPTH = 32                # our formats nest 6 levels (models.<id>.files.<path>.size) plus `extra`
MAX_NODES = 100_000           # a lock of ~20,000 files; keeps the worst 1 MB file under a second
MAX_RESOLVED = 20_000         # values only PyYAML's slow resolver can type (dates, 0x1f, 1_000, 1:30, ...)
_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map"))
# libyaml's parser when available (~20x faster): this runs on the Kubernetes startup-probe path
_LOADER_CLS = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


class _Frame:
    """One open mapping or sequence while the event stream is consumed."""

    __slots__ = ("kp", "value", "key", "is_map")

    def __init__(self, kp: KeyPath, value: Any, is_map: bool):
        self.kp, self.value, self.is_map = kp, value, is_map
        self.key: str | None = None  # a mapping's key waiting for its value


def read(path: str | Path, error: type[FormatError] = FormatError) -> str:
    """The file's text, refusing files over MAX_BYTES without reading them whole and non-UTF-8 bytes.
    A missing file raises FileNotFoundError (the callers say how to create it)."""
    p = Path(path)
    with p.open("rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise error(_too_big(), path=p)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"not UTF-8 text (byte {err.start})", path=p) from err


def _too_big() -> str:
    return f"the file is larger than the {MAX_BYTES // (1024 * 1024)} MiB limit for a data file; is it the right file?"


def load(text: str, path: str | Path, error: type[FormatError] = FormatError) -> Doc:
    if len(text) > MAX_BYTES:
        raise error(_too_big(), path=path)
    try:
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise error(_too_big(), path=path)
    except UnicodeEncodeError as err:  # only a str built in memory can hold a lone surrogate
        raise error("invalid YAML: a lone surrogate is not text", path=path,
                    line=text.count("\n", 0, err.start) + 1) from err
    doc = Doc(None, {}, str(path), error)
    parser = _LOADER_CLS(text)
    try:
        _build(parser, doc)
    except yaml.reader.ReaderError as err:  # a character YAML forbids (NUL, other controls, lone surrogates)
        raise error(f"invalid YAML: character {err.character!r} is not allowed", path=path,
                    line=text.count("\n", 0, max(err.position, 0)) + 1) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise error(f"invalid YAML: {problem}", path=path, line=(mark.line + 1) if mark is not None else 1) from err
    finally:
        parser.dispose()
    if not doc.lines:
        raise error("the file is empty", path=path, line=1)
    return doc


def _build(parser: Any, doc: Doc) -> None:
    """Consume the event stream into ``doc.data`` and ``doc.lines``; refuse what a data file never has."""
    constructor = yaml.SafeLoader("")  # per call: PyYAML constructors keep state, loads may run in threads
    lines = doc.lines
    stack: list[_Frame] = []
    documents = nodes = 0
    budget = [MAX_RESOLVED]

    def fail_at(line: int, message: str) -> NoReturn:
        raise doc.error(message, path=doc.path, line=line)

    while parser.check_event():
        ev = parser.get_event()
        et = type(ev)
        if et is _END_MAP or et is _END_SEQ:
            done = stack.pop()
            _attach(doc, stack, done.value)
            continue
        if et not in _NODE_EVENTS:
            if et is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    fail_at(ev.start_mark.line + 1, "expected one YAML document, found a second one ('---')")
            continue  # stream start/end, document end
        line = ev.start_mark.line + 1
        if et is yaml.AliasEvent or ev.anchor is not None:
            fail_at(line, "anchors and aliases are not allowed in this file (&name / *name); write the values out")
        tag = ev.tag
        if tag is not None and tag != "!" and tag not in ALLOWED_TAGS:
            fail_at(line, f"tag {tag!r} is not allowed in this file; only plain values are")
        nodes += 1
        if nodes > MAX_NODES:
            fail_at(line, f"more than {MAX_NODES} values; this is not a file smart-model-manager wrote")
        if not stack:
            kp: KeyPath = ()
        else:
            parent = stack[-1]
            if parent.is_map:
                if parent.key is None:  # this node is a key
                    if et is not _SCALAR:
                        lines[parent.kp + ("?",)] = line
                        doc.fail(parent.kp + ("?",), "mapping keys must be plain strings")
                    key = str(ev.value)
                    kp = parent.kp + (key,)
                    if key in parent.value:
                        lines[kp] = line
                        doc.fail(kp, "duplicate key")
                    lines[kp] = line
                    parent.key = key
                    continue
                kp = parent.kp + (parent.key,)
            else:
                kp = parent.kp + (len(parent.value),)
        if kp not in lines:
            lines[kp] = line
        if et is _SCALAR:
            _attach(doc, stack, _scalar(constructor, ev, fail_at, line, budget))
        else:
            if len(stack) >= MAX_DEPTH:
                fail_at(line, f"nested deeper than {MAX_DEPTH} levels")
            is_map = et is yaml.MappingStartEvent
            stack.append(_Frame(kp, {} if is_map else [], is_map))


_SCALAR = yaml.ScalarEvent
_END_MAP, _END_SEQ = yaml.MappingEndEvent, yaml.SequenceEndEvent
_NODE_EVENTS = frozenset({yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.AliasEvent})
# First characters for which PyYAML's implicit resolvers may give a plain scalar a non-str type
# (bool yYnNtTfFoO, int/float/timestamp digits -+., null ~nN, merge <, value =); anything else is a string.
_MAYBE_TYPED = frozenset("-+.0123456789~<=")  # after _WORDS, a plain scalar starting with a letter is a str
_WORDS: dict[str, Any] = {"": None, "~": None, "null": None, "Null": None, "NULL": None}
_WORDS.update(dict.fromkeys("yes Yes YES on On ON true True TRUE".split(), True))
_WORDS.update(dict.fromkeys("no No NO off Off OFF false False FALSE".split(), False))
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?\Z", re.ASCII)  # YAML 1.1: the exponent has a sign
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})\Z", re.ASCII)


def _attach(doc: Doc, stack: list[_Frame], value: Any) -> None:
    if not stack:
        doc.data = value
        return
    parent = stack[-1]
    if parent.is_map:
        parent.value[parent.key] = value
        parent.key = None
    else:
        parent.value.append(value)


def _scalar(constructor: yaml.SafeLoader, ev: Any, fail_at: Any, line: int, budget: list[int]) -> Any:
    tag, value = ev.tag, ev.value
    if tag is None or tag == "!":
        # Fast paths with PyYAML's exact results, for the common cases (the slow path is ~10 us a value)
        if not ev.implicit[0]:
            return value  # quoted or block scalar without a tag: always a string
        if value in _WORDS:
            return _WORDS[value]
        if value[0] not in _MAYBE_TYPED:
            return value
        if _DECIMAL.match(value):
            return int(value)
        if _FLOAT.match(value):
            return float(value)
        budget[0] -= 1
        if budget[0] < 0:
            fail_at(line, f"more than {MAX_RESOLVED} values in special YAML forms (dates, hex, sexagesimal, "
                          "digit-led text); quote text values")
        tag = constructor.resolve(yaml.ScalarNode, value, ev.implicit)
    node = yaml.ScalarNode(tag, value, ev.start_mark, ev.end_mark, ev.style)
    try:
        return constructor.construct_object(node, deep=True)
    except Exception as err:  # noqa: BLE001 - the reader's contract is total: whatever PyYAML's
        # constructor raises (IndexError from ``!!int`` on an empty value, ValueError, OverflowError, ...)
        # becomes the format's error with its line, never a raw exception
        shown = value if len(value) <= 40 else value[:37] + "..."
        kind = tag.rsplit(":", 1)[-1]
        if not value.strip():
            reason = "empty value"
        else:
            reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        fail_at(line, f"cannot read {shown!r} as {kind} ({reason}); quote it if it is text")


def dump(data: Any) -> str:
    """Canonical YAML: sorted keys, block style, no aliases, unicode kept."""

    class _NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(data, Dumper=_NoAlias, sort_keys=True, default_flow_style=False, allow_unicode=True, width=100)
