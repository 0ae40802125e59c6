"""The YAML line reader (``analyzer.kube.streams.BlockYaml`` / ``yaml_entries``) against the YAML parser.

The line reader is only a shortcut: whatever it reads must be exactly what the parser's events build
(``YamlBuilder``, itself checked against ``yaml.safe_load``), values and types and key order; whatever it
is not sure of it hands back (``YamlFallback``).  Checked on hand-picked lines, on random block YAML made
of tricky keys and values, and on real pod lists mutated a character or a line at a time; then end to end:
the same pods and the same errors as the parser alone, with and without libyaml.
"""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kube_builders as kb
from analyzer.kube import PodsFormatError, load_pods, parse_pods
from analyzer.kube import podlist, streams
from analyzer.kube.streams import ENTRY, ITEM, ITEMS, BlockYaml, YamlBuilder, YamlFallback, yaml_entries, yaml_loader

yaml = pytest.importorskip("yaml")


def same(a, b) -> bool:
    """Equal, of the same types all the way down (``1``, ``1.0`` and ``True`` differ), keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(map(type, a)) == list(map(type, b)) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def by_events(text: str):
    """The document as the parser's events build it, or the YAMLError class for an invalid one."""
    loader = yaml_loader(yaml)(text)
    try:
        loader.get_event()
        if loader.check_event(yaml.events.StreamEndEvent):
            return None
        loader.get_event()
        value = YamlBuilder(loader, yaml).value()
        loader.get_event()
        if not loader.check_event(yaml.events.StreamEndEvent):
            return yaml.YAMLError
        return value
    except (yaml.YAMLError, RecursionError):
        return yaml.YAMLError
    finally:
        loader.dispose()


def by_lines(text: str):
    """The block node of ``text`` as the line reader reads it, or ``YamlFallback``."""
    loader = yaml_loader(yaml)("")
    try:
        return BlockYaml(YamlBuilder(loader, yaml)).node(text)
    except YamlFallback:
        return YamlFallback
    finally:
        loader.dispose()


def by_entries(text: str):
    """The document put together from :func:`yaml_entries`, or ``YamlFallback``."""
    doc: dict = {}
    try:
        for kind, value in yaml_entries(io.StringIO(text), yaml):
            if kind is ITEMS:
                doc["items"] = items = []
            elif kind is ITEM:
                items.append(value)
            else:
                assert kind is ENTRY
                doc.update(value)
    except YamlFallback:
        return YamlFallback
    return doc


def check(text: str, reader=None) -> bool:
    """``reader`` (the line reader, or :func:`by_entries`) reads ``text`` as the parser does, or leaves it to
    the parser; True if it read it."""
    got = (reader or by_lines)(text)
    if got is YamlFallback:
        return False
    expected = by_events(text)
    assert expected is not yaml.YAMLError, f"read invalid YAML {text!r} as {got!r}"
    assert same(got, expected), f"{text!r}: read as {got!r}, by the parser {expected!r}"
    return True


def check_lines(text: str) -> bool:
    return check(text)


def check_entries(text: str) -> bool:
    return check(text, by_entries)


READ = [  # read by the line reader, exactly as the parser reads them
    "a: 1\nb: x\n",
    "a:\n  b: 1\n  c:\n  - x\n  - 'y'\nd: ''\n",
    "- a: 1\n  b:\n  - c: 2\n    d: \"q\"\n- e\n",
    "k: yes\nn: ~\ni: 0x1f\nf: 1.5e+3\ng: .inf\nt: 2024-05-01T10:00:00Z\ns: '07'\no: 0o7\nu: 1_000\n",
    "80: port\ntrue: t\nnull: n\n'x': \"y\"\n",
    "a: {}\nb: []\nc: 'it''s'\nd: ''''\ne: 'a # b'\nf: a#b\ng: http://x:80/y\nh: -1\ni: --flag=a,b\n",
    "a:\nb:\n  # a comment\n\n  c: 1   \n# the end\n",
    "dup: 1\ndup:\n  x: 2\n",
]
LEFT = [  # left to the parser: it reads these differently from a naive line reader, or finds them wrong
    "a: b: c\n", "a: b:\n", "a: 'x\n  y'\n", "a: x\n  y\n", "a:\n  x\n", "a: &x 1\nb: *x\n", "a: !!str 1\n",
    "a: |\n  text\n", "a: >\n  text\n", "a: [1, 2]\n", "a: {b: 1}\n", "a: \"x\\ny\"\n", "a: x # note\n",
    "a:\n    b: 1\n  c: 2\n", "a: 1\n  b: 2\n", "- a\nb: 1\n", "a:\tb\n", "a: b\r\n", "\ufeffa: 1\n",
    "<<: {a: 1}\n", "=: 1\n", "a: =\n", "a: 0b_\n", "? a\n: b\n", "a b: c\n", "-\n  a: 1\n", "- - x\n",
    "a: 'x' y\n", "a:\n- - x\n", "a: -\n", "a: - x\n", "a: @x\n", "a: %x\n", "a: `x\n", "a: ,x\n", "a: ?x\n", "a: :x\n",
    "a\u2028b: c\n", "a: x\x85y\n", "a: \x07\n", "k" * 1001 + ": v\n", "a: " + "1" * 5000 + "\n",
    "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 300)),
]


