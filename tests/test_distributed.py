"""The Dask engine: the same rows as one machine, on a LocalCluster and on real scheduler/worker processes.

Captures: the bundled ones, generated ones (``benchmarks/gencapture.py``) and the public corpus, each
also cut into small byte ranges so that the stitching runs as tasks.  Inputs from local paths, globs,
directories and a real nginx serving byte ranges on loopback; outputs as a Parquet dataset read back by
pandas, pyarrow.dataset and dask.dataframe; a worker process killed during a run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

# Missing packages are install bugs, not reasons to skip: the test command installs the [dask] extra.
import distributed  # noqa: E402,F401

from analyzer import analyze  # noqa: E402
from analyzer.distributed import engine  # noqa: E402
from analyzer.distributed.inputs import expand  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted((ROOT / "captures").glob("*.pcapng"))
DEMO_PODS = ROOT / "captures" / "demo-transparent.pods.json"
CORPUS = ROOT.parent / "shared" / "corpus" / "files"
SMALL_RANGES = 6 * 1024  # bundled captures are 25-240 kB: 4 to 40 ranges each
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as c:
        yield c


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("gen")
    paths = []
    for seed in (1, 2, 3):
        p = out / f"gen{seed}.pcap"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gencapture.py"), "-o", str(p), "--packets", "20000",
                        "--seed", str(seed)], check=True, capture_output=True, timeout=120)
        paths.append(p)
    return paths


def run_on(client, sources, range_bytes=None, include_localhost=True):
    run = engine.Run(client, expand(sources), frozenset(), range_bytes)
    run.read()
    run.tally(include_localhost)
    return run


def same_flows(one, rows) -> None:
    """Column for column, through the schema's DataFrame (dtypes included)."""
    from analyzer.report.frames import to_frame
    from analyzer.report.schema import FLOW_COLUMNS

    a, b = one.all_flows, to_frame(rows, FLOW_COLUMNS)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in a.columns:
        assert a[col].equals(b[col]), col


# -- same rows as one machine ---------------------------------------------------------------------------
def test_bundled_captures_whole_and_in_ranges_equal_one_machine(client):
    one = analyze(CAPTURES, pods=DEMO_PODS)
    whole = run_on(client, CAPTURES)
    assert [len(c.blocks) for c in whole.captures] == [1] * len(CAPTURES)
    same_flows(one, whole.rows())
    cut = run_on(client, CAPTURES, SMALL_RANGES)
    assert all(len(c.blocks) >= 4 for c in cut.captures), "every capture cut in ranges, every seam held"
    same_flows(one, cut.rows())
    assert cut.pairs(False) == one.pair_rows
    assert cut.edges(False, one.pods, "pod") == one.edge_rows
    assert cut.edges(False, one.pods, "namespace") == one.edge_rows_by("namespace")


def test_generated_captures_in_ranges_equal_one_machine(client, generated):
    one = analyze(generated, jobs=1)
    run = run_on(client, generated, 512 * 1024)
    assert all(len(c.blocks) >= 5 for c in run.captures)
    same_flows(one, run.rows())
    assert run.pairs(False) == one.pair_rows


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_public_corpus_equals_one_machine(client):
    files = sorted(CORPUS.iterdir())
    one = analyze(files, include_localhost=True)
    report = engine.analyze(files, frozenset(), True, None, client, range_bytes=64 * 1024)
    same_flows(one, report.all_flow_rows)
    assert report.stats["packets"] == one.stats["packets"]
    assert report.stats["not_tcp"] == one.stats["not_tcp"]
    assert report.stats["warnings"] == one.stats["warnings"]


def test_api_dask_argument_gives_the_one_machine_report(client):
    one = analyze(CAPTURES[:2], pods=DEMO_PODS)
    report = analyze(CAPTURES[:2], pods=DEMO_PODS, dask=client)
    same_flows(one, report.all_flow_rows)
    assert report.edge_rows == one.edge_rows and report.stats["failures"] == []


