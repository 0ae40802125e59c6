"""Reading a large JSON or YAML document a value at a time, so that a pod list costs what is kept of it.

Role: JSON is read by ``analyzer.jsonstream`` (``pod_json_stream`` here sets its words).  YAML has two readers that build the same data as ``yaml.safe_load`` (timestamps kept as
strings): ``yaml_entries`` cuts a block-style document into its top-level entries and the items of its
``items`` list and reads each piece line by line (``BlockYaml``, the fast path for what kubectl writes);
a piece it cannot read exactly goes to ``YamlBuilder``, which builds data from the YAML parser's events
one value at a time, without a node tree.  ``podlist`` drives them.
Must not: know what a pod is, or hold more than one value being built plus one buffer.
"""

from __future__ import annotations

import re

from ..jsonstream import JsonStream
from .pods import PodsFormatError

EXPECTED_OUTPUT = "expected `kubectl get pods -A -o json` (or `-o yaml`) output"


def pod_json_stream(f, source: str) -> JsonStream:
    """A JSON pod list read value by value; bad JSON is a ``PodsFormatError`` that says what was expected."""
    return JsonStream(f, source, PodsFormatError, EXPECTED_OUTPUT, "a pod list")


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
        except (ValueError, KeyError, IndexError):  # ``0b_``, 5,000 digits; ``!!bool maybe``; ``!!int ""``
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


# -- block YAML, line by line ----------------------------------------------------------------------------
YAML_BLOCK = 1 << 17  # characters read at a time by the line reader
YAML_MAX_PIECE = 4 << 20  # characters one top-level entry or list item may span (an API object is < 1.5 MB)


class YamlFallback(Exception):
    """The text steps outside the block YAML the line reader reads exactly: read it with the events."""


# One line of block YAML: "\n" and the indentation, "- ", then ``key:`` and maybe a value, or a value alone
# (which may end in spaces).  A key is plain (no space, colon or hash, not starting with an indicator) or
# quoted without escapes.  The indentation is compared as a string ("\n  " < "\n    "), not counted.
_LINE = re.compile(r"""(\n *)(- (?! ))?(?:([^\s#'"?:,\[\]{}&*!|>%@`-][^\s:#]*|-[^\s:#]+|'[^'\n]*'|"[^"\\\n]*"):"""
                   r"""(?: +(.*))?$|(.*))""", re.M)