@pytest.mark.parametrize("text", READ)
def test_the_line_reader_reads_block_yaml_as_the_parser_does(text):
    assert check_lines(text)


@pytest.mark.parametrize("text", LEFT)
def test_the_line_reader_leaves_the_rest_to_the_parser(text):
    assert by_lines(text) is YamlFallback


KEYS = ["a", "b", "name", "k8s.io/x", "80", "yes", "~", "null", "<<", "=", "'q'", '"d"', "'it''s'", "a b", "-k",
        "-", "?", "é", "a#b", "a[b]", "!t", "&a", "*a", "1.5", "0x1F", "True", "on", "x" * 1030, ".nan", '"a\\"b"']
VALUES = ["x", "1", "-1", "1.0", ".inf", "~", "null", "", "yes", "No", "'q'", "''", "'a''b'", "'''", '"d"', '""',
          '"a\\"b"', "{}", "[]", "{ }", "[a]", "a: b", "a #b", "a#b", "a:", "a:b", "&x v", "*x", "!!str 5", "|", ">-",
          "'open", '"open', "- x", "-", "-x", "--", "?x", ":x", "@x", "x  ", "0b_", "0o17", "1_0", "2024-05-01", "=",
          "<<", "a\tb", "é", "x" * 300]
SIMPLE_KEY, SIMPLE_VALUE = st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "1", "''", "{}"])
ODD_TEXT = st.text(" :#-'\"ab01.\t\\[]{}&*!|>%@`,?~\x85\ufeffé", max_size=6)
LINE = st.tuples(st.sampled_from([0, 0, 0, 2, 2, 2, 4, 4, 6, 1, 3]), st.sampled_from([False, False, True]),
                 st.one_of(st.tuples(st.one_of(SIMPLE_KEY, SIMPLE_KEY, st.sampled_from(KEYS)),
                                     st.one_of(st.none(), SIMPLE_VALUE, st.sampled_from(VALUES), ODD_TEXT)),
                           st.tuples(st.none(), st.one_of(SIMPLE_VALUE, st.sampled_from(VALUES + ["# c", ""])))))


def line_text(indent: int, dash: bool, content) -> str:
    key, value = content
    body = (f"{key}:" + (f" {value}" if value is not None else "")) if key is not None else value
    return " " * indent + ("- " if dash else "") + body


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, min_size=1, max_size=12))
def test_random_block_yaml_is_read_as_the_parser_reads_it_or_left_to_it(lines):
    text = "\n".join(line_text(*line) for line in lines) + "\n"
    check_lines(text)
    check_entries(text)


MUTATIONS = ["", " ", "  ", "-", "- ", ":", ": ", "#", " #", "'", '"', "\t", "{", "[", "&a ", "*a", "!", "|", ">", "?",
             "\n", "\n-", "\nitems:", "\n---", "\n...", "\n- a", "\nkind: x", "\n  ", "\x85"]
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                   st.text(" :#-'\"ab01.\\[]{}&*!|>%@`,?~é\n", max_size=8))
DATA = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text("ab:#- '.1", min_size=1, max_size=5) | st.integers(0, 99), inner, max_size=4), max_leaves=25)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["apiVersion", "items", "kind", "x", "80"]), DATA, min_size=1),
       st.sampled_from([2, 4]), st.none() | st.tuples(st.integers(0, 10**4), st.sampled_from(MUTATIONS)))
