"""Ingest: Jazari's collector (SQLite; PostgreSQL with one and two
collectors) against VictoriaMetrics, fed the same prebuilt reports by
`jazari sim --load --prebuilt` (zstd JSON to Jazari, every numeric value as
Prometheus text samples, gzip, to VictoriaMetrics), same connections and
reports per request."""
import os, subprocess, time, urllib.request
from . import common as c

BATCH, THREADS, INTERVAL_S = 20, 16, 10


def sim(urls, nodes, reports, fmt, token=None):
    args = [c.JAZARI, "sim", "--load", "--prebuilt", "--reports", str(reports), "--format", fmt,
            "--nodes", str(nodes), "--gpus-per-node", "8", "--batch", str(BATCH), "--threads", str(THREADS),
            "--interval", f"{INTERVAL_S}s", "--duration", "600s", "--url", urls[0]]
    for u in urls[1:]:
        args += ["--also-url", u]
    if token:
        args += ["--token-file", token]
    r = subprocess.run(args, env=dict(os.environ, JAZARI_LOG="warn"), capture_output=True, text=True)
    f = c.parse_sim(r.stdout)
    if r.returncode != 0 or "rate" not in f:
        c.log(f"sim failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return f


def postmaster_cpu(data_dir):
    """CPU seconds of a PostgreSQL server: its postmaster, the backends it reaped and those alive."""
    try:
        pm = int(open(os.path.join(data_dir, "postmaster.pid")).readline())
    except (OSError, ValueError):
        return 0.0
    total = c.cpu_s(pm, children=True)
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]) == pm:
                    total += c.cpu_s(int(p), children=True)
            except (OSError, ValueError, IndexError):
                pass
    return total


def jazari_row(nodes, reports, store=None, collectors=1, pg=None):
    """One run against fresh Jazari collectors; `store` a postgres:// URL (shared), else a new SQLite file."""
    d = c.tempdir("ingest")
    store = store or os.path.join(d, "store.sqlite")
    token = c.node_token(c.EXAMPLE_CONFIG, store, d)
    procs, urls = [], []
    try:
        for _ in range(collectors):
            p, u = c.serve(c.EXAMPLE_CONFIG, store, d)
            procs.append(p)
            urls.append(u)
        c0 = sum(c.cpu_s(p.pid) for p in procs)
        g0 = postmaster_cpu(pg["data"]) if pg else 0.0
        f = sim(urls, nodes, reports, "jazari", token)
        f["server_cpu_s"] = sum(c.cpu_s(p.pid) for p in procs) - c0
        f["db_cpu_s"] = postmaster_cpu(pg["data"]) - g0 if pg else None
        f["rss_mib"] = sum(c.status_kib(p.pid, "VmHWM") for p in procs) / 1024
    finally:
        for p in procs:
            c.stop(p)
    if pg:
        f["store_bytes"] = pg["size"]()
    else:
        f["store_bytes"] = sum(c.du(store + s) for s in ("", "-wal", "-shm") if os.path.exists(store + s))
    subprocess.run(["rm", "-rf", d])
    return per_report(f)