# -- several captures: the join in keyed parts ------------------------------------------------------------
@pytest.fixture(scope="module")
def vantages(tmp_path_factory):
    """Pod, server-side and node captures of the same traffic, with a Service whose ClusterIP is DNATed:
    (captures, pod list).  Connections seen from two sides, pre- and post-DNAT sides in different captures
    and in one node capture, connections seen once, and a tuple reused later."""
    import pcapgen as pg
    from test_services import CLUSTER_IP, CURL, EMOJI, EMOJI2, WEB, cluster, conn, write

    out = tmp_path_factory.mktemp("vantages")
    svc, emoji, emoji2 = pg.Endpoint(CLUSTER_IP, 80), pg.Endpoint(EMOJI, 8080), pg.Endpoint(EMOJI2, 8080)
    ms = 1_000_000
    client_side, server_side, node = [], [], []
    for k in range(12):
        t = k * 40 * ms
        pre = conn(CURL, svc, sport=41000 + k, t0_ns=pg.T0_NS + t)
        post = pg.shift(conn(CURL, emoji if k % 2 else emoji2, sport=41000 + k, t0_ns=pg.T0_NS + t), 2 * ms)
        client_side.append(pre)
        (server_side if k % 3 else node).append(post)
        if k % 3 == 0:
            node.append(pre)
        tls = conn(WEB, emoji, "tls", sport=42000 + k, t0_ns=pg.T0_NS + t)
        client_side.append(tls)
        server_side.append(pg.shift(tls, ms))
        server_side.append(conn(WEB, emoji2, "tls", sport=43000 + k, t0_ns=pg.T0_NS + t))  # seen once
    client_side.append(conn(WEB, emoji, "tls", sport=42000, t0_ns=pg.T0_NS + 60_000 * ms))  # the tuple again, later
    caps = [write(out / "curl.pod-curl.pcap", pg.merge(*client_side)),
            write(out / "emoji.pod-emoji.pcap", pg.merge(*server_side)),
            write(out / "n1.node.pcap", pg.merge(*node))]
    return caps, cluster(out)


def joined_on(client, sources, pods_path, partitions):
    from analyzer.kube.kubectl import load_pod_list

    pods = load_pod_list(Path(pods_path), False, None, None, False) if pods_path else None
    run = engine.Run(client, expand(sources), frozenset(), partitions=partitions)
    run.read()
    stats = run.tally(True)
    run.join(stats, 5.0, pods, True)
    return run, stats, pods


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_join_in_keyed_parts_equals_one_machine(client, vantages, partitions):
    caps, pods_path = vantages
    one = analyze(caps, pods=pods_path, include_localhost=True)
    assert one.stats["dnat_joined"] == 12 and one.stats["rows_joined"] > 20  # the case joins, both ways
    run, stats, pods = joined_on(client, caps, pods_path, partitions)
    same_flows(one, run.rows())
    sizes = [len(b) for b in client.gather(run.joined)]
    assert len(sizes) == partitions and sum(sizes) == len(one.all_flow_rows)
    if partitions > 1:
        assert sum(1 for n in sizes if n) > 1, "the rows are spread over several parts"
    for key in ("rows_in", "rows_joined", "dnat_joined", "flows", "warnings"):
        assert stats[key] == one.stats[key], key
    assert run.edges(True, pods, "pod") == one.edge_rows
    assert run.pairs(True) == one.pair_rows


def test_same_file_name_in_two_folders_is_two_captures_on_dask(client, vantages, tmp_path):
    """``a/NAME`` and ``b/NAME``: two vantage points named by their paths, as on one machine."""
    import shutil

    caps, pods_path = vantages
    sources = []
    for folder, cap in (("a", caps[0]), ("b", caps[1])):
        (tmp_path / folder).mkdir()
        sources.append(str(shutil.copy(cap, tmp_path / folder / "same.pcap")))
    one = analyze(sources, pods=pods_path, include_localhost=True)
    assert {r["capture"] for r in one.all_flow_rows} == {"a/same.pcap", "b/same.pcap"}
    run, stats, _ = joined_on(client, sources, pods_path, 3)
    same_flows(one, run.rows())
    assert stats["warnings"] == one.stats["warnings"]