def test_dumped_data_is_read_as_the_parser_reads_it_or_left_to_it(data, indent, mutation):
    """What PyYAML writes (block style, quoting what needs it), then perhaps one mutation."""
    text = yaml.safe_dump(data, indent=indent, default_flow_style=False)
    if mutation:
        at = mutation[0] % len(text)
        text = text[:at] + mutation[1] + text[at:]
    check_lines(text)
    check_entries(text)


def pod_list_yaml(n: int = 3) -> str:
    pods = [kb.injected_pod(f"web-{i}", f"10.42.0.{i + 10}", deployment="web") for i in range(n)]
    pods[1]["status"]["message"] = "containers with unready status: [linkerd-proxy app]"
    return kb.pods_yaml(*pods)


POD_LIST = pod_list_yaml()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(POD_LIST) - 1), st.integers(0, 3), st.sampled_from(MUTATIONS))
def test_a_pod_list_mutated_is_read_as_the_parser_reads_it_or_left_to_it(at, cut, insert):
    """A real list with a few characters replaced: the entries the line reader yields are the parser's."""
    check_entries(POD_LIST[:at] + insert + POD_LIST[at + cut:])


def test_the_same_holds_with_the_pure_python_parser(monkeypatch):
    """Without libyaml the parser is PyYAML's own: the line reader agrees with it as well."""
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    assert not any(c.__name__ == "CParser" for c in yaml_loader(yaml).__mro__)
    assert all(check_lines(text) for text in READ)
    assert not any(check_lines(text) for text in LEFT)
    rng = random.Random(16)
    read = sum(check_entries(POD_LIST[:at] + rng.choice(MUTATIONS) + POD_LIST[at + rng.randrange(4):])
               for at in (rng.randrange(len(POD_LIST)) for _ in range(300)))
    assert read > 50


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, POD_LIST.count("\n") - 1), min_size=1, max_size=3), st.integers(-3, 3))
def test_a_pod_list_reindented_is_read_as_the_parser_reads_it_or_left_to_it(rows, shift):
    lines = POD_LIST.split("\n")
    for row in rows:
        lines[row] = " " * shift + lines[row] if shift >= 0 else lines[row][-shift:]
    check_entries("\n".join(lines))


def test_kubectl_lists_are_read_by_the_line_reader():
    """The shortcut is taken for what kubectl and PyYAML write: every piece, the message with ': ' quoted."""
    assert check_entries(POD_LIST)
    assert check_entries("# kubectl get pods -o yaml\n---\n" + POD_LIST)
    assert check_entries(POD_LIST + "# the end\n")
    assert check_entries(POD_LIST.replace("items:\n", "items:\n# pods\n\n"))


