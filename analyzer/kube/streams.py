"""Reading a large JSON or YAML document a value at a time, so that a pod list costs what is kept of it.

Role: ``JsonStream`` decodes a JSON text stream value by value (``json.JSONDecoder.raw_decode`` over a
bounded buffer); ``YamlBuilder`` turns YAML parser events into Python data one value at a time, as
``yaml.safe_load`` would, without a node tree.  ``podlist`` drives them over the top-level object and its
``items`` list.
Must not: know what a pod is, or hold more than one value being built plus one buffer.
"""

from __future__ import annotations

import json
import re

from .pods import PodsFormatError

EXPECTED_OUTPUT = "expected `kubectl get pods -A -o json` (or `-o yaml`) output"

JSON_CHUNK = 1 << 17  # characters read at a time from a JSON pod list (peak memory is a few times this)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


class JsonStream:
    """A JSON document read a chunk at a time, value by value (``json.JSONDecoder.raw_decode``): memory is
    one chunk plus the value being decoded, whatever the size of the file.  A value is accepted only when
    it ends before the buffered text does (a number or a literal may go on in the next chunk); one that
    does not decode is retried with more text, the buffer growing geometrically, until the end of input."""

    def __init__(self, f, source: str) -> None:
        self.f, self.source = f, source
        self.buf, self.pos, self.eof = "", 0, False
        self.line, self.col = 1, 0  # line, and column offset, of the first character of ``buf``
        self.decoder = json.JSONDecoder()

    def _fill(self) -> None:
        newlines = self.buf.count("\n", 0, self.pos)
        self.col = self.pos - self.buf.rfind("\n", 0, self.pos) - 1 if newlines else self.col + self.pos
        self.line += newlines
        chunk = self.f.read(max(JSON_CHUNK, len(self.buf) - self.pos))
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        self.eof = not chunk

    def error(self, msg: str, pos: int) -> PodsFormatError:
        before = self.buf[:pos]
        newlines = before.count("\n")
        col = pos - before.rfind("\n") if newlines else self.col + pos + 1
        return PodsFormatError(f"{self.source}: not valid JSON ({msg} at line {self.line + newlines} column {col}); "
                               f"{EXPECTED_OUTPUT}")

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            self.pos = _JSON_SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self._fill()

    def expect(self, chars: str, what: str) -> str:
        ch = self.peek()
        if not ch or ch not in chars:
            raise self.error(f"Expecting {what}", self.pos)
        self.pos += 1
        return ch

    def value(self):
        while True:
            self.peek()
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self.error(exc.msg, exc.pos) from None
            except RecursionError:
                raise PodsFormatError(f"{self.source}: JSON nested too deeply to be a pod list") from None
            else:
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            self._fill()


def yaml_loader(yaml):
    """A safe YAML loader class -- events from libyaml's parser when present, the safe resolver and
    scalar constructors -- that keeps timestamps as strings.

    Nodes are never composed by it (libyaml's C composer recurses without a limit, PyYAML's Python one
    is slow and holds the whole document): :class:`YamlBuilder` builds the data from the events itself.
    """
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    try:
        from yaml.cyaml import CParser
    except ImportError:
        base: tuple = (yaml.SafeLoader,)
    else:
        base = (CParser, SafeConstructor, Resolver)

    class Loader(*base):  # type: ignore[misc]
        yaml_implicit_resolvers = {first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
                                   for first, resolvers in Resolver.yaml_implicit_resolvers.items()}

        def __init__(self, stream) -> None:
            if base[0] is yaml.SafeLoader:
                yaml.SafeLoader.__init__(self, stream)
                return
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return Loader


YAML_MAX_DEPTH = 256  # nesting a pod list never needs; deeper is an error, not a crash
_STR_TAG, _MAP_TAG, _SEQ_TAG, _MERGE_TAG = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))
_NO_KEY, _MERGE = object(), object()


