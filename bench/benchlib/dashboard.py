"""Dashboard: `jazari top` against a collector fed by 1,000 simulated nodes,
beside btop at its default 2 s refresh, both in tmux at 160x48, at the same
time; and the tui_render example (render time per frame at 10,000 GPUs)."""
import os, re, subprocess, time
from . import common as c


def pane_pid(sock, session):
    r = subprocess.run(["tmux", "-L", sock, "list-panes", "-t", session, "-F", "#{pane_pid}"],
                       capture_output=True, text=True)
    return int(r.stdout.split()[0]) if r.stdout.strip() else None


def live(quick):
    seconds = 20 if quick else 60
    d = c.tempdir("top")
    store = os.path.join(d, "store.sqlite")
    node_tok = c.node_token(c.EXAMPLE_CONFIG, store, d)
    admin_tok = c.node_token(c.EXAMPLE_CONFIG, store, d, role=("--admin",))
    serve, url = c.serve(c.EXAMPLE_CONFIG, store, d)
    env = dict(os.environ, JAZARI_LOG="warn")
    feed = subprocess.Popen([c.JAZARI, "sim", "--nodes", "1000", "--gpus-per-node", "8", "--interval", "10s",
                             "--url", url, "--token-file", node_tok], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "sim.log"), "w"))
    sock = f"jazari-bench-{os.getpid()}"
    home = os.path.join(d, "home")
    os.makedirs(home)
    try:
        c.log("dashboard: 1,000 simulated nodes reporting every 10 s; waiting for every node's first report")
        time.sleep(12)
        tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
        top_cmd = f"exec env LANG=C.UTF-8 {c.JAZARI} top --url {url} --token-file {admin_tok} --refresh 2s"
        subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "48", "-s", "top", top_cmd], check=True)
        have_btop = c.have("btop")
        if have_btop:
            btop_cmd = f"exec env HOME={home} LANG=C.UTF-8 btop"
            subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "48", "-s", "btop", btop_cmd], check=True)
        time.sleep(5)  # first frames, first fetch
        pids = {"top": pane_pid(sock, "top"), "btop": pane_pid(sock, "btop") if have_btop else None}
        before = {k: (c.cpu_s(p), c.written_bytes(p)) for k, p in pids.items() if p}
        load0 = c.loadavg()
        c.log(f"dashboard: jazari top and btop side by side for {seconds} s")
        time.sleep(seconds)
        out = {"seconds": seconds, "load": (load0, c.loadavg())}
        for k, p in pids.items():
            if not p or k not in before:
                continue
            cpu, wrote = c.cpu_s(p) - before[k][0], c.written_bytes(p) - before[k][1]
            out[k] = {"cpu_pct": cpu / seconds * 100, "bytes_per_refresh": wrote / (seconds / 2),
                      "rss_mib": c.status_kib(p, "VmHWM") / 1024}
        return out
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        c.stop(feed)
        c.stop(serve)
        subprocess.run(["rm", "-rf", d])


def render():
    exe = os.path.join(c.ROOT, "target/release/examples/tui_render")
    r = subprocess.run([exe], capture_output=True, text=True)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"(\w+)\s+(\d+x\d+): ([\d.]+) ms/frame · first frame (\d+) B · refresh with new data (\d+) B · "
                     r"redraw without change (\d+) B", line)
        if m:
            rows.append({"view": m[1], "size": m[2], "ms": float(m[3]), "first": int(m[4]), "refresh": int(m[5]),
                         "idle": int(m[6])})
    head = r.stdout.splitlines()[0] if r.stdout else ""
    return {"title": head, "rows": rows}


def run(quick):
    return {"live": live(quick), "render": render()}


def markdown(f):
    lv = f["live"]
    t, b = lv.get("top", {}), lv.get("btop", {})
    cpu_r = c.ratio(t.get("cpu_pct"), b.get("cpu_pct"))
    bytes_r = c.ratio(t.get("bytes_per_refresh"), b.get("bytes_per_refresh"))
    rows = [
        ["CPU, % of one core", c.fmt(t.get("cpu_pct"), 3), c.fmt(b.get("cpu_pct"), 3), c.fmt(cpu_r), "≤ 0.5",
         c.verdict(cpu_r, 0.5)],
        ["bytes written to the terminal per refresh", c.fmt(t.get("bytes_per_refresh"), 0),
         c.fmt(b.get("bytes_per_refresh"), 0), c.fmt(bytes_r), "", ""],
        ["peak RSS, MiB", c.fmt(t.get("rss_mib"), 1), c.fmt(b.get("rss_mib"), 1),
         c.fmt(c.ratio(t.get("rss_mib"), b.get("rss_mib"))), "", ""],
    ]
    render_rows = [[x["view"], x["size"], f"{x['ms']:.3f}", f"{x['first']:,}", f"{x['refresh']:,}", f"{x['idle']:,}"]
                   for x in f["render"]["rows"]]
    return (
        f"`jazari top` (2 s refresh) against a collector fed by `jazari sim` (1,000 8-GPU nodes reporting every 10 s, "
        f"realtime), and `btop` at its default 2 s update (fresh configuration), each in its own tmux session of 160x48, "
        f"at the same time, measured over {lv['seconds']} s after 5 s of warm-up: CPU from /proc, bytes written from "
        f"/proc/PID/io (`wchar`) per 2 s refresh, peak RSS (VmHWM). btop draws this machine; Jazari the cluster. Load "
        f"average before/after: {' '.join(lv['load'][0])} / {' '.join(lv['load'][1])}.\n\n"
        + c.table(["", "jazari top", "btop", "ratio", "target", ""], rows)
        + f"\n\nRender time per frame (`cargo run --release --example tui_render`, {f['render']['title']}; no terminal, "
        "bytes counted as a real terminal backend writes them):\n\n"
        + c.table(["view", "size", "ms/frame", "first frame, bytes", "refresh with new data, bytes",
                   "redraw without change, bytes"], render_rows)
        + "\n"
    )


def targets(f):
    t, b = f["live"].get("top", {}), f["live"].get("btop", {})
    r = c.ratio(t.get("cpu_pct"), b.get("cpu_pct"))
    return [["`jazari top` vs btop, CPU, 160x48, 2 s refresh", c.fmt(t.get("cpu_pct"), 3) + " % of a core",
             c.fmt(b.get("cpu_pct"), 3) + " %", c.fmt(r), "≤ 0.5", c.verdict(r, 0.5)]]