# -- end to end: the pods and errors of the parser alone -------------------------------------------------
def by_parser_only(text: str, source: str = "pods.yaml"):
    """``parse_pods_yaml`` as it reads a document the line reader leaves: the parser from the start."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(podlist, "_read_yaml_entries", lambda *a: None)
        return outcome(text, source)


def outcome(text: str, source: str = "pods.yaml"):
    try:
        index = parse_pods(text, source)
    except PodsFormatError as exc:
        return str(exc)
    return index.pods, index.notes


SPECIAL_ITEMS = [
    # an item the line reader leaves (a block scalar, a folded message, an anchor and its alias): read alone
    POD_LIST.replace("  kind: Pod\n", "  kind: Pod\n  note: |\n    two\n    lines\n", 1),
    POD_LIST.replace("    phase: Running\n", "    message: 'long message\n      folded'\n    phase: Running\n", 1),
    POD_LIST.replace("    nodeName: node-a\n", "    nodeName: &n node-a\n    x: *n\n", 1),
    # an alias to an anchor in another item: not readable alone, so the whole list goes to the parser
    POD_LIST.replace("    nodeName: node-a\n", "    nodeName: &n node-a\n", 1).replace(
        "    nodeName: node-a\n", "    nodeName: *n\n", 1),
    # a quoted scalar that runs on at column 0: the parser reads the whole list
    POD_LIST.replace("  kind: Pod\n", "  x: 'a\nb'\n  kind: Pod\n", 1),
    # errors: the parser's message, line and column
    POD_LIST.replace("  kind: Pod\n", "  kind: Pod\n   bad: indent\n", 2),
    POD_LIST.replace("    nodeName: node-a\n", "    nodeName: *nope\n", 1),
    POD_LIST + "---\nkind: List\n",
    POD_LIST.replace("status: 'True'", "status: [True", 1),
    POD_LIST.replace("      app: web\n", "      app: [web]\n", 2),  # a label that is not a string: a pod error
    "apiVersion: v1\nitems:\n" + "- " * 400 + "x\n",
    "apiVersion: v1\nitems:\n- " + "[" * 100_000 + "\n",
    "apiVersion: v1\nitems: []\nkind: List\n",
    "kind: Pod\nmetadata:\n  name: solo\n  namespace: ns\nstatus:\n  podIP: 10.1.0.1\n",
    "a: 1\n",
    "- a\n- b\n",
    "",
]


@pytest.mark.parametrize("text", SPECIAL_ITEMS)
def test_pods_and_errors_are_the_parsers(text):
    assert outcome(text) == by_parser_only(text)


@pytest.mark.parametrize("text, alone, again, error", [
    (POD_LIST, 0, 0, None),
    (SPECIAL_ITEMS[0], 1, 0, None), (SPECIAL_ITEMS[1], 1, 0, None), (SPECIAL_ITEMS[2], 1, 0, None),
    (SPECIAL_ITEMS[3], 2, 1, None), (SPECIAL_ITEMS[4], 0, 1, None),
    (SPECIAL_ITEMS[5], 1, 1, "not valid YAML"), (SPECIAL_ITEMS[7], 0, 1, "but found another document"),
    (SPECIAL_ITEMS[9], 1, 0, "items[0] (emojivoto/web-0): metadata.labels['app'] is a list"),
])
def test_which_reader_reads_what(monkeypatch, text, alone, again, error):
    """Items the line reader leaves are read alone by the parser; the whole list is read again only when
    an item cannot be read alone or the document is not what the line reader reads."""
    calls = {"alone": 0, "again": 0}

    def counted(name, real):
        return lambda *a: calls.__setitem__(name, calls[name] + 1) or real(*a)

    monkeypatch.setattr(streams, "_parsed", counted("alone", streams._parsed))
    monkeypatch.setattr(podlist, "_read_yaml_events", counted("again", podlist._read_yaml_events))
    result = outcome(text)
    assert (calls["alone"], calls["again"]) == (alone, again)
    if error:
        assert isinstance(result, str) and error in result and result.startswith("pods.yaml: ")
    else:
        assert len(result[0]) == 3


@pytest.mark.parametrize("libyaml", [True, False])
def test_line_reader_libyaml_and_pure_python_parser_read_the_same_pods(tmp_path, monkeypatch, libyaml):
    """The same list read by the line reader, and by the parser alone with and without libyaml."""
    text = SPECIAL_ITEMS[0]  # one item goes to the parser on its own
    path = tmp_path / "pods.yaml"
    path.write_text(text)
    fast = load_pods(path)
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml)
    assert any(c.__name__ == "CParser" for c in yaml_loader(yaml).__mro__) is libyaml
    assert (fast.pods, fast.notes) == by_parser_only(text, str(path)) == outcome(text, str(path))
    assert len(fast.pods) == 3


def test_yaml_and_json_lists_give_the_same_pods(tmp_path):
    pods = [kb.injected_pod(f"svc-{i:03d}", f"10.42.{i >> 8}.{i & 255}", f"ns-{i % 3}", deployment=f"svc-{i // 4}")
            for i in range(40)]
    pods.append(kb.injected_pod("svc-old", "10.42.0.1", "ns-0", phase="Failed",
                                status_extra=kb.evicted_status("2024-05-01T11:00:00Z")))
    (tmp_path / "pods.json").write_text(kb.pods_doc(*pods))
    (tmp_path / "pods.yaml").write_text(kb.pods_yaml(*pods))
    from_json, from_yaml = load_pods(tmp_path / "pods.json"), load_pods(tmp_path / "pods.yaml")
    assert from_yaml.pods == from_json.pods and len(from_yaml.pods) == 41
    assert from_yaml.notes == [n.replace("pods.json", "pods.yaml") for n in from_json.notes]


def test_a_pipe_is_read_like_the_file(tmp_path):
    """A list from a pipe (``--pods <(kubectl get pods -A -o yaml)``) is spooled so it can be read again."""
    import os
    import threading

    text = SPECIAL_ITEMS[3]  # needs the parser from the start
    fifo = tmp_path / "pods.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.start()
    try:
        index = load_pods(fifo)
    finally:
        writer.join(timeout=10)
    assert index.pods == parse_pods(text, "x").pods and len(index.pods) == 3


def test_a_piece_longer_than_the_limit_reads_the_list_with_the_parser(monkeypatch):
    calls = []
    real = podlist._read_yaml_events
    monkeypatch.setattr(podlist, "_read_yaml_events", lambda *a: calls.append(1) or real(*a))
    expected = outcome(POD_LIST)
    assert not calls
    monkeypatch.setattr(streams, "YAML_MAX_PIECE", 2000)
    assert outcome(POD_LIST) == expected and calls == [1]


def test_billion_laughs_is_bounded():
    """Aliases are references, never copies: a list of nine aliases nine deep is read in well under a second."""
    lines = ["apiVersion: v1", "lol0: &l0 [lol]"]
    lines += [f"lol{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(9))}]" for i in range(1, 10)]
    lines += ["items:", "- kind: Pod", "  metadata: {name: a, namespace: b}", "  x: *l9"]
    index = parse_pods("\n".join(lines) + "\n", "pods.yaml")
    assert [p.name for p in index.pods] == ["a"]


@pytest.mark.parametrize("block", [1, 2, 7, 100, 4096])
def test_pieces_read_a_block_at_a_time_are_the_same(monkeypatch, block):
    """The document is read ``YAML_BLOCK`` characters at a time: lines and pieces cut across reads give the
    same entries, with or without a newline at the end."""
    texts = [POD_LIST, POD_LIST.rstrip("\n"), "# c\n---\na: 1\nitems:\n\n- x: 1\n-  y\n- z\nb:\n- q\n", "a: 1"]
    expected = [by_entries(text) for text in texts]
    assert all(e is not YamlFallback for e in expected[:2])
    monkeypatch.setattr(streams, "YAML_BLOCK", block)
    assert [by_entries(text) for text in texts] == expected


@pytest.mark.parametrize("value", ["0b_", "1" * 5000, "!!bool maybe", "!!bool ''", "!!int ''", "!!int '+'",
                                   "!!float ''", "!!float x", "!!binary a"])
def test_a_scalar_the_constructors_cannot_read_is_one_error(value):
    """PyYAML's constructors raise ValueError, KeyError or IndexError on these: one error line, never a traceback."""
    text = f"apiVersion: v1\nitems:\n- kind: Pod\n  a: {value}\n"
    message = outcome(text)
    assert message == by_parser_only(text)
    assert isinstance(message, str) and message.startswith("pods.yaml: not valid YAML (") and "at line 4 column 6" in message


