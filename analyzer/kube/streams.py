"""Reading a large JSON or YAML document a value at a time, so that a pod list costs what is kept of it.

Role: ``JsonStream`` decodes a JSON text stream value by value (``json.JSONDecoder.raw_decode`` over a
bounded buffer).  YAML has two readers that build the same data as ``yaml.safe_load`` (timestamps kept as
strings): ``yaml_entries`` cuts a block-style document into its top-level entries and the items of its
``items`` list and reads each piece line by line (``BlockYaml``, the fast path for what kubectl writes);
a piece it cannot read exactly goes to ``YamlBuilder``, which builds data from the YAML parser's events
one value at a time, without a node tree.  ``podlist`` drives them.
Must not: know what a pod is, or hold more than one value being built plus one buffer.
"""

from __future__ import annotations

import json
import re
import sys

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
            except ValueError:  # an integer of more digits than int() converts
                raise PodsFormatError(f"{self.source}: not valid JSON (a number of more than "
                                      f"{sys.get_int_max_str_digits()} digits); {EXPECTED_OUTPUT}") from None
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

    if getattr(yaml, "__with_libyaml__", False):
        from yaml.cyaml import CParser

        base: tuple = (CParser, SafeConstructor, Resolver)
    else:  # PyYAML built without libyaml: its pure-Python parser
        base = (yaml.SafeLoader,)

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
SCALARS_REMEMBERED, SCALAR_REMEMBERED_CHARS = 4096, 256  # plain scalars kept with their values, and how long
_STR_TAG, _MAP_TAG, _SEQ_TAG, _MERGE_TAG = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))
_NO_KEY, _MERGE = object(), object()


class YamlBuilder:
    """Python data from YAML events, as ``yaml.safe_load`` would build it, one value at a time: a loop
    with an explicit stack (at most ``YAML_MAX_DEPTH`` deep), no node tree.  Plain scalars are resolved
    and constructed by the loader's own resolver and constructors, and remembered (pod lists repeat them)."""

    def __init__(self, loader, yaml) -> None:
        self.loader, self.yaml, self.ev = loader, yaml, yaml.events
        self.anchors: dict[str, object] = {}
        self.plains: dict[str, object] = {}
        table = loader.yaml_implicit_resolvers
        # First characters no implicit resolver looks at: such a plain scalar is a string without asking.
        self.resolvable = None if table.get(None) else frozenset(first for first, rules in table.items() if rules)

    def plain(self, text: str, mark=None):
        """The value of a plain (unquoted, untagged) scalar, resolved as the loader would."""
        value = self.plains.get(text, _NO_KEY)
        if value is _NO_KEY:
            if text and self.resolvable is not None and text[0] not in self.resolvable:
                value = text
            else:
                value = self.construct(self.loader.resolve(self.yaml.nodes.ScalarNode, text, (True, False)), text, mark)
            if len(self.plains) < SCALARS_REMEMBERED and len(text) <= SCALAR_REMEMBERED_CHARS:
                self.plains[text] = value
        return value

    def construct(self, tag: str, text: str, mark, style=None):
        """A scalar of a resolved ``tag`` as Python data; ``<<`` is ``_MERGE``."""
        if tag == _STR_TAG:
            return text
        if tag == _MERGE_TAG:
            return _MERGE  # only a mapping key may be one (``value``)
        loader, error = self.loader, self.yaml.constructor.ConstructorError
        construct = loader.yaml_constructors.get(tag)
        if construct is None:
            raise error(None, None, f"could not determine a constructor for the tag {tag!r}", mark)
        try:
            return construct(loader, self.yaml.nodes.ScalarNode(tag, text, mark, mark, style))
        except ValueError:  # ``0b_``, or an integer of more digits than int() converts
            raise error(None, None, f"cannot read {text[:40]!r} as {tag.rpartition(':')[2]}", mark) from None

    def scalar(self, event):
        if event.tag is None:
            return self.plain(event.value, event.start_mark) if event.implicit[0] else event.value
        tag = event.tag
        if tag == "!":
            tag = self.loader.resolve(self.yaml.nodes.ScalarNode, event.value, event.implicit)
        return self.construct(tag, event.value, event.start_mark, event.style)

    def value(self):
        """The next complete node as Python data."""
        ev, get, plain = self.ev, self.loader.get_event, self.plains
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
                            value = self.plain(event.value, event.start_mark)
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
