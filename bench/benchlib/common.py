"""What the areas of bench/run share: processes and their CPU and memory,
free ports, the machine, medians, Markdown tables."""
import os, platform, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HZ = os.sysconf("SC_CLK_TCK")
JAZARI = os.path.join(ROOT, "target/release/jazari")
AGENT = os.path.join(ROOT, "target/release/jazari-agent")
FAKE_NVML = os.path.join(ROOT, "target/release/libfake_nvml.so")
EXAMPLE_CONFIG = os.path.join(ROOT, "config/jazari.example.toml")


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_s(pid, children=False):
    """CPU seconds (user + system) of a process, with its reaped children's when asked."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    t = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if children else 0)
    return t / HZ


def status_kib(pid, key):
    """A field of /proc/PID/status in KiB (VmHWM: peak RSS), 0 when gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def written_bytes(pid):
    """Bytes the process has written with write(2) and friends (terminal included)."""
    try:
        for line in open(f"/proc/{pid}/io"):
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def wait_http(url, seconds=30, proc=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {seconds} s")


def stop(p, timeout=20):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def du(path):
    """Bytes of a file or of everything under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except FileNotFoundError:
                pass
    return total


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def machine():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int([l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1])
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": mem_kib / 2**20, "kernel": platform.release()}


def commit():
    try:
        c = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
        return c.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def tempdir(name):
    d = tempfile.mkdtemp(prefix=f"jazari-bench-{name}-")
    os.chmod(d, 0o755)
    return d


def have(exe):
    return shutil.which(exe) is not None


def fmt(x, digits=2, unit=""):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        s = f"{x:,.0f}"
    elif abs(x) >= 100:
        s = f"{x:.0f}"
    else:
        s = f"{x:.{digits}f}"
    return s + unit


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(value, target, lower_is_better=True):
    """'met' / 'not met' for a value against a target (None: no figure)."""
    if value is None:
        return "not measured"
    ok = value <= target if lower_is_better else value >= target
    return "**met**" if ok else "**not met**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def run_jazari(*args, env=None, **kw):
    e = dict(os.environ, JAZARI_LOG="warn", **(env or {}))
    return subprocess.run([JAZARI, *args], env=e, capture_output=True, text=True, **kw)


def node_token(cfg, store, out_dir, role=("--node", "*")):
    """A token file made with `jazari token add` for `store`."""
    path = os.path.join(out_dir, f"token-{role[0].strip('-')}-{abs(hash(role)) % 10000}")
    r = run_jazari("token", "add", *role, "--config", cfg, "--store", store, "--out", path)
    if r.returncode != 0:
        raise RuntimeError(f"jazari token add failed: {r.stderr}")
    return path


def serve(cfg, store, out_dir, extra_env=None):
    """Starts `jazari serve` on a free port; returns (process, base URL)."""
    port = free_port()
    e = dict(os.environ, JAZARI_LOG="warn", **(extra_env or {}))
    log_file = open(os.path.join(out_dir, f"serve-{port}.log"), "w")
    p = subprocess.Popen([JAZARI, "serve", "--config", cfg, "--store", store, "--listen", f"127.0.0.1:{port}"],
                         env=e, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", 60, p)
    return p, url


def parse_sim(text):
    """Figures printed by `jazari sim --load`."""
    f = {}
    for line in text.splitlines():
        w = line.split()
        if not w:
            continue
        if line.startswith("reports sent"):
            f["sent"] = int(w[2])
        elif line.startswith("reports accepted"):
            f["accepted"] = int(w[2])
        elif line.startswith("reports/s"):
            f["rate"] = float(w[1])
        elif line.startswith("seconds"):
            f["seconds"] = float(w[1])
        elif line.startswith("batch latency"):
            f["p50"], f["p99"], f["max"] = float(w[4]), float(w[6]), float(w[8])
        elif line.startswith("batches"):
            f["batches"] = int(w[1])
            f["failed"] = int(w[2].strip("("))
        elif line.startswith("samples"):
            f["samples_per_report"] = float(w[2].strip("("))
        elif line.startswith("bodies built"):
            f["body_bytes"] = int(w[5])
            f["build_s"] = float(w[7])
    return f