CAPTURES = Path(__file__).resolve().parents[1] / "captures"


@pytest.mark.parametrize("pods", sorted(CAPTURES.glob("*.pods.json")), ids=lambda p: p.name)
def test_every_bundled_pod_list_reads_the_same_as_yaml(tmp_path, pods):
    """Each bundled pod list written as ``-o yaml`` (block style) gives the pods and notes of its JSON."""
    as_yaml = tmp_path / "pods.yaml"
    as_yaml.write_text(yaml.dump(json.loads(pods.read_text()), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    from_json, from_yaml = load_pods(pods), load_pods(as_yaml)
    assert from_yaml.pods == from_json.pods and from_yaml.pods
    assert from_yaml.notes == [n.replace(str(pods), str(as_yaml)) for n in from_json.notes]
    assert by_entries(as_yaml.read_text()) is not YamlFallback  # read by the line reader


@pytest.mark.parametrize("text", ["apiVersion: v1\nitems:\n- " + "[" * 100_000 + "\n",
                                  "apiVersion: v1\nitems:\n" + "- " * 100_000 + "x\n",
                                  "apiVersion: v1\nitems:\n- a:\n" + "".join(" " * i + "b:\n" for i in range(2, 400))])
def test_deep_nesting_is_one_error_line(cli, tmp_path, text):
    path = tmp_path / "pods.yaml"
    path.write_text(text)
    result = cli("analyze", CAPTURES / "demo-transparent.pcapng", "--pods", path)
    assert result.returncode == 2
    assert result.stderr.decode().strip() == f"Error: {path}: YAML nested too deeply to be a pod list"
