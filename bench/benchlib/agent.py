"""Agent vs prometheus-node-exporter: CPU per sample (per scrape) and peak RSS
on a fake 8-GPU node with 200 processes in 20 jobs, both at the same rate, in
rounds that alternate the two."""
import os, shutil, signal, subprocess, sys, time, urllib.request
from . import common as c

sys.path.insert(0, os.path.join(c.ROOT, "bench"))
import agent_sample  # noqa: E402  (the scenario and the agent runs)


def node_exporter_round(scrapes, interval_s):
    """CPU per scrape (s) and peak RSS (KiB) of a fresh node_exporter scraped every `interval_s`."""
    port = c.free_port()
    p = subprocess.Popen(["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        c.wait_http(url, 30, p)
        for _ in range(3):  # warm up, as the agent's first sample is left out
            urllib.request.urlopen(url).read()
        c0 = c.cpu_s(p.pid)
        next_at = time.monotonic()
        for _ in range(scrapes):
            urllib.request.urlopen(url).read()
            next_at += interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
        c1 = c.cpu_s(p.pid)
        return (c1 - c0) / scrapes, c.status_kib(p.pid, "VmHWM")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()


def agent_round(scen, samples, interval):
    cpu1, _ = agent_sample.cpu_of_run(c.AGENT, c.FAKE_NVML, scen, 1, interval)
    cpun, rss = agent_sample.cpu_of_run(c.AGENT, c.FAKE_NVML, scen, samples + 1, interval)
    return (cpun - cpu1) / samples, rss


def run(quick):
    rounds, samples, interval_ms = (2, 20, 50) if quick else (3, 100, 50)
    d = c.tempdir("agent")
    scen = os.path.join(d, "node.json")
    agent_sample.scenario(scen)
    unknown = os.path.join(d, "node-unknown-users.json")
    agent_sample.scenario(unknown, unknown_users=True)
    have_ne = c.have("prometheus-node-exporter")
    load0 = c.loadavg()
    a_cpu, a_rss, n_cpu, n_rss, u_rss = [], [], [], [], []
    for r in range(rounds):
        c.log(f"agent round {r + 1}/{rounds}: {samples} samples every {interval_ms} ms")
        cpu, rss = agent_round(scen, samples, f"{interval_ms}ms")
        a_cpu.append(cpu * 1000)
        a_rss.append(rss / 1024)
        _, rss = agent_sample.cpu_of_run(c.AGENT, c.FAKE_NVML, unknown, samples + 1, f"{interval_ms}ms")
        u_rss.append(rss / 1024)
        if have_ne:
            c.log(f"node_exporter round {r + 1}/{rounds}: {samples} scrapes every {interval_ms} ms")
            cpu, rss = node_exporter_round(samples, interval_ms / 1000)
            n_cpu.append(cpu * 1000)
            n_rss.append(rss / 1024)
    shutil.rmtree(d, ignore_errors=True)
    return {
        "rounds": rounds, "samples": samples, "interval_ms": interval_ms, "load": (load0, c.loadavg()),
        "agent_cpu_ms": c.median(a_cpu), "agent_rss_mib": c.median(a_rss),
        "ne_cpu_ms": c.median(n_cpu), "ne_rss_mib": c.median(n_rss), "unknown_rss_mib": c.median(u_rss),
        "agent_cpu_all": a_cpu, "ne_cpu_all": n_cpu,
        "binary_mib": os.path.getsize(c.AGENT) / 2**20,
    }


def markdown(f):
    cpu_r = c.ratio(f["agent_cpu_ms"], f["ne_cpu_ms"])
    rss_r = c.ratio(f["agent_rss_mib"], f["ne_rss_mib"])
    rows = [
        ["CPU per sample (per scrape), ms", c.fmt(f["agent_cpu_ms"], 3), c.fmt(f["ne_cpu_ms"], 3), c.fmt(cpu_r),
         "≤ 0.10", c.verdict(cpu_r, 0.10)],
        ["peak RSS, MiB", c.fmt(f["agent_rss_mib"], 1), c.fmt(f["ne_rss_mib"], 1), c.fmt(rss_r),
         "≤ 0.30", c.verdict(rss_r, 0.30)],
        ["peak RSS, jobs' users unknown to this machine (not a target)", c.fmt(f["unknown_rss_mib"], 1), "", "", "",
         ""],
        ["agent peak RSS under 10 MiB", c.fmt(f["agent_rss_mib"], 1), "", "", "< 10 MiB",
         c.verdict(f["agent_rss_mib"], 10.0)],
        ["release binary (stripped), MiB", c.fmt(f["binary_mib"], 1), "", "", "", ""],
    ]
    each = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(f["agent_cpu_all"], f["ne_cpu_all"]))
    return (
        f"Fake 8-GPU node (fake NVML library), 200 processes in 20 Slurm jobs, each job run as a user this machine's "
        f"passwd database knows, as a node knows its jobs' users through its directory. Once per round the agent also "
        f"runs the same node with jobs of uids 3000+ that no NSS module here resolves: glibc then loads every module "
        f"of nsswitch.conf's passwd line (here systemd's, with libm and libcap); that row is for reading, not a target. "
        f"The agent takes {f['samples']} samples "
        f"every {f['interval_ms']} ms (printing each report), CPU per sample = (CPU of a run of {f['samples']}+1 samples − "
        f"CPU of a run of 1) / {f['samples']}, so start-up is left out; `prometheus-node-exporter` (Debian's, default "
        f"collectors) is scraped {f['samples']} times at the same rate after 3 warm-up scrapes, CPU from /proc. Peak RSS: "
        f"VmHWM. {f['rounds']} rounds alternating the two; medians. Load average before/after: "
        f"{' '.join(f['load'][0])} / {' '.join(f['load'][1])}.\n\n"
        + c.table(["", "Jazari agent", "node_exporter", "ratio", "target", ""], rows)
        + f"\n\nCPU per round, agent/node_exporter (ms): {each}.\n"
    )


def targets(f):
    cpu_r = c.ratio(f["agent_cpu_ms"], f["ne_cpu_ms"])
    rss_r = c.ratio(f["agent_rss_mib"], f["ne_rss_mib"])
    return [
        ["agent CPU per sample vs node_exporter per scrape", c.fmt(f["agent_cpu_ms"], 3) + " ms",
         c.fmt(f["ne_cpu_ms"], 3) + " ms", c.fmt(cpu_r), "≤ 0.10", c.verdict(cpu_r, 0.10)],
        ["agent peak RSS vs node_exporter", c.fmt(f["agent_rss_mib"], 1) + " MiB", c.fmt(f["ne_rss_mib"], 1) + " MiB",
         c.fmt(rss_r), "≤ 0.30, and < 10 MiB",
         c.verdict(rss_r, 0.30) + " / < 10 MiB " + c.verdict(f["agent_rss_mib"], 10.0)],
    ]