def test_same_file_twice_is_noted_once_whatever_the_parts(client, vantages):
    caps, pods_path = vantages
    sources = [caps[0], caps[1], caps[0]]
    one = analyze(sources, pods=pods_path, include_localhost=True)
    note = [w for w in one.stats["warnings"] if "the same file given twice" in w]
    alone = len(analyze(caps[0], include_localhost=True).all_flow_rows)
    assert len(note) == 1 and note[0].startswith(f"curl.pod-curl.pcap saw exactly the {alone} connection(s) of curl.pod-curl.pcap")
    run, stats, _ = joined_on(client, sources, pods_path, 5)
    same_flows(one, run.rows())
    assert stats["warnings"] == one.stats["warnings"]
    assert (stats["rows_in"], stats["rows_joined"], stats["dnat_joined"]) == \
        (one.stats["rows_in"], one.stats["rows_joined"], one.stats["dnat_joined"])


def test_cli_several_captures_on_dask_equal_one_machine(vantages, tmp_path):
    caps, pods_path = vantages
    for view in ("flows", "pairs", "edges"):
        args = ("analyze", *caps, "--pods", pods_path, "--view", view, "--format", "csv")
        one, on_dask = cli(*args), cli(*args, "--dask")
        assert on_dask.returncode == one.returncode == 0, on_dask.stderr
        assert on_dask.stdout == one.stdout and on_dask.stdout.count("\n") > 3, view
    out = tmp_path / "joined"
    res = cli("analyze", *caps, "--pods", pods_path, "--view", "flows", "--format", "parquet", "-o", out, "--dask")
    assert res.returncode == 0, res.stderr
    import pandas as pd

    got = pd.read_parquet(out).sort_values("flow_id").reset_index(drop=True)
    expected = analyze(caps, pods=pods_path).flows
    assert sorted({p.parent.name for p in out.rglob("*.parquet")}) == ["0000_curl.pod-curl.pcap", "0001_emoji.pod-emoji.pcap"]
    for col in expected.columns:
        assert got[col].equals(expected[col]), col


def test_partition_key_puts_both_dnat_sides_and_both_orientations_together():
    from analyzer.join.partition import Keyer
    from analyzer.kube.services import Endpoint, Service, ServiceIndex, ServicePort

    services = ServiceIndex((Service("ns", "s", ("10.96.0.1",), (ServicePort("http", 80, target=8080),)),),
                            {"ns/s": [Endpoint("10.0.0.2", 8080, "http")]})
    keyer = Keyer(services)

    def row(c, cp, s, sp):
        return {"client_ip": c, "client_port": cp, "server_ip": s, "server_port": sp}

    pre, post = row("10.0.0.1", 40000, "10.96.0.1", 80), row("10.0.0.1", 40000, "10.0.0.2", 8080)
    assert keyer.key(pre) == keyer.key(post) == ("10.0.0.1", 40000)
    assert keyer.key(row("10.0.0.2", 8080, "10.0.0.1", 40000)) == keyer.key(post)  # turned round
    plain = row("10.0.0.1", 40000, "10.0.0.3", 9000)
    assert keyer.key(plain) == keyer.key(row("10.0.0.3", 9000, "10.0.0.1", 40000)) == (("10.0.0.1", 40000), ("10.0.0.3", 9000))
    assert Keyer(None).key(post) == (("10.0.0.1", 40000), ("10.0.0.2", 8080))


