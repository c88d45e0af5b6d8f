"""Reports: each format over a year of ledger for 2,000 GPUs (report_bench example)."""
import os, re, subprocess
from . import common as c


def run(quick):
    exe = os.path.join(c.ROOT, "target/release/examples/report_bench")
    period = "2025-01" if quick else "2025"
    # Writing a year of ledger takes minutes: the store is kept for later runs
    # (under target/, keyed by the period; delete it to write it again).
    keep = os.path.join(c.ROOT, "target", "bench-cache", f"ledger-{period}")
    load0 = c.loadavg()
    r = subprocess.run([exe, "--period", period, "--keep", keep], capture_output=True, text=True)
    out = {"load": (load0, c.loadavg()), "rows": [], "ledger": "", "period": period}
    for line in r.stdout.splitlines():
        m = re.match(r"(\w+)\s+([\d.]+) s\s+\((\d+) bytes, (\d+) institutes\)", line)
        if m:
            out["rows"].append({"format": m[1], "s": float(m[2]), "bytes": int(m[3]), "institutes": int(m[4])})
        elif line.startswith("ledger:"):
            out["ledger"] = line[len("ledger:"):].strip()
    if r.returncode != 0:
        c.log(f"report_bench failed: {r.stderr[-400:]}")
    return out


def markdown(f):
    rows = [[x["format"], f"{x['s']:.3f}", f"{x['bytes']:,}", x["institutes"]] for x in f["rows"]]
    return (
        f"Hourly ledger of {f['period']} for 2,000 GPUs (250 nodes × 8) and 20 institutes, written through the store's "
        f"ingest path ({f['ledger']}); then each format built from the store as `jazari report --config` does "
        "(`cargo run --release --example report_bench`). No peer: no tool we know of turns GPU telemetry into "
        f"institute usage reports. Load average before/after: {' '.join(f['load'][0])} / {' '.join(f['load'][1])}.\n\n"
        + c.table(["format", "seconds", "bytes", "institutes"], rows)
        + "\n"
    )
