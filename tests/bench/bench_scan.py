"""Benchmark: registry-scrub against the seed loop and the servers' own ceilings.

Not collected by pytest; run ``make bench`` or ``python tests/bench/bench_scan.py --help``
(``--quick`` for a smoke run of a minute or two).

These machines are shared and noisy, so everything is measured side by side in one run:
every variant of every workload runs once per round, in an order rotated each round, and
the figures are medians over the rounds. Ratios are taken within each round, then their
median is printed. Compare the ratios, not the absolute figures.

Per server (gcp-storage-emulator, the slow single-threaded one the tests use, and
fake-gcs-server, a Go server with keep-alive) and per workload (40 x 25 MiB, 5,000 x 1 KiB,
and 2,000 x 1 KiB through a loopback proxy adding 30 ms to every request):
- seed loop: list, then ``curl …?alt=media | sha256sum`` for each object, one after another;
- ceiling: the same downloads with no hashing, by 1, 2 and 4 curl processes in parallel
  (8, 32 and 128 through the latency proxy), each reusing its connection where the server allows;
- registry-scrub: the CLI, a whole run in its own process (start-up, listing, reads,
  report), with the CPU seconds of all its processes (psutil and rusage, children
  included) per object and per GB; through the proxy at read_concurrency 4, 16, 32 (the
  default), 64, 128 and 256, with the object GETs it made (one per healthy object);
- through the proxy, the curve: for every variant, the reads the proxy saw in flight (the
  mean over the span from the first object GET to the last answer, and the peak), the
  reads per second over that span against what that many in flight allow at +30 ms, and
  the CPU the proxy itself spent (it runs in this process, on the same cores);
- fixed cost: the same CLI scanning a one-object bucket, in every round, so that
  "net of start-up" subtracts a figure taken under the same load;
- imports: ``python -c 'import jobs.cli, apache_beam'``, the part of the fixed cost
  no execution mode can avoid.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench import measure  # noqa: E402
from tests.bench.servers import SERVERS  # noqa: E402
from tests.support.proxy import FaultyProxy  # noqa: E402

PREFIX = "containers/images/"
MiB = 1024 * 1024
PYTHON = sys.executable


@dataclass(frozen=True)
class Workload:
    name: str
    count: int
    size: int
    proxied: bool = False

    @property
    def bucket(self) -> str:
        return f"bench-{self.name}.appspot.com"

    @property
    def total_bytes(self) -> int:
        return self.count * self.size

    @property
    def title(self) -> str:
        size = f"{self.size // MiB} MiB" if self.size >= MiB else f"{self.size:,} B"
        extra = " through the latency proxy" if self.proxied else ""
        return f"{self.count:,} x {size}{extra}"


def full_workloads(latency_ms: float) -> list[Workload]:
    return [Workload("large", 40, 25 * MiB), Workload("small", 5000, 1024), Workload("latency", 2000, 1024, True)]


def quick_workloads(latency_ms: float) -> list[Workload]:
    return [Workload("large", 4, 8 * MiB), Workload("small", 300, 1024), Workload("latency", 100, 1024, True)]


ONE = Workload("one", 1, 1024)


def corpus(workload: Workload, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    objects = []
    for _ in range(workload.count):
        content = rng.randbytes(workload.size)
        objects.append((PREFIX + "sha256:" + hashlib.sha256(content).hexdigest(), content))
    return objects


@dataclass
class Sample:
    wall: float
    cpu: float | None = None  # CPU seconds of the measured processes
    gets: int | None = None  # object GETs the proxy saw
    worker_rss_mib: float | None = None
    phases: dict[str, float] | None = None  # the fixed cost, phase by phase (tests/bench/timed_scan.py)
    reads: ReadSpan | None = None  # through the proxy: the object GETs as it saw them
    proxy_cpu: float | None = None  # CPU seconds of the proxy's thread during the variant
    listen_drops: int | None = None  # the kernel's TcpExtListenDrops during the variant (machine-wide)


@dataclass(frozen=True)
class ReadSpan:
    """Object GETs through the proxy, from the first one's arrival to the last one's answer."""

    count: int
    seconds: float
    mean_in_flight: float  # Little's law: the GETs' summed durations over the span
    peak_in_flight: int

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def listen_drops() -> int:
    """Connections the kernel dropped because a listen queue was full, machine-wide, so far
    (what ``nstat TcpExtListenDrops`` prints): a connect past gcp-storage-emulator's backlog
    of 5 is one, and waits 1 s or more for its retry."""
    with open("/proc/net/netstat") as netstat:
        lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
    return int(dict(zip(lines[0], lines[1], strict=True))["ListenDrops"])


def read_span(records) -> ReadSpan | None:
    timed = [(r.received, r.answered) for r in records if r.answered is not None]
    if not timed:
        return None
    start, end = min(a for a, _ in timed), max(b for _, b in timed)
    span = end - start
    in_flight = peak = 0
    for _, change in sorted([(a, 1) for a, _ in timed] + [(b, -1) for _, b in timed]):
        in_flight += change
        peak = max(peak, in_flight)
    busy = sum(b - a for a, b in timed)
    return ReadSpan(len(timed), span, busy / span if span > 0 else float(len(timed)), peak)


@dataclass
class Results:
    # (server, workload, variant) -> one sample per round
    samples: dict[tuple[str, str, str], list[Sample]] = field(default_factory=lambda: defaultdict(list))
    server_cpu: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))


# ---------------------------------------------------------------- the variants


LISTER = r"""
import json, sys, urllib.parse as u, urllib.request as r
ep, bucket, token = sys.argv[1], sys.argv[2], ""
while True:
    url = f"{ep}/storage/v1/b/{bucket}/o?prefix=containers/images/" + (f"&pageToken={u.quote(token)}" if token else "")
    page = json.load(r.urlopen(url))
    for item in page.get("items", []):
        print(u.quote(item["name"], safe=""))
    token = page.get("nextPageToken")
    if not token:
        break
