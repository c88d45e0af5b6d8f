#!/usr/bin/env python3
"""Agent overhead benchmark.

One sample of an 8-GPU fake node with 200 processes in 20 Slurm jobs (40 of
them on GPUs): CPU per
sample at steady state, peak RSS, and the stripped release binary's size; and,
on the same machine, Debian's prometheus-node-exporter answering one scrape.

    python3 bench/agent_sample.py [--samples 500]
    python3 bench/agent_sample.py --scenario tests/fake-nvml/scenarios/h200-gpm.json --interval 110ms --samples 200
    python3 bench/agent_sample.py --push
    python3 bench/agent_sample.py --unknown-users

Each job of the generated node runs as a user this machine knows (a uid of
its passwd database), as a GPU node knows its jobs' users through its
directory. With --unknown-users the jobs run as uids 3000+ that nothing here
resolves, and glibc loads every NSS module of the passwd line to look for them.

With --push, the agent pushes every report to a small local HTTP server (a
stand-in collector that accepts everything) through its spool, as `run` does
on a node, instead of printing it: CPU and RSS then include the spool (one
fsync per report) and the HTTP client. With --push --https, over TLS to a
certificate from a CA made for the run (`openssl` on PATH), given to the
agent with --ca-file.

With --scenario, one of the fake NVML scenarios instead of the generated
node; with GPM, give an --interval over 100 ms, or every report is too close
to the previous one for NVML and GPM is never computed. Builds the release
agent and the fake NVML library first. CPU per sample is
(CPU of a run of N+1 samples - CPU of a run of 1 sample) / N, so start-up is
left out; it includes the fake NVML calls (cheap, in process), so it is an
upper bound on the agent's own cost.
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "jazari-agent", "-p", "fake-nvml"], cwd=ROOT, check=True)


def known_uids():
    """Uids this machine resolves, each with a group of the same id (the fake starts a
    process as uid:uid), non-root first: a node knows its jobs' users through its
    directory (passwd/group through NSS: files, sss, LDAP)."""
    import grp, pwd
    gids = {g.gr_gid for g in grp.getgrall()}
    uids = sorted({u.pw_uid for u in pwd.getpwall() if u.pw_uid in gids})
    return [u for u in uids if u != 0] + [u for u in uids if u == 0]


def scenario(path, gpus=8, jobs=20, procs=200, unknown_users=False):
    """Writes the bench's fake node. Job j runs as a user this machine knows (see
    known_uids; shared when it knows fewer than `jobs`), or with `unknown_users`
    as uid 3000+j, which no NSS module here resolves: glibc then also loads the
    last module of nsswitch.conf's passwd line (Debian: systemd, with libm and libcap)."""
    processes, gpu_list = {}, []
    uids = [] if unknown_users else known_uids()
    for j in range(jobs):
        for k in range(procs // jobs):
            processes[f"job{j}-rank{k}"] = {
                "uid": uids[j % len(uids)] if uids else 3000 + j,
                "env": {"SLURM_JOB_ID": str(9000 + j), "SLURM_JOB_ACCOUNT": f"acct{j % 5}",
                        "SLURM_JOB_USER": f"user{j}", "SLURM_JOB_GPUS": str(j % gpus)},
            }
    names = sorted(processes)
    for i in range(gpus):
        gpu_list.append({
            "name": "NVIDIA H200", "uuid": f"GPU-00000000-0000-4000-8000-{i:012d}", "pci_bus_id": f"00000000:{16 + i:02X}:00.0",
            "memory_total_mib": 144384, "memory_used_mib": 60000, "util_gpu": 80, "util_mem": 40, "power_mw": 500000,
            "power_limit_mw": 700000, "sm_clock_mhz": 1980, "mem_clock_mhz": 3201, "ecc_enabled": True, "unsupported": ["fan"],
            # Two GPU processes per job (ranks 0-1); the other ranks stand for data loaders and helpers.
            "processes": [{"spawn": n, "used_memory_mib": 2000} for n in names if n.endswith(("rank0", "rank1"))][i::gpus],
        })
    json.dump({"description": "bench", "processes": processes, "gpus": gpu_list}, open(path, "w"))


def make_ca(d):
    """A CA and a certificate for 127.0.0.1 signed by it, with openssl: (ca.pem, server.pem, server.key)."""
    if not shutil.which("openssl"):
        sys.exit("--https needs openssl on PATH")
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext")
    return [os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key")]


class Collector:
    """A stand-in collector on 127.0.0.1 that accepts every POST (reads the body, answers 200);
    over TLS with `tls` = (certificate, key)."""

    def __init__(self, tls=None):
        import http.server, threading
        self.reports = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(h):
                h.rfile.read(int(h.headers.get("Content-Length", 0)))
                self.reports += 1
                h.send_response(200)
                h.send_header("Content-Length", "2")
                h.end_headers()
                h.wfile.write(b"{}")

            def log_message(h, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"{scheme}://localhost:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()


def push_args(push, count):
    """Arguments of `run` that push to `push` (a (collector, folder, CA file or None)) instead of printing."""
    if push is None:
        return ["--stdout"]
    collector, d, ca = push
    token = os.path.join(d, "token")
    with open(token, "w") as f:
        f.write("bench-token\n")
    spool = os.path.join(d, f"spool-{count}")
    return ["--collector", collector.url, "--token-file", token, "--spool-dir", spool] + (["--ca-file", ca] if ca else [])


def run_agent(agent, lib, scen, count, interval="1ms", push=None):
    """Runs the agent; returns its CPU seconds and its own peak RSS in KiB.

    The peak is the kernel's VmHWM of the agent process, read until it exits
    (wait4's ru_maxrss would also count the fake library's forked children)."""
    env = dict(os.environ, JAZARI_NVML_LIB=lib, FAKE_NVML_CONFIG=scen, JAZARI_LOG="warn")
    p = subprocess.Popen([agent, "run", *push_args(push, count), "--count", str(count), "--interval", interval],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    hwm = 0
    while p.poll() is None:
        try:
            for line in open(f"/proc/{p.pid}/status"):
                if line.startswith("VmHWM"):
                    hwm = max(hwm, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.005)
    return p, hwm


def cpu_of_run(agent, lib, scen, count, interval="1ms", push=None):
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p, hwm = run_agent(agent, lib, scen, count, interval, push)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"agent failed: {p.stderr.read().decode()}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, hwm


def node_exporter(scrapes):
    exe = shutil.which("prometheus-node-exporter")
    if not exe:
        return None
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    p = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    import urllib.request
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).read(); break
        except Exception:
            time.sleep(0.1)
    for _ in range(3):  # warm up
        urllib.request.urlopen(url).read()

    def cpu():
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    c0 = cpu()
    for _ in range(scrapes):
        urllib.request.urlopen(url).read()
    c1 = cpu()
    rss = int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmHWM")][0].split()[1])
    p.send_signal(signal.SIGTERM); p.wait()
    return (c1 - c0) / scrapes, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--scrapes", type=int, default=100)
    ap.add_argument("--scenario", help="a fake NVML scenario file instead of the generated 8-GPU node")
    ap.add_argument("--interval", default="1ms", help="agent interval (over 100ms for GPM values)")
    ap.add_argument("--unknown-users", action="store_true",
                    help="run the jobs as uids 3000+ that this machine cannot resolve (NSS loads every module)")
    ap.add_argument("--push", action="store_true", help="push to a local stand-in collector instead of printing")
    ap.add_argument("--https", action="store_true", help="with --push: over TLS, with a CA made for the run")
    a = ap.parse_args()
    build()
    agent = os.path.join(ROOT, "target/release/jazari-agent")
    lib = os.path.join(ROOT, "target/release/libfake_nvml.so")
    with tempfile.TemporaryDirectory() as d:
        scen = os.path.abspath(a.scenario) if a.scenario else os.path.join(d, "bench.json")
        if not a.scenario:
            scenario(scen, unknown_users=a.unknown_users)
        ca, tls = None, None
        if a.push and a.https:
            ca, cert, key = make_ca(d)
            tls = (cert, key)
        collector = Collector(tls) if a.push else None
        push = (collector, d, ca) if a.push else None
        cpu1, _ = cpu_of_run(agent, lib, scen, 1, a.interval, push)
        cpun, rss = cpu_of_run(agent, lib, scen, a.samples + 1, a.interval, push)
        if collector:
            collector.close()
            if collector.reports == 0:
                sys.exit("the agent delivered nothing to the stand-in collector")
    per_sample_ms = (cpun - cpu1) / a.samples * 1000
    size_mib = os.path.getsize(agent) / 2**20
    what = os.path.basename(a.scenario) if a.scenario else "8 GPUs, 200 processes in 20 jobs"
    how = f"pushed over {'HTTPS' if a.https else 'HTTP'} ({collector.reports} POSTs)" if a.push else "printed"
    print(f"agent: {what}, {a.samples} samples every {a.interval}, {how}")
    print(f"  cpu per sample      {per_sample_ms:.3f} ms   (target < 2 ms)")
    print(f"  peak RSS            {rss / 1024:.1f} MiB  (target < 15 MiB)")
    print(f"  release binary      {size_mib:.1f} MiB  (stripped; target < 10 MiB)")
    ne = node_exporter(a.scrapes)
    if ne is None:
        print("prometheus-node-exporter: not installed (apt-get install prometheus-node-exporter) - comparison skipped")
        return
    ne_cpu, ne_rss = ne
    print(f"prometheus-node-exporter: {a.scrapes} scrapes")
    print(f"  cpu per scrape      {ne_cpu * 1000:.3f} ms")
    print(f"  peak RSS            {ne_rss / 1024:.1f} MiB")
    print(f"agent cpu per sample is {ne_cpu * 1000 / max(per_sample_ms, 1e-9):.1f}x lower than node_exporter's per scrape"
          if per_sample_ms < ne_cpu * 1000 else "agent cpu per sample is NOT lower than node_exporter's per scrape")


if __name__ == "__main__":
    main()