# Characters the line reader leaves to the parser: tabs, line breaks other than \n, BOMs, non-printables.
_ODD_CHAR = re.compile("[^\n -~\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_ROOT = object()


class BlockYaml:
    """Block-style YAML as kubectl and PyYAML write it -- mappings and sequences nested by indentation, one
    scalar per line: plain, quoted without escapes, ``{}`` or ``[]`` -- read line by line into the data
    :class:`YamlBuilder` builds from the same text.  Anything else (flow collections, scalars over several
    lines, block scalars, anchors, aliases, tags, escapes, tabs, comments after a value, uneven indentation)
    raises :class:`YamlFallback`, so that the text is read by the parser instead: this reader never decides
    what a document means where the parser might decide otherwise."""

    def __init__(self, builder: YamlBuilder) -> None:
        self.builder = builder
        self.scalars: dict[str, object] = {}  # the text of a scalar as written -> its value

    def node(self, text: str):
        """The block node that starts on the first line of ``text`` (blank and comment lines aside)."""
        if _ODD_CHAR.search(text) is not None:
            raise YamlFallback
        scalars, scalar = self.scalars, self.scalar
        holder: dict = {}
        # The innermost open collection: its indentation, itself, whether it is a sequence, and whether
        # it is a sequence at its key's indentation; the ones around it on ``stack``.
        at, container, sequence, indentless = "", holder, False, False
        stack: list[tuple] = []
        pending = _ROOT  # the key (in ``container``, a mapping) whose value starts on a later line
        for n, dash, key, value, alone in _LINE.findall("\n" + text):
            if not key and not dash:
                if not alone or alone[0] == "#":
                    continue  # a blank or comment line
                raise YamlFallback  # a scalar on a line of its own
            if pending is not _NO_KEY:
                if n > at or (dash and n == at):  # the value is a block below the key
                    child: dict | list = [] if dash else {}
                    container[pending] = child
                    stack.append((at, container, sequence, indentless))
                    if len(stack) >= YAML_MAX_DEPTH:
                        raise YamlFallback
                    at, container, sequence, indentless = n, child, bool(dash), n == at
                else:
                    container[pending] = None  # ``key:`` and nothing below it
                pending = _NO_KEY
            while n < at or (n == at and indentless and not dash):  # the line closes these
                at, container, sequence, indentless = stack.pop()
            if n != at:
                raise YamlFallback
            if sequence:
                if not dash:
                    raise YamlFallback
                if not key:
                    if not alone:
                        raise YamlFallback
                    item = scalars.get(alone, _NO_KEY)
                    container.append(scalar(alone) if item is _NO_KEY else item)
                    continue
                child = {}
                container.append(child)
                stack.append((at, container, sequence, indentless))  # ``- key: ...``: a mapping after the dash
                if len(stack) >= YAML_MAX_DEPTH:
                    raise YamlFallback
                at, container, sequence, indentless = n + "  ", child, False, False
            elif dash:
                raise YamlFallback
            name = scalars.get(key, _NO_KEY)
            if name is _NO_KEY:
                name = self.key(key)
            if value:
                item = scalars.get(value, _NO_KEY)
                container[name] = scalar(value) if item is _NO_KEY else item
            else:
                pending = name
        if pending is not _NO_KEY:
            container[pending] = None
        return holder.get(_ROOT)

    def key(self, text: str):
        if len(text) > 1000:  # libyaml: an implicit key is at most 1024 characters
            raise YamlFallback
        return self.scalar(text)

    def scalar(self, written: str):
        """One scalar as written on its line (after the spaces before it)."""
        text = written.rstrip(" ")
        first = text[0]
        if first == "'":
            if len(text) < 2 or text[-1] != "'":
                raise YamlFallback
            value = text[1:-1]
            if "'" in value:
                if "'" in value.replace("''", ""):
                    raise YamlFallback
                value = value.replace("''", "'")
        elif first == '"':
            if len(text) < 2 or text[-1] != '"' or '"' in text[1:-1] or "\\" in text:
                raise YamlFallback
            value = text[1:-1]
        elif text == "{}" or text == "[]":
            return {} if first == "{" else []  # a new one each time: never remembered
        else:
            if ((first in _INDICATORS and (first != "-" or len(text) == 1 or text[1] == " "))
                    or ": " in text or " #" in text or text[-1] == ":"):
                raise YamlFallback
            try:
                value = self.builder.plain(text)
            except self.builder.yaml.YAMLError:
                raise YamlFallback from None
            if value is _MERGE:
                raise YamlFallback
        if len(self.scalars) < SCALARS_REMEMBERED and len(written) <= SCALAR_REMEMBERED_CHARS:
            self.scalars[written] = value
        return value


ENTRY, ITEMS, ITEM = "entry", "items", "item"
_START = re.compile(r"\n[^ \n#]")  # a line that may start a top-level entry or an item, after its "\n"
_ITEMS_ALONE = re.compile(r"items: *\n(?: *(?:#.*)?\n)*\Z")  # ``items:``, then blank or comment lines
_PREAMBLE = re.compile(r"(?: *(?:#.*)?\n)*(?:--- *\n(?: *(?:#.*)?\n)*)?\Z")  # before the first key


def yaml_entries(f, yaml):
    """A block mapping at column 0 (what kubectl writes) a piece at a time: ``(ENTRY, {key: value})`` for
    each top-level entry, and for an ``items:`` whose value is a sequence at column 0, ``(ITEMS, None)`` and
    then ``(ITEM, value)`` for each of its items.  The line reader (:class:`BlockYaml`) reads each piece;
    an item it cannot read is read by the parser alone (its text after ``items:\\n``, which the parser reads
    as it would in place).  :class:`YamlFallback` when the document is not such a mapping, or when a piece
    is neither read by the line reader nor, for an item, on its own by the parser: the caller reads the
    document with the parser from the start, which says what is wrong where."""
    loader = yaml_loader(yaml)("")
    try:
        block = BlockYaml(YamlBuilder(loader, yaml))
        for kind, text in _pieces(f):
            if kind is ENTRY:
                yield ENTRY, block.node(text)
            elif kind is ITEMS:
                yield ITEMS, None
            else:
                try:
                    items = block.node(text)
                except YamlFallback:
                    items = _parsed(yaml, "items:\n" + text).get("items")
                if not isinstance(items, list) or len(items) != 1:
                    raise YamlFallback
                yield ITEM, items[0]
    finally:
        loader.dispose()


def _parsed(yaml, text: str) -> dict:
    """A short block mapping read by the parser (:class:`YamlBuilder`), or :class:`YamlFallback`."""
    loader = yaml_loader(yaml)(text)
    try:
        loader.get_event(), loader.get_event()  # StreamStart, DocumentStart
        value = YamlBuilder(loader, yaml).value()
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.events.StreamEndEvent) or not isinstance(value, dict):
            raise YamlFallback
    except (yaml.YAMLError, RecursionError):
        raise YamlFallback from None
    finally:
        loader.dispose()
    return value


