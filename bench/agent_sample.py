#!/usr/bin/env python3
"""Agent overhead benchmark.

One sample of an 8-GPU fake node with 200 processes in 20 Slurm jobs (40 of
them on GPUs): CPU per
sample at steady state, peak RSS, and the stripped release binary's size; and,
on the same machine, Debian's prometheus-node-exporter answering one scrape.

    python3 bench/agent_sample.py [--samples 500]
    python3 bench/agent_sample.py --scenario tests/fake-nvml/scenarios/h200-gpm.json --interval 110ms --samples 200

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


def scenario(path, gpus=8, jobs=20, procs=200):
    processes, gpu_list = {}, []
    for j in range(jobs):
        for k in range(procs // jobs):
            processes[f"job{j}-rank{k}"] = {
                "uid": 3000 + j,
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


def run_agent(agent, lib, scen, count, interval="1ms"):
    """Runs the agent; returns its CPU seconds and its own peak RSS in KiB.

    The peak is the kernel's VmHWM of the agent process, read until it exits
    (wait4's ru_maxrss would also count the fake library's forked children)."""
    env = dict(os.environ, JAZARI_NVML_LIB=lib, FAKE_NVML_CONFIG=scen, JAZARI_LOG="warn")
    p = subprocess.Popen([agent, "run", "--stdout", "--count", str(count), "--interval", interval],
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


def cpu_of_run(agent, lib, scen, count, interval="1ms"):
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p, hwm = run_agent(agent, lib, scen, count, interval)
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
    a = ap.parse_args()
    build()
    agent = os.path.join(ROOT, "target/release/jazari-agent")
    lib = os.path.join(ROOT, "target/release/libfake_nvml.so")
    with tempfile.TemporaryDirectory() as d:
        scen = os.path.abspath(a.scenario) if a.scenario else os.path.join(d, "bench.json")
        if not a.scenario:
            scenario(scen)
        cpu1, _ = cpu_of_run(agent, lib, scen, 1, a.interval)
        cpun, rss = cpu_of_run(agent, lib, scen, a.samples + 1, a.interval)
    per_sample_ms = (cpun - cpu1) / a.samples * 1000
    size_mib = os.path.getsize(agent) / 2**20
    what = os.path.basename(a.scenario) if a.scenario else "8 GPUs, 200 processes in 20 jobs"
    print(f"agent: {what}, {a.samples} samples every {a.interval}")
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