# -- inputs ---------------------------------------------------------------------------------------------
def test_globs_and_directories_expand_in_name_order(tmp_path):
    for name in ("b.pcapng", "a.pcapng", "sub/c.pcapng"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(CAPTURES[0], tmp_path / name)
    assert [i.location for i in expand([str(tmp_path)])] == [str(tmp_path / n) for n in ("a.pcapng", "b.pcapng", "sub/c.pcapng")]
    assert [Path(i.location).name for i in expand([str(tmp_path / "*.pcapng")])] == ["a.pcapng", "b.pcapng"]
    with pytest.raises(Exception, match="no such file"):
        expand([str(tmp_path / "missing.pcap")])


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """A real nginx on 127.0.0.1 serving a folder with the bundled captures (Range requests included)."""
    assert Path("/usr/sbin/nginx").exists(), "nginx missing: apt-get install -y nginx-light"
    root = tmp_path_factory.mktemp("www")
    (root / "caps").mkdir()
    for p in CAPTURES:
        shutil.copy(p, root / "caps" / p.name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = root / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # nginx's workers would drop to nobody: no access to tmp
    conf.write_text(f"""{user} daemon off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{ log_format ranges '$request $status "$http_range"'; access_log {root}/access.log ranges; client_body_temp_path {root}; proxy_temp_path {root};
  fastcgi_temp_path {root}; uwsgi_temp_path {root}; scgi_temp_path {root};
  server {{ listen 127.0.0.1:{port}; root {root}; autoindex on; }} }}
""")
    proc = subprocess.Popen(["/usr/sbin/nginx", "-c", str(conf), "-p", str(root)], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/caps/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield base, root
    proc.terminate()
    proc.wait(timeout=10)


def test_nginx_serves_byte_ranges(nginx):
    base, _ = nginx
    req = urllib.request.Request(f"{base}/caps/{CAPTURES[0].name}", headers={"Range": "bytes=4-11"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 206 and resp.read() == CAPTURES[0].read_bytes()[4:12]


def test_urls_read_by_the_workers_equal_local_files(client, nginx):
    base, root = nginx
    urls = [f"{base}/caps/{p.name}" for p in CAPTURES]
    before = (root / "access.log").read_text().count("\n")
    report = engine.analyze(urls, frozenset(), True, None, client)
    same_flows(analyze(CAPTURES, include_localhost=True), report.all_flow_rows)
    log = (root / "access.log").read_text().splitlines()[before:]
    assert any(" 206 " in line for line in log), "the workers read with Range requests"


def test_large_urls_are_cut_into_byte_ranges_read_by_range_requests(client, nginx, generated):
    import re

    from analyzer.distributed.inputs import READ_BYTES

    base, root = nginx
    big = generated[0]
    shutil.copy(big, root / "caps" / big.name)
    size = big.stat().st_size
    assert size > READ_BYTES  # more than one block of range requests
    before = (root / "access.log").read_text().count("\n")
    run = run_on(client, [f"{base}/caps/{big.name}"], size // 3)
    assert len(run.captures[0].blocks) == 4, "three ranges and the stitched rows: every seam held"
    same_flows(analyze(big, jobs=1, include_localhost=True), run.rows())
    log = (root / "access.log").read_text().splitlines()[before:]
    starts = sorted({int(m.group(1)) for line in log if f"/caps/{big.name} " in line and " 206 " in line
                     for m in [re.search(r'"bytes=(\d+)-', line)] if m})
    cuts = engine.adapter.plan_ranges(big.name, 3, size)
    assert starts[0] == 0 and starts[-1] >= cuts[2], (starts, cuts)  # the last range read from past its cut
    assert set(cuts[1:-1]) <= set(starts), "each later range read from its cut"


def test_url_that_does_not_exist_is_a_failure_among_good_ones(client, nginx):
    base, _ = nginx
    run = run_on(client, [f"{base}/caps/{CAPTURES[0].name}", f"{base}/caps/missing.pcap"])
    assert len(run.good) == 1 and len(run.failures) == 1 and "missing.pcap" in run.failures[0]


# -- CLI: failures, datasets, edges -----------------------------------------------------------------------
def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, cwd=ROOT)


def test_cli_unreadable_capture_is_listed_and_the_others_go_on(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    one = cli("analyze", CAPTURES[0], "--format", "csv")
    out = cli("analyze", CAPTURES[0], bad, "--format", "csv", "--dask")
    assert out.returncode == 0, out.stderr
    assert out.stdout == one.stdout
    assert f"Warning: not analysed: {bad}: not a pcap or pcapng capture" in out.stderr
    assert "Traceback" not in out.stderr
    worse = cli("analyze", bad, tmp_path / "bad.pcap", "--dask")
    assert worse.returncode == 2 and worse.stderr.startswith("Error: no capture could be analysed")


def test_cli_parquet_dataset_reads_back_with_pandas_pyarrow_and_dask(tmp_path):
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow.dataset as ds

    out = tmp_path / "flows"
    res = cli("analyze", *CAPTURES, "--view", "flows", "--format", "parquet", "-o", out, "--dask")
    assert res.returncode == 0, res.stderr
    files = sorted(out.rglob("*.parquet"))
    assert sorted({f.parent.name for f in files}) == [f"{i:04d}_{p.name}" for i, p in enumerate(CAPTURES)]
    expected = analyze(CAPTURES).flows
    for frame in (pd.read_parquet(out), ds.dataset(out).to_table().to_pandas(), dd.read_parquet(str(out)).compute()):
        got = frame.sort_values("flow_id").reset_index(drop=True)
        assert list(got.columns) == list(expected.columns)
        for col in expected.columns:
            assert got[col].equals(expected[col]), col
    field = ds.dataset(out).schema.field("verdict")
    assert field.metadata[b"description"].startswith(b"tls | plaintext | unknown")


def test_duckdb_reads_the_dataset_as_is(tmp_path):
    import duckdb

    out = tmp_path / "flows"
    res = cli("analyze", *CAPTURES, "--view", "flows", "--format", "parquet", "-o", out, "--include-localhost", "--dask")
    assert res.returncode == 0, res.stderr
    expected = analyze(CAPTURES, include_localhost=True).flows
    db = duckdb.connect()
    source = f"read_parquet('{out}/*/*.parquet')"
    types = {row[0]: row[1] for row in db.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    assert list(types) == list(expected.columns)
    assert (types["flow_id"], types["client_port"], types["first_ts"], types["verdict"], types["mesh"],
            types["duration_s"], types["isn_c2s"]) == ("BIGINT", "USMALLINT", "TIMESTAMPTZ_NS", "VARCHAR", "BOOLEAN",
                                                       "DOUBLE", "BIGINT")
    assert db.sql(f"SELECT count(*) FROM {source}").fetchall() == [(len(expected),)]
    by_verdict = dict(db.sql(f"SELECT verdict, count(*) FROM {source} GROUP BY verdict").fetchall())
    assert by_verdict == {v: n for v, n in expected["verdict"].value_counts().items() if n}
    [first] = db.sql(f"SELECT epoch_ns(min(first_ts)), sum(packets_c2s + packets_s2c) FROM {source}").fetchall()
    assert first == (expected["first_ts"].min().value, int((expected["packets_c2s"] + expected["packets_s2c"]).sum()))


@pytest.mark.parametrize("kind", ["dataset", "parquet", "jsonl"])
def test_edges_command_rejudges_stored_flows(tmp_path, kind):
    if kind == "dataset":
        stored = tmp_path / "flows"
        res = cli("analyze", *CAPTURES, "--view", "flows", "--format", "parquet", "-o", stored, "--dask")
    else:
        stored = tmp_path / f"flows.{kind}"
        res = cli("analyze", *CAPTURES, "--view", "flows", "--format", kind, "-o", stored)
    assert res.returncode == 0, res.stderr
    want = cli("analyze", *CAPTURES, "--pods", DEMO_PODS, "--format", "csv", "--fail-on", "unexpected-plaintext")
    got = cli("edges", stored, "--pods", DEMO_PODS, "--format", "csv", "--fail-on", "unexpected-plaintext")
    assert want.returncode == got.returncode == 3
    assert got.stdout == want.stdout and got.stdout.count("\n") > 10
    pairs = cli("edges", stored, "--view", "pairs", "--format", "csv")
    assert pairs.returncode == 0 and pairs.stdout == cli("analyze", *CAPTURES, "--format", "csv").stdout


@pytest.mark.skipif(shutil.which("java") is None or __import__("importlib").util.find_spec("pyspark") is None,
                    reason="Spark's reader needs pyspark and a Java runtime (not part of the test extra)")
def test_spark_reads_the_dataset_with_nanosecond_times_as_longs(tmp_path):
    from pyspark.sql import SparkSession

    out = tmp_path / "flows"
    res = cli("analyze", *CAPTURES[:2], "--view", "flows", "--format", "parquet", "-o", out, "--dask")
    assert res.returncode == 0, res.stderr
    expected = analyze(CAPTURES[:2]).flows
    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.sql.legacy.parquet.nanosAsLong", "true").getOrCreate())
    try:
        df = spark.read.option("recursiveFileLookup", "true").parquet(str(out))
        types = dict(df.dtypes)
        assert (types["flow_id"], types["client_port"], types["first_ts"], types["verdict"], types["mesh"]) == \
            ("bigint", "int", "bigint", "string", "boolean")
        assert df.count() == len(expected)
        [row] = df.selectExpr("min(first_ts) AS t", "sum(packets_c2s + packets_s2c) AS p").collect()
        assert (row.t, row.p) == (expected["first_ts"].min().value,
                                  int((expected["packets_c2s"] + expected["packets_s2c"]).sum()))
    finally:
        spark.stop()


def test_edges_command_on_dask_judges_the_stored_flows_there(tmp_path):
    stored = tmp_path / "flows"
    res = cli("analyze", *CAPTURES, "--view", "flows", "--format", "parquet", "-o", stored, "--dask")
    assert res.returncode == 0, res.stderr
    jsonl = tmp_path / "flows.jsonl"
    assert cli("analyze", *CAPTURES, "--view", "flows", "--format", "jsonl", "-o", jsonl).returncode == 0
    for flows, dask in ((stored, ("--dask",)), (jsonl, ("--dask", "local"))):
        args = ("--pods", DEMO_PODS, "--format", "csv", "--fail-on", "unexpected-plaintext")
        want, got = cli("edges", flows, *args), cli("edges", *dask, flows, *args)  # --dask FLOWS: FLOWS is no address
        assert want.returncode == got.returncode == 3, got.stderr
        assert got.stdout == want.stdout and got.stdout.count("\n") > 10
        assert got.stderr == want.stderr
    args = ("--view", "pairs", "--format", "csv", "--include-localhost")
    want, got = cli("edges", stored, *args), cli("edges", stored, *args, "--dask")
    assert got.returncode == 0 and got.stdout == want.stdout and got.stderr == want.stderr
    pairs = tmp_path / "pairs.jsonl"
    assert cli("analyze", CAPTURES[0], "--format", "jsonl", "-o", pairs).returncode == 0
    res = cli("edges", pairs, "--pods", DEMO_PODS, "--dask")
    assert res.returncode == 2 and "not a flows table" in res.stderr and "Traceback" not in res.stderr


def test_edges_command_refuses_what_is_not_a_flows_table(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    assert cli("analyze", CAPTURES[0], "--format", "jsonl", "-o", pairs).returncode == 0
    res = cli("edges", pairs, "--pods", DEMO_PODS)
    assert res.returncode == 2 and res.stderr.startswith("Error: ") and "not a flows table" in res.stderr
    assert "Traceback" not in res.stderr


# -- real scheduler and worker processes; a worker lost mid-run ---------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (no nanny: a killed worker stays dead)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=ENV, stderr=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)]
    for n in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                       "--no-nanny", "--no-dashboard", "--name", f"w{n}", "--local-directory",
                                       str(tmp_path / f"w{n}")], env=ENV, stderr=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL))
    try:
        with distributed.Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
            yield c, procs
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait(timeout=10)


def test_real_scheduler_and_workers_survive_a_killed_worker(scheduler, generated):
    client, procs = scheduler
    one = analyze(generated, jobs=1)
    pids = {p.pid: p for p in procs[1:]}
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(report=engine.analyze(
        generated, frozenset(), True, None, client, range_bytes=256 * 1024)))
    worker.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline:  # kill the worker that is reading a range
        for addr, keys in client.processing().items():
            if any("mtls-read" in str(k) for k in keys):
                pid = client.scheduler_info()["workers"][addr]["pid"] if "pid" in client.scheduler_info()["workers"][addr] \
                    else client.run(os.getpid, workers=[addr])[addr]
                os.kill(pid, signal.SIGKILL)
                killed = pids[pid]
                break
        time.sleep(0.02)
    worker.join(timeout=240)
    assert killed is not None and killed.wait(timeout=10) == -signal.SIGKILL
    assert len(client.scheduler_info()["workers"]) == 1
    same_flows(one, result["report"].all_flow_rows)
    assert result["report"].stats["failures"] == []


def test_progress_line_on_a_terminal_counts_tasks_bytes_and_workers(tmp_path):
    from support import run_on_tty

    code, _, text = run_on_tty([sys.executable, "-m", "analyzer", "analyze", *map(str, CAPTURES), "-o", os.devnull,
                                "--dask"], env=ENV, cwd=ROOT)
    assert code == 0
    size = sum(p.stat().st_size for p in CAPTURES) / 1048576
    assert f"\r\x1b[K{len(CAPTURES)}/{len(CAPTURES)} read tasks, {size:.1f} MiB read, " in text
    cores = len(os.sched_getaffinity(0))
    assert f"MiB read, {cores} workers" in text
    assert f"{len(CAPTURES)} captures on {cores} Dask workers: 5303 packets" in text.splitlines()[-1]


def test_report_on_dask_is_the_one_machine_report(tmp_path):
    import json

    args = ["report", *CAPTURES[:2], "--pods", DEMO_PODS]
    assert cli(*args, "--json", tmp_path / "one.json").returncode == 0
    res = cli(*args, "--json", tmp_path / "dask.json", "--dask")
    assert res.returncode == 0, res.stderr
    one, on_dask = (json.loads((tmp_path / n).read_text()) for n in ("one.json", "dask.json"))
    for doc in (one, on_dask):
        doc.pop("generated_at")
        doc["tool"].pop("command")
    assert on_dask == one


def test_dataset_goes_into_a_new_or_empty_folder_only(tmp_path):
    (tmp_path / "old.parquet").write_bytes(b"PAR1")
    res = cli("analyze", CAPTURES[0], "--view", "flows", "--format", "parquet", "-o", tmp_path, "--dask")
    assert res.returncode == 2 and res.stderr == f"Error: {tmp_path}: a Parquet dataset is written into a new or empty folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.parquet"]


def test_dask_before_the_captures_gives_the_first_one_back(tmp_path):
    one = cli("analyze", *CAPTURES[:2], "--format", "csv")
    res = cli("analyze", "--dask", *CAPTURES[:2], "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert res.stdout == one.stdout and res.stderr.startswith("2 captures on ")
    # A file named like an address is still a capture: an existing path is never an address.
    shutil.copy(CAPTURES[0], tmp_path / "local")
    shutil.copy(CAPTURES[1], tmp_path / "localhost:8786")
    res = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "--dask", "local", "localhost:8786",
                          "--format", "csv"], capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == one.stdout and res.stderr.startswith("2 captures on ")


def test_dask_value_is_an_address_only_when_it_looks_like_one(tmp_path, monkeypatch):
    from analyzer.commands.common import dask_target

    caps = (Path("b.pcap"),)
    for address in ("tcp://10.0.0.1:8786", "tls://sched.example:8786", "sched:8786", "[::1]:8786"):
        assert dask_target(address, caps) == (caps, address)
    assert dask_target("local", caps) == (caps, "")
    assert dask_target("", caps) == (caps, "")
    assert dask_target(None, caps) == (caps, None)
    for capture in ("a.pcap", "caps/*.pcap", "http://host/caps/a.pcap", "s3://bucket/x", "dir/"):
        assert dask_target(capture, caps) == ((Path(capture), *caps), "")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sched:8786").write_bytes(b"")
    assert dask_target("sched:8786", caps) == ((Path("sched:8786"), *caps), "")


def test_dask_address_before_the_captures_is_the_scheduler():
    address = f"127.0.0.1:{_free_port()}"
    res = cli("analyze", "--dask", address, CAPTURES[0])
    assert res.returncode == 2 and res.stderr.startswith(f"Error: --dask {address}: cannot connect to the scheduler")


def test_dask_runs_the_native_engine_only():
    for engine in ("tshark", "both"):
        res = cli("analyze", CAPTURES[0], "--engine", engine, "--dask")
        assert res.returncode == 2 and "Error: --dask runs the native engine" in res.stderr


def test_a_scheduler_that_does_not_answer_is_one_error_line():
    address = f"tcp://127.0.0.1:{_free_port()}"
    res = cli("analyze", CAPTURES[0], f"--dask={address}")
    assert res.returncode == 2
    assert res.stderr.startswith(f"Error: --dask {address}: cannot connect to the scheduler: ") and res.stderr.count("\n") == 1