"""

SEED_LOOP = r"""
set -euo pipefail
"$PYTHON" -c "$LISTER" "$EP" "$BUCKET" \
  | while read -r name; do
      curl -sf "$EP/download/storage/v1/b/$BUCKET/o/$name?alt=media" | sha256sum
    done | wc -l
"""


def seed_loop(endpoint: str, workload: Workload) -> Sample:
    env = dict(os.environ, EP=endpoint, BUCKET=workload.bucket, LISTER=LISTER, PYTHON=PYTHON)
    run = measure.run(["bash", "-c", SEED_LOOP], env=env)
    assert run.returncode == 0 and int(run.stdout.strip()) == workload.count, (run.stdout, run.stderr[-500:])
    return Sample(run.wall, run.cpu)


def media_urls(endpoint: str, workload: Workload) -> list[str]:
    out = subprocess.run([PYTHON, "-c", LISTER, endpoint, workload.bucket], capture_output=True, text=True, check=True)
    names = out.stdout.split()
    assert len(names) == workload.count, len(names)
    return [f"{endpoint}/download/storage/v1/b/{workload.bucket}/o/{name}?alt=media" for name in names]


def parallel_curl(urls: list[str], processes: int, scratch: Path, expected_bytes: int) -> Sample:
    """``processes`` curl processes, each downloading its share of ``urls`` to /dev/null in turn."""
    configs = []
    for index in range(processes):
        path = scratch / f"curl-{processes}-{index}.cfg"
        share = urls[index::processes]
        path.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for url in share))
        configs.append(path)
    script = (
        " ".join(f"curl -sf -w '%{{size_download}}\\n' -K {path} > {path}.out &" for path in configs)
        + " wait; cat "
        + " ".join(f"{path}.out" for path in configs)
    )
    run = measure.run(["bash", "-c", script])
    received = sum(int(line) for line in run.stdout.split())
    assert run.returncode == 0 and received == expected_bytes, (received, expected_bytes, run.stderr[-500:])
    return Sample(run.wall, run.cpu)


def registry_scrub(
    endpoint: str,
    workload: Workload,
    output: Path,
    concurrency: int | None,
    beam_args: list[str],
    tag: str,
    phases_file: Path | None = None,
    tree: Path = REPO,
) -> Sample:
    """A whole CLI run. With ``phases_file``, the same run through tests/bench/timed_scan.py,
    which times each of its phases. ``tree``: the source tree it runs from (its ``jobs`` and
    ``pipeline`` come first on the path), this one unless a benchmark compares another."""
    run_id = f"{workload.name}-{tag}"
    started = time.time()
    if phases_file is None:
        head = [PYTHON, "-m", "jobs.cli"]
    else:
        head = [PYTHON, str(REPO / "tests" / "bench" / "timed_scan.py"), str(phases_file), repr(started), "--"]
    command = [
        *head,
        "scan",
        "--bucket",
        workload.bucket,
        "--emulator-endpoint",
        endpoint,
        "--output",
        str(output),
        "--run-id",
        run_id,
        "-q",
    ]
    if concurrency:
        command += ["--read-concurrency", str(concurrency)]
    run = measure.run(command + beam_args, cwd=str(tree))
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((output / run_id / "summary.json").read_text())
    assert summary["objects_verified"] == workload.count, summary
    phases = None
    if phases_file is not None:
        recorded = json.loads(phases_file.read_text())
        phases = {}
        for name, seconds in recorded["phases"]:
            phases[name] = phases.get(name, 0.0) + seconds
        phases["interpreter exit (after the last atexit hook)"] = started + run.wall - recorded["ended"]
        stages = sum(seconds for _, seconds in recorded["bundles"])
        phases[f"  of the Beam run: its {len(recorded['bundles'])} bundles"] = stages
    return Sample(run.wall, run.cpu, worker_rss_mib=run.worker_peak_mib, phases=phases)


def imports() -> Sample:
    run = measure.run([PYTHON, "-c", "import jobs.cli, jobs.launcher, apache_beam"], cwd=str(REPO))
    assert run.returncode == 0, run.stderr
    return Sample(run.wall, run.cpu)


def hashlib_in_memory(objects: list[tuple[str, bytes]]) -> Sample:
    start, cpu = time.perf_counter(), time.process_time()
    for _, content in objects:
        hashlib.sha256(content).hexdigest()
    return Sample(time.perf_counter() - start, time.process_time() - cpu)


# ---------------------------------------------------------------- rounds


def variants_for(
    workload: Workload,
    endpoint: str,
    urls: list[str],
    objects: list[tuple[str, bytes]] | None,
    scratch: Path,
    output: Path,
    args: argparse.Namespace,
) -> dict[str, Callable[[], Sample]]:
    """Every variant of one workload: name -> a callable that measures it once."""
    variants: dict[str, Callable[[], Sample]] = {}
    variants["seed loop"] = lambda: seed_loop(endpoint, workload)
    for p in args.latency_curl if workload.proxied else (1, 2, 4):
        variants[f"ceiling: curl x{p}"] = lambda p=p: parallel_curl(urls, p, scratch, workload.total_bytes)
    modes = {"": []}
    if args.compare_modes:
        modes = {
            "": [],
            " in_memory": ["--direct_running_mode=in_memory"],
            " multi_processing": ["--direct_running_mode=multi_processing"],
        }
    for suffix, beam_args in modes.items():
        if workload.proxied:
            for c in args.latency_concurrency:
                variants[f"registry-scrub c={c}{suffix}"] = lambda c=c, b=beam_args, s=suffix: registry_scrub(
                    endpoint, workload, output, c, b, f"c{c}{s.strip()}"
                )
        else:
            variants[f"registry-scrub{suffix}"] = lambda b=beam_args, s=suffix: registry_scrub(
                endpoint, workload, output, None, b, f"default{s.strip()}"
            )
    if objects is not None:
        variants["hashlib.sha256 in memory"] = lambda: hashlib_in_memory(objects)
    return variants


def fixed_variants(endpoint: str, output: Path, args: argparse.Namespace) -> dict[str, Callable[[], Sample]]:
    phases = output.parent / f"phases-{output.name}.json"
    variants = {
        "fixed cost (one-object scan)": lambda: registry_scrub(endpoint, ONE, output, None, [], "fixed", phases),
        "imports (jobs.cli, apache_beam)": imports,
    }
    if args.compare_modes:
        for mode in ("in_memory", "multi_processing"):
            variants[f"fixed cost {mode}"] = lambda m=mode: registry_scrub(
                endpoint, ONE, output, None, [f"--direct_running_mode={m}"], f"fixed-{m}"
            )
    return variants


def run_server(server, workloads: list[Workload], corpora, args, scratch: Path, results: Results) -> None:
    server.start()
    proxy = None
    try:
        output = scratch / f"reports-{server.name}"
        endpoints = {w.name: server.endpoint for w in workloads}
        if any(w.proxied for w in workloads):
            proxy = FaultyProxy(
                server.port, latency=args.latency_ms / 1000, upstream_connections=args.proxy_upstream or None
            ).__enter__()
            for w in workloads:
                if w.proxied:
                    endpoints[w.name] = proxy.endpoint
        tasks: list[tuple[str, str, Callable[[], Sample]]] = [
            (ONE.name, name, fn) for name, fn in fixed_variants(server.endpoint, output, args).items()
        ]
        for w in workloads:
            urls = media_urls(endpoints[w.name], w)
            in_memory = corpora[w.name] if w.name == "large" else None
            for name, fn in variants_for(w, endpoints[w.name], urls, in_memory, scratch, output, args).items():
                tasks.append((w.name, name, fn))
        for round_index in range(args.rounds):
            shift = (round_index * len(tasks)) // args.rounds
            ordered = tasks[shift:] + tasks[:shift]
            started = time.perf_counter()
            for workload_name, variant, fn in ordered:
                if variant == "seed loop" and round_index >= args.seed_loop_rounds:
                    continue
                server_cpu = measure.cpu_seconds(server.pid)
                proxied = proxy is not None and endpoints.get(workload_name) == proxy.endpoint
                gets = len(proxy.stats.media_reads()) if proxied else 0
                proxy_cpu = proxy.cpu_seconds() if proxied else 0.0
                drops = listen_drops()
                sample = fn()
                sample.listen_drops = listen_drops() - drops
                if proxied:
                    reads = proxy.stats.media_reads()[gets:]
                    sample.reads = read_span(reads)
                    sample.proxy_cpu = proxy.cpu_seconds() - proxy_cpu
                    if variant.startswith("registry-scrub"):
                        sample.gets = len(reads)
                key = (server.name, workload_name, variant)
                results.samples[key].append(sample)
                results.server_cpu[key].append(measure.cpu_seconds(server.pid) - server_cpu)
                if args.verbose:
                    cpu = f", {sample.cpu:.2f} CPU-s" if sample.cpu is not None else ""
                    if sample.reads:
                        cpu += (
                            f"; reads {sample.reads.per_second:.0f}/s over {sample.reads.seconds:.2f} s, "
                            f"{sample.reads.mean_in_flight:.1f} in flight (peak {sample.reads.peak_in_flight}), "
                            f"proxy {sample.proxy_cpu:.2f} CPU-s"
                        )
                    print(f"    {server.name} {workload_name} {variant}: {sample.wall:.2f} s{cpu}", flush=True)
            print(f"  {server.name}: round {round_index + 1} of {args.rounds} in {time.perf_counter() - started:.0f} s")
    finally:
        if proxy:
            proxy.__exit__(None, None, None)
        server.stop()


# ---------------------------------------------------------------- report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio_median(numerators: list[Sample], denominators: list[Sample]) -> float | None:
    """Median over rounds of numerator wall / denominator wall, each pair from the same round;
    with fewer numerators (``--seed-loop-rounds``), the ratio of the medians."""
    if not numerators:
        return None
    if len(numerators) < len(denominators):
        return median(n.wall for n in numerators) / median(d.wall for d in denominators)
    return median([n.wall / d.wall for n, d in zip(numerators, denominators, strict=False)])


def report(results: Results, servers: list[str], workloads: list[Workload], args) -> None:
    for server in servers:
        print(f"\n== {server} ==")
        default_fixed = results.samples.get((server, ONE.name, "fixed cost (one-object scan)"), [])
        for variant in [v for (s, w, v) in results.samples if s == server and w == ONE.name]:
            samples = results.samples[(server, ONE.name, variant)]
            walls = ", ".join(f"{s.wall:.2f}" for s in samples)
            print(
                f"  {variant:<36} median {median(s.wall for s in samples):6.2f} s wall, "
                f"{median(s.cpu for s in samples):6.2f} CPU-s  (rounds: {walls})"
            )
            with_phases = [s.phases for s in samples if s.phases]
            for phase in with_phases[0] if with_phases else ():
                seconds = [p.get(phase, 0.0) for p in with_phases]
                print(f"      {phase:<56} median {median(seconds):5.2f} s  ({', '.join(f'{x:.2f}' for x in seconds)})")
        for w in workloads:
            seed = results.samples.get((server, w.name, "seed loop"), [])
            if not any(wname == w.name for (s, wname, _) in results.samples if s == server):
                continue
            print(f"\n  {w.title}  [{len(seed)} rounds; x = the seed loop's time / the variant's, per round]")
            print(
                f"    {'':<34} {'wall':>8} {'MB/s':>8} {'obj/s':>8} {'x seed':>7} "
                f"{'CPU-s/GB':>9} {'ms CPU/obj':>11} {'server CPU-s':>12}"
            )
            for (s, wname, variant), samples in results.samples.items():
                if s != server or wname != w.name:
                    continue
                wall = median(x.wall for x in samples)
                cpu = median(x.cpu for x in samples)
                server_cpu = median(results.server_cpu[(s, wname, variant)])
                print(
                    f"    {variant:<34} {wall:7.2f}s {w.total_bytes / 1e6 / wall:8.0f} {w.count / wall:8.0f} "
                    + (f"{ratio:6.2f}x " if (ratio := ratio_median(seed, samples)) is not None else "     - ")
                    + f"{cpu / (w.total_bytes / 1e9):9.2f} {cpu / w.count * 1000:11.2f} {server_cpu:12.2f}"
                )
                # A forced mode is compared with the fixed cost of the same mode.
                mode = next((m for m in ("in_memory", "multi_processing") if variant.endswith(m)), None)
                fixed = results.samples.get((server, ONE.name, f"fixed cost {mode}"), []) if mode else default_fixed
                if variant.startswith("registry-scrub") and len(fixed) == len(samples):
                    net_walls = [x.wall - f.wall for x, f in zip(samples, fixed, strict=True)]
                    net_cpus = [x.cpu - f.cpu for x, f in zip(samples, fixed, strict=True)]
                    net_wall, net_cpu = median(net_walls), median(net_cpus)
                    gets = median(x.gets for x in samples)
                    extra = f", {gets / w.count:.2f} GETs per object" if gets is not None else ""
                    rss = median(x.worker_rss_mib for x in samples)
                    print(
                        f"      net of the fixed cost: {net_wall:6.2f} s wall"
                        + (
                            f" ({w.total_bytes / 1e6 / net_wall:.0f} MB/s, {w.count / net_wall:.0f} obj/s)"
                            if net_wall > 0
                            else ""
                        )
                        + f", {net_cpu / (w.total_bytes / 1e9):.2f} CPU-s/GB, "
                        f"{net_cpu / w.count * 1000:.3f} ms CPU/obj; peak worker RSS {rss:.0f} MiB{extra}"
                    )
            if w.proxied:
                report_curve(results, server, w, default_fixed, args)


def report_curve(results: Results, server: str, w: Workload, fixed: list[Sample], args) -> None:
    """Throughput against the reads in flight, for the ceiling and the scanner alike."""
    print(
        f"\n    the curve through the proxy (+{args.latency_ms:g} ms per GET), medians: object GETs in flight at the "
        "proxy\n    (mean over the span from the first GET to the last answer, and peak), GETs per second over "
        "that span,\n    ms from a GET's arrival to its answer (reads/s = in flight / that), the variant's cores "
        "busy\n    (the scanner's net of its one-object scan), the proxy's own CPU per GET, and the machine's "
        "listen-queue drops"
    )
    print(
        f"    {'':<34} {'in flight':>9} {'peak':>5} {'reads/s':>8} {'ms/GET':>7} "
        f"{'whole obj/s':>11} {'cores busy':>10} {'proxy ms/GET':>12} {'listen drops':>12}"
    )
    for (s, wname, variant), samples in results.samples.items():
        if s != server or wname != w.name or variant == "seed loop":
            continue
        spans = [x.reads for x in samples if x.reads is not None]
        if not spans:
            continue
        mean_in_flight = median(r.mean_in_flight for r in spans)
        per_second = median(r.per_second for r in spans)
        ms_per_get = median(r.mean_in_flight / r.per_second * 1000 for r in spans if r.per_second)
        wall = median(x.wall for x in samples)
        if variant.startswith("registry-scrub") and len(fixed) == len(samples):
            # The scanner's cores busy after its start-up: CPU and wall net of the same round's one-object scan.
            busy = median([(x.cpu - f.cpu) / (x.wall - f.wall) for x, f in zip(samples, fixed, strict=True)])
        else:
            busy = median(x.cpu / x.wall for x in samples)
        proxy_ms = median(x.proxy_cpu / r.count * 1000 for x, r in zip(samples, spans, strict=False) if r.count)
        print(
            f"    {variant:<34} {mean_in_flight:9.1f} {median(r.peak_in_flight for r in spans):5.0f} "
            f"{per_second:8.0f} {ms_per_get:7.1f} {w.count / wall:11.0f} "
            f"{busy:10.2f} {proxy_ms:12.3f} {median(x.listen_drops for x in samples):12.0f}"
        )


def workloads_on(server: str, workloads: list[Workload], args) -> list[Workload]:
    """The latency proxy bounds its workload whatever the server behind it: by default it runs on one."""
    return [w for w in workloads if not w.proxied or server in args.latency_servers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small corpora, one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--workloads", default="large,small,latency", help="comma-separated: large, small, latency")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument(
        "--latency-servers",
        default="gcp-storage-emulator,fake-gcs-server",
        help="the servers the proxied workload runs on",
    )
    parser.add_argument(
        "--latency-concurrency", default="4,16,32,64,128,256", help="read_concurrency values through the proxy"
    )
    parser.add_argument(
        "--proxy-upstream",
        type=int,
        default=4,
        help="requests the latency proxy has at the server at once (0: no cap, a new connection each, as in the "
        "tests); gcp-storage-emulator's listen backlog of 5 drops connects beyond it",
    )
    parser.add_argument(
        "--seed-loop-rounds",
        type=int,
        help="run the seed loops (minutes each) in only the first N rounds; their ratios are then of medians",
    )
    parser.add_argument(
        "--latency-curl",
        default="8,32,128",
        help="curl processes for the proxied ceiling",
    )
    parser.add_argument("--compare-modes", action="store_true", help="also force in_memory and multi_processing")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every measurement as it is taken")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seed_loop_rounds = args.rounds if args.seed_loop_rounds is None else args.seed_loop_rounds
    args.latency_concurrency = [int(c) for c in args.latency_concurrency.split(",")]
    args.latency_curl = [int(c) for c in args.latency_curl.split(",")]
    chosen = set(args.workloads.split(","))
    workloads = [w for w in (quick_workloads if args.quick else full_workloads)(args.latency_ms) if w.name in chosen]
    servers = [name.strip() for name in args.servers.split(",")]

    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}; "
        f"{args.rounds} round(s); started {time.strftime('%H:%M:%S', time.gmtime())} UTC"
    )
    corpora = {w.name: corpus(w, seed=index) for index, w in enumerate([ONE, *workloads])}
    results = Results()
    with tempfile.TemporaryDirectory(prefix="registry-scrub-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for name in servers:
            server = SERVERS[name](scratch)
            started = time.perf_counter()
            for w in [ONE, *workloads]:
                server.seed(w.bucket, corpora[w.name])
            seconds = time.perf_counter() - started
            print(f"{name}: seeded {sum(w.count for w in workloads) + 1:,} objects in {seconds:.1f} s")
            run_server(server, workloads_on(name, workloads, args), corpora, args, scratch, results)
    report(results, servers, workloads, args)
    print(f"\nfinished {time.strftime('%H:%M:%S', time.gmtime())} UTC")


if __name__ == "__main__":
    main()