class YamlBuilder:
    """Python data from YAML events, as ``yaml.safe_load`` would build it, one value at a time: a loop
    with an explicit stack (at most ``YAML_MAX_DEPTH`` deep), no node tree.  Plain scalars are resolved
    and constructed by the loader's own resolver and constructors, and remembered (pod lists repeat them)."""

    def __init__(self, loader, yaml) -> None:
        self.loader, self.yaml, self.ev = loader, yaml, yaml.events
        self.anchors: dict[str, object] = {}
        self.plain: dict[str, object] = {}

    def scalar(self, event):
        if event.tag is None and not event.implicit[0]:
            return event.value  # quoted: a string
        if event.tag is None and event.value in self.plain:
            return self.plain[event.value]
        loader, nodes = self.loader, self.yaml.nodes
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(nodes.ScalarNode, event.value, event.implicit)
        if tag == _STR_TAG:
            value = event.value
        elif tag == _MERGE_TAG:
            value = _MERGE  # ``<<``: only a mapping key may be one (``value``)
        else:
            construct = loader.yaml_constructors.get(tag)
            if construct is None:
                raise self.yaml.constructor.ConstructorError(
                    None, None, f"could not determine a constructor for the tag {tag!r}", event.start_mark)
            value = construct(loader, nodes.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style))
        if event.tag is None and len(self.plain) < 4096:
            self.plain[event.value] = value
        return value

    def value(self):
        """The next complete node as Python data."""
        ev, get, plain = self.ev, self.loader.get_event, self.plain
        scalar_event, mapping_start, sequence_start = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
        stack: list[list] = []  # [container, pending key, merged mappings]
        while True:
            event = get()
            cls = event.__class__
            if cls is scalar_event:
                if event.tag is None:  # the common scalars without a call: quoted, or plain and seen before
                    if not event.implicit[0]:
                        value = event.value
                    else:
                        value = plain.get(event.value, _NO_KEY)
                        if value is _NO_KEY:
                            value = self.scalar(event)
                else:
                    value = self.scalar(event)
            elif cls is mapping_start or cls is sequence_start:
                mapping = cls is mapping_start
                if event.tag not in (None, "!", _MAP_TAG if mapping else _SEQ_TAG):
                    raise self.yaml.constructor.ConstructorError(
                        None, None, f"could not determine a constructor for the tag {event.tag!r}", event.start_mark)
                if len(stack) >= YAML_MAX_DEPTH:
                    raise RecursionError
                container: dict | list = {} if mapping else []
                if event.anchor is not None:
                    self.anchors[event.anchor] = container
                stack.append([container, _NO_KEY, []])
                continue
            elif cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
                value, _, merged = stack.pop()
                for extra in merged:  # ``<<`` merge keys: explicit keys win, earlier merges before later
                    for k, v in extra.items():
                        value.setdefault(k, v)
            elif cls is ev.AliasEvent:
                if event.anchor not in self.anchors:
                    raise self.yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                                           event.start_mark)
                value = self.anchors[event.anchor]
            else:
                raise self.yaml.composer.ComposerError(None, None, f"unexpected {cls.__name__}", event.start_mark)
            if cls is scalar_event and event.anchor is not None:
                self.anchors[event.anchor] = value
            top = stack[-1] if stack else None
            if value is _MERGE and (top is None or top[0].__class__ is list or top[1] is not _NO_KEY):
                raise self.yaml.constructor.ConstructorError(
                    None, None, "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'",
                    event.start_mark)
            if top is None:
                return value
            if top[0].__class__ is list:
                top[0].append(value)
            elif top[1] is _NO_KEY:
                if isinstance(value, (dict, list)):
                    raise self.yaml.constructor.ConstructorError(
                        "while constructing a mapping", None, "found unhashable key", event.start_mark)
                top[1] = value
            else:
                key, top[1] = top[1], _NO_KEY
                if key is _MERGE:
                    extras = value if isinstance(value, list) else [value]
                    if not all(isinstance(x, dict) for x in extras):
                        raise self.yaml.constructor.ConstructorError(
                            "while constructing a mapping", None, "expected a mapping for merging", event.start_mark)
                    top[2].extend(extras)
                else:
                    top[0][key] = value