def vm_row(nodes, reports):
    d = c.tempdir("vm")
    port = c.free_port()
    data = os.path.join(d, "data")
    p = subprocess.Popen(["victoria-metrics", f"-storageDataPath={data}", f"-httpListenAddr=127.0.0.1:{port}",
                          "-retentionPeriod=1y", "-loggerLevel=ERROR"],
                         stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        c.wait_http(url + "/health", 60, p)
        c0 = c.cpu_s(p.pid)
        f = sim([url], nodes, reports, "prometheus")
        f["server_cpu_s"] = c.cpu_s(p.pid) - c0
        f["db_cpu_s"] = None
        # What is buffered in memory goes to disk, for its size.
        urllib.request.urlopen(url + "/internal/force_flush").read()
        time.sleep(1)
        f["rss_mib"] = c.status_kib(p.pid, "VmHWM") / 1024
        f["store_bytes"] = c.du(data)
    finally:
        c.stop(p)
    subprocess.run(["rm", "-rf", d])
    return per_report(f)


def per_report(f):
    sent = f.get("sent") or 0
    if sent:
        f["cpu_us"] = f["server_cpu_s"] * 1e6 / sent
        if f.get("db_cpu_s") is not None:
            f["db_cpu_us"] = f["db_cpu_s"] * 1e6 / sent
        node_days = sent * INTERVAL_S / 86400
        f["bytes_per_node_day"] = f["store_bytes"] / node_days
    return f


class Postgres:
    """A private PostgreSQL for the run (scripts/postgres-up), one database per row."""

    def __init__(self):
        self.state = c.tempdir("pg")
        self.env = dict(os.environ, STATE=self.state)
        r = subprocess.run([os.path.join(c.ROOT, "scripts/postgres-up")], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        self.base = r.stdout.strip().split("=", 1)[1]
        self.bin = sorted(os.listdir("/usr/lib/postgresql"))[-1]
        self.n = 0

    def psql(self, db, sql):
        r = subprocess.run([f"/usr/lib/postgresql/{self.bin}/bin/psql", "-qtA", f"{self.base}/{db}", "-c", sql],
                           capture_output=True, text=True)
        return r.stdout.strip()

    def database(self):
        self.n += 1
        name = f"bench{self.n}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return {"url": f"{self.base}/{name}", "data": os.path.join(self.state, "data"),
                "size": lambda: int(self.psql("postgres", f"SELECT pg_database_size('{name}')") or 0)}

    def close(self):
        subprocess.run([os.path.join(c.ROOT, "scripts/postgres-up"), "--stop"], env=self.env, capture_output=True)
        subprocess.run(["rm", "-rf", self.state])


def run(quick):
    # (nodes, reports, rounds): at 10,000 nodes, 200,000 reports give every node one request.
    sizes = [(1000, 20_000, 1), (10_000, 40_000, 1)] if quick else [(1000, 60_000, 3), (10_000, 200_000, 2)]
    have_vm = c.have("victoria-metrics")
    out = {"sizes": sizes, "rows": {}, "load": [c.loadavg()]}
    for r in range(max(s[2] for s in sizes)):
        for nodes, reports, rounds in sizes:
            if r >= rounds:
                continue
            order = ["jazari", "vm"] if r % 2 == 0 else ["vm", "jazari"]
            for who in order:
                if who == "vm" and not have_vm:
                    continue
                c.log(f"ingest round {r + 1}/{rounds}: {who}, {nodes} nodes, {reports} reports (load {' '.join(c.loadavg())})")
                f = jazari_row(nodes, reports) if who == "jazari" else vm_row(nodes, reports)
                out["rows"].setdefault((who, nodes), []).append(f)
    pg_reports = sizes[0][1]
    try:
        pg = Postgres()
    except (RuntimeError, OSError) as e:
        c.log(f"no PostgreSQL rows: {e}")
        pg = None
    if pg:
        try:
            for collectors in (1, 2):
                c.log(f"ingest on PostgreSQL, {collectors} collector(s), 1000 nodes, {pg_reports} reports")
                db = pg.database()
                f = jazari_row(1000, pg_reports, store=db["url"], collectors=collectors, pg=db)
                out["rows"].setdefault((f"pg{collectors}", 1000), []).append(f)
        finally:
            pg.close()
    out["load"].append(c.loadavg())
    return out


def med(rows, key):
    return c.median([r.get(key) for r in rows])


def markdown(f):
    rows = f["rows"]
    header = ["nodes", "server", "reports/s", "p50 ms", "p99 ms", "server CPU µs/report", "RSS MiB",
              "store bytes/node-day", "ratio reports/s (Jazari / VictoriaMetrics)", "target", ""]
    lines = []
    for nodes, _, _ in f["sizes"]:
        j, v = rows.get(("jazari", nodes), []), rows.get(("vm", nodes), [])
        jr, vr = med(j, "rate"), med(v, "rate")
        rr = c.ratio(jr, vr)
        jp99 = med(j, "p99")
        for name, rs, is_j in (("Jazari (SQLite)", j, True), ("VictoriaMetrics", v, False)):
            if not rs:
                continue
            lines.append([f"{nodes:,}", name, c.fmt(med(rs, "rate")), c.fmt(med(rs, "p50")), c.fmt(med(rs, "p99")),
                          c.fmt(med(rs, "cpu_us")), c.fmt(med(rs, "rss_mib"), 1), c.fmt(med(rs, "bytes_per_node_day")),
                          c.fmt(rr) if is_j else "", "≥ 2.0; p99 ≤ 50 ms" if is_j and nodes == 1000 else "",
                          (c.verdict(rr, 2.0, lower_is_better=False) + " / p99 " + c.verdict(jp99, 50.0))
                          if is_j and nodes == 1000 else ""])
    for key, name in (("pg1", "Jazari (PostgreSQL)"), ("pg2", "Jazari (PostgreSQL, 2 collectors)")):
        rs = rows.get((key, 1000))
        if rs:
            x = rs[0]
            lines.append(["1,000", name, c.fmt(x.get("rate")), c.fmt(x.get("p50")), c.fmt(x.get("p99")),
                          c.fmt(x.get("cpu_us")) + f" (+ PostgreSQL {c.fmt(x.get('db_cpu_us'))})",
                          c.fmt(x.get("rss_mib"), 1), c.fmt(x.get("bytes_per_node_day")),
                          c.fmt(c.ratio(x.get("rate"), med(rows.get(("vm", 1000), []), "rate"))), "", ""])
    spr = med(rows.get(("vm", 1000), []), "samples_per_report")
    per_round = "; ".join(
        f"{who} {n:,}: " + ", ".join(c.fmt(x.get("rate")) for x in rs) for (who, n), rs in sorted(rows.items()))
    return (
        f"Simulated 8-GPU nodes, {THREADS} connections, {BATCH} reports per request (consecutive reports of one node, as "
        f"an agent drains its spool), {INTERVAL_S} s of node time per report. `jazari sim --load --prebuilt` builds and "
        "compresses every body before the clock starts, then only sends: to Jazari a zstd JSON array (level 3, as the "
        "agent sends), acknowledged after the commit; to VictoriaMetrics (`/api/v1/import/prometheus`, gzip) every "
        f"numeric value of the same reports as a Prometheus text sample ({c.fmt(spr, 1)} samples per report), labelled by "
        "node and list position, stamped with the report's time. Reports per size: "
        + ", ".join(f"{r:,} for {n:,} nodes ({k} rounds)" for n, r, k in f["sizes"])
        + ". Server CPU from /proc over the sending (PostgreSQL's processes apart); RSS: VmHWM (two collectors: "
        "summed); store: the SQLite file with its WAL, VictoriaMetrics' data folder after a forced flush, the PostgreSQL "
        "database's size; a node-day is 8,640 reports. Medians of the rounds, which alternate which side goes "
        "first (PostgreSQL: one round). The load generator runs on the same machine. Load average before/after: "
        f"{' '.join(f['load'][0])} / {' '.join(f['load'][-1])}.\n\n"
        + c.table(header, lines)
        + f"\n\nreports/s per round: {per_round}.\n"
    )


def targets(f):
    rows = f["rows"]
    j, v = rows.get(("jazari", 1000), []), rows.get(("vm", 1000), [])
    jr, vr, p99 = med(j, "rate"), med(v, "rate"), med(j, "p99")
    rr = c.ratio(jr, vr)
    return [["ingest, 1,000 nodes, Jazari (SQLite) vs VictoriaMetrics, reports/s",
             f"{c.fmt(jr)} (p99 {c.fmt(p99)} ms)", c.fmt(vr), c.fmt(rr), "≥ 2.0, p99 ≤ 50 ms",
             c.verdict(rr, 2.0, lower_is_better=False) + " / p99 " + c.verdict(p99, 50.0)]]