def _pieces(f):
    """``(ENTRY | ITEMS | ITEM, text)``: the text of each top-level entry of a block mapping at column 0,
    cut where a line starts at column 0 with a key, or, after ``items:`` alone, with ``- ``.  Memory: one
    piece (at most ``YAML_MAX_PIECE`` characters) and one block read."""
    kind, items_alone, started, pieces, size, rest = None, False, False, [], 0, ""
    while True:
        block = f.read(YAML_BLOCK)
        text = "\n" + rest + block  # each line after a "\n"
        cut = text.rfind("\n") + 1 if block else len(text)  # whole lines only, until the end
        start = 1
        for match in _START.finditer(text, 0, cut):
            at = match.start() + 1
            end = text.find("\n", at, cut)
            if end < 0:
                end = cut
            line = text[at:end]
            if line[:2] == "- " or line.rstrip(" ") == "-":
                if kind is None:
                    raise YamlFallback  # a sequence at the top
                if kind is ENTRY and not items_alone:
                    continue  # a sequence at column 0 as the value of another key: part of its entry
                piece = _joined(pieces, text[start:at])
                if kind is ENTRY:
                    if not _ITEMS_ALONE.match(piece):
                        items_alone = False
                        continue
                    yield ITEMS, ""
                else:
                    yield ITEM, piece
                kind = ITEM
            else:
                head = _LINE.match(text, at - 1, end)
                if head is None or not head.group(3):
                    if kind is None and not started and line.rstrip(" ") == "---":
                        started = True
                        continue  # the document's start
                    raise YamlFallback  # another document, a directive, a flow collection, a scalar ...
                piece = _joined(pieces, text[start:at])
                if kind is not None:
                    yield kind, piece
                elif not _PREAMBLE.match(piece):
                    raise YamlFallback
                kind, items_alone = ENTRY, head.group(3) == "items" and not head.group(4)
            pieces, size, start = [], 0, at
        pieces.append(text[start:cut])
        rest = text[cut:]
        size += cut - start
        if size + len(rest) > YAML_MAX_PIECE:
            raise YamlFallback
        if not block:
            break
    if kind is None:
        raise YamlFallback
    yield kind, _joined(pieces, "")


def _joined(pieces: list[str], tail: str) -> str:
    piece = "".join(pieces) + tail
    if len(piece) > YAML_MAX_PIECE:
        raise YamlFallback
    return piece
