#!/usr/bin/env python3
"""W1 of BENCHMARKS.md: "the first 50 users with id, email, names, role, active flag and
organisation { id name }", served by userhub and by PostGraphile 5 from the same PostgreSQL
tables, with pgbench running userhub's own statements as the ceiling.

    bench/w1.sh                     # the full run: 3 rounds x (32, 128 connections) x 30 s
    SMOKE=1 bench/w1.sh             # a few seconds a workload, nothing written (.ci/run)

Environment: BENCH_DATABASE_URL (a PostgreSQL server, default the local one), ROUNDS,
DURATION and WARMUP (seconds), CONNECTIONS ("32 128"), USERHUB_BIN, SMOKE, WRITE=0 (measure
without touching BENCHMARKS.md), HOT=0 (leave out the userhub with its response cache on), USERHUB_BASELINE_BIN and USERHUB_BASELINE_LABEL (another
build of userhub, say an earlier commit's, measured in the same run: before/after ratios;
USERHUB_BASELINE_CACHE=on runs it with its response cache on, USERHUB_BASELINE_DIRECT=false
with every query through async-graphql's executor: the same binary then measures the direct
path against the executor),
PERF=FILE (a `perf record` of userhub under the first 32-connection run).

It creates a fresh database with userhub's migrations (`userhub migrate`), seeds it from
bench/w1/seed.sql (100 organisations, 10,000 users), starts a Clerk emulator and userhub wired
to it (the caller is a real admin with a real session token), starts PostGraphile 5 (Node 22,
both from bench/peer/), then measures the two servers interleaved (A B A B) with wrk and
bench/w1/check.lua, which fails every response that is not 50 users without errors. The
statements userhub runs for one request are captured from PostgreSQL's own log and replayed by
pgbench. Results go between the w1 markers of BENCHMARKS.md.
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

import section
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SMOKE = os.environ.get("SMOKE") == "1"
ROUNDS = int(os.environ.get("ROUNDS", "1" if SMOKE else "3"))
DURATION = int(os.environ.get("DURATION", "3" if SMOKE else "30"))
WARMUP = int(os.environ.get("WARMUP", "1" if SMOKE else "5"))
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "32 128").split()]
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
USERHUB_BIN = Path(os.environ.get("USERHUB_BIN", ROOT / "target" / "release" / "userhub"))
# Another userhub binary (an earlier commit's) measured in the same run: before/after ratios.
BASELINE_BIN = os.environ.get("USERHUB_BASELINE_BIN")
# A file to write a `perf record` of userhub under the first 32-connection run to, and which
# userhub: `userhub` (cache off) or `userhub, cache on`.
PERF = os.environ.get("PERF")
PERF_SERVER = os.environ.get("PERF_SERVER", "userhub")
BASELINE_LABEL = os.environ.get("USERHUB_BASELINE_LABEL", "baseline")
WRITE = os.environ.get("WRITE", "0" if SMOKE else "1") == "1"
# W1 hot: also a userhub with its response cache on (the same page, asked again and again).
HOT = os.environ.get("HOT", "1") == "1"
NAME = f"userhub_bench_w1_{os.getpid()}"
DATABASE_URL = ADMIN_URL.rsplit("/", 1)[0] + "/" + NAME
# The servers talk to PostgreSQL as PostGraphile does (node-postgres asks for no TLS): sqlx's
# default, `prefer`, would encrypt the loopback connection, 5 % of userhub's CPU under W1.
SERVER_DATABASE_URL = DATABASE_URL + ("&" if "?" in DATABASE_URL else "?") + "sslmode=disable"
SECRET = f"sk_test_bench_w1_{os.getpid()}"
PAGE = 50

USERHUB_QUERY = (
    "query W1($first: Int!) { users(first: $first) { nodes { id email firstName lastName role "
    "isActive organisation { id name } } } }"
)
POSTGRAPHILE_QUERY = (
    "query W1($first: Int!) { users: allUsers(first: $first) { nodes { id email firstName "
    "lastName role isActive organisation: organisationByOrganisationId { id name } } } }"
)

children: list[subprocess.Popen] = []


def log(message: str) -> None:
    print(message, flush=True)


def psql(database_url: str, sql: str, *extra: str) -> str:
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, *extra, "-c", sql],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"psql failed: {sql}\n{result.stderr}")
    return result.stdout


def start(name: str, argv: list[str], env: dict[str, str], pattern: str, cwd: Path = ROOT):
    """Starts a server and waits until its output matches `pattern`; returns (process, match)."""
    logfile = open(f"/tmp/{NAME}_{name}.log", "w+")
    process = subprocess.Popen(
        argv, cwd=cwd, env={**os.environ, **env}, stdout=logfile, stderr=subprocess.STDOUT
    )
    children.append(process)
    deadline = time.time() + 120
    while time.time() < deadline:
        logfile.seek(0)
        match = re.search(pattern, logfile.read())
        if match:
            return process, match
        if process.poll() is not None:
            logfile.seek(0)
            sys.exit(f"{name} exited with {process.returncode}:\n{logfile.read()}")
        time.sleep(0.05)
    sys.exit(f"{name} did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def http(method: str, url: str, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def graphql(url: str, query: str, first: int, token: str | None):
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return http("POST", url, {"query": query, "variables": {"first": first}}, headers)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and its children (Node's CLI runs the server in a child)."""
    total = rss_kib(pid)
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for child_pid in child.read_text().split():
            total += tree_rss_kib(int(child_pid))
    return total


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def wrk(url: str, query: str, token: str | None, connections: int, seconds: int) -> dict:
    return run_wrk("check.lua", {
        "BODY": json.dumps({"query": query, "variables": {"first": PAGE}}),
        "AUTHORIZATION": f"Bearer {token}" if token else "",
        "EXPECT": str(PAGE),
    }, url, connections, seconds)


def log_run(round_number: int, connections: int, name: str, figures: dict) -> None:
    log(f"round {round_number}, {connections} connections, {name}: "
        f"{figures['rps']:,.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
        f"p99 {figures['p99_ms']:.2f} ms, {int(figures['failed'])} failed, "
        f"{int(figures['errors'])} socket/status errors")
    if figures["failed"] or figures["errors"]:
        log(f"  {figures.get('sample', '')}")


def run_wrk(script: str, env: dict[str, str], url: str, connections: int, seconds: int) -> dict:
    """wrk with bench/w1/`script` (which prints a W1RESULT line) and `env`; its figures."""
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(BENCH / "w1" / script), url],
        env={**os.environ, **env}, capture_output=True, text=True,
    )
    line = next((l for l in result.stdout.splitlines() if l.startswith("W1RESULT")), None)
    if line is None:
        sys.exit(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")
    figures = {k: float(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
    failure = next((l for l in result.stdout.splitlines() if l.startswith("W1FAILURE")), None)
    if failure:
        figures["sample"] = failure
    return figures


def capture_statements(token: str) -> list[str]:
    """The statements userhub runs for one W1 request, from PostgreSQL's log, values inlined."""
    body = {"query": USERHUB_QUERY, "variables": {"first": PAGE}}
    captured = capture_requests(token, [body])
    return captured[0] if captured else []


def capture_requests(token: str, bodies: list[dict]) -> list[list[str]]:
    """The statements userhub runs for each of these GraphQL requests when asked again (each
    is asked once first: the caller's row is read in, and the direct path plans what the
    executor answered), from PostgreSQL's log, values inlined; [] when the log is not found."""
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    logs = [line.split()[-1] for line in clusters.splitlines() if "online" in line]
    if not logs or not Path(logs[0]).exists():
        log("PostgreSQL's log file was not found: the statements are not captured")
        return []
    logfile = Path(logs[0])
    psql(ADMIN_URL, f"ALTER DATABASE {NAME} SET log_statement = 'all'")
    # Connections made from now on log their statements: a fresh server makes them.
    process, match = start_userhub("capture")
    capture_url = match.group(1)
    headers = {"accept": "application/json", "authorization": f"Bearer {token}"}
    for body in bodies:
        http("POST", f"{capture_url}/graphql", body, headers)
    time.sleep(0.5)
    captured = []
    for body in bodies:
        offset = logfile.stat().st_size
        http("POST", f"{capture_url}/graphql", body, headers)
        time.sleep(0.3)
        with logfile.open("rb") as handle:
            handle.seek(offset)
            captured.append(parse_statements(handle.read().decode(errors="replace")))
    stop(process)
    psql(ADMIN_URL, f"ALTER DATABASE {NAME} RESET log_statement")
    return captured


def parse_statements(text: str) -> list[str]:
    """The statements of this database in a stretch of PostgreSQL's log, values inlined."""
    statements, current = [], None
    for line in text.splitlines():
        header = re.match(r"^\S+ \S+ \S+ \[\d+\] (\S+)@(\S+) (LOG|DETAIL):\s+(.*)$", line)
        if header:
            if current is not None and header.group(3) == "LOG":
                statements.append(current)
                current = None
            if header.group(2) != NAME:
                continue
            if header.group(3) == "LOG":
                found = re.match(r"(?:execute \S+|statement): (.*)$", header.group(4))
                # The request's statements; not the pool's own (`UNLISTEN *` when a connection
                # goes back, transaction control).
                if found and found.group(1).lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")):
                    current = {"sql": found.group(1), "params": {}}
            elif current is not None and header.group(4).startswith("parameters:"):
                for name, value in re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", header.group(4)):
                    current["params"][int(name)] = value
        elif current is not None and line.startswith("\t"):
            current["sql"] += " " + line.strip()
    if current is not None:
        statements.append(current)
    inlined = []
    for statement in statements:
        sql = statement["sql"]
        for number in sorted(statement["params"], reverse=True):
            sql = sql.replace(f"${number}", statement["params"][number])
        inlined.append(sql)
    return inlined


def pgbench(statements: list[str] | list[list[str]], clients: int, seconds: int) -> float:
    """Transactions per second of pgbench running these statements (one script), or one of
    these lists of statements at random each time (several scripts)."""
    scripts = statements if statements and isinstance(statements[0], list) else [statements]
    arguments = []
    for number, script_statements in enumerate(scripts):
        script = Path(f"/tmp/{NAME}.{number}.pgbench")
        script.write_text("".join(f"{sql};\n" for sql in script_statements))
        arguments += ["-f", str(script)]
    result = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds),
         *arguments, DATABASE_URL],
        capture_output=True, text=True,
    )
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    if not found:
        sys.exit(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
    return float(found.group(1))


def start_userhub(label: str, binary: Path = USERHUB_BIN, cache: str = "off", direct: str = "true"):
    """A userhub server; its response cache `off` unless asked (the uncached path is the
    comparison with PostGraphile, which computes every answer; `on` is W1 hot); `direct`
    false sends every query through async-graphql's executor (USERHUB_DIRECT_READS)."""
    return start(
        f"userhub_{label}",
        [str(binary), "serve"],
        {
            "DATABASE_URL": SERVER_DATABASE_URL,
            "USERHUB_LISTEN": "127.0.0.1:0",
            "CLERK_SECRET_KEY": SECRET,
            "CLERK_API_URL": EMULATOR_API,
            "RUST_LOG": "warn,userhub::cli=info",
            # One load generator is one client: the per-client limit would measure itself.
            "USERHUB_RATE_LIMIT_PER_MINUTE": "0",
            "USERHUB_CACHE": cache,
            "USERHUB_DIRECT_READS": direct,
        },
        r"userhub listening on (http://127\.0\.0\.1:\d+)",
    )


def cold_start(database_url: str) -> float:
    """Milliseconds from exec to the first 200 of /readyz (migrations already applied)."""
    begun = time.monotonic()
    process = subprocess.Popen(
        [str(USERHUB_BIN), "serve"],
        env={**os.environ, "DATABASE_URL": database_url, "USERHUB_LISTEN": "127.0.0.1:18597",
             "CLERK_SECRET_KEY": SECRET, "CLERK_API_URL": EMULATOR_API, "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:18597/readyz", timeout=1) as r:
                    if r.status == 200:
                        return (time.monotonic() - begun) * 1000
            except OSError:
                time.sleep(0.002)
            if process.poll() is not None or time.monotonic() - begun > 30:
                sys.exit("the cold-start server did not become ready")
    finally:
        stop(process)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main() -> None:
    global EMULATOR_API
    for tool in ["wrk", "psql", "pgbench"]:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (bench/w1.sh installs it)")
    node = BENCH / "peer" / "node_modules" / ".bin" / "node"
    postgraphile = BENCH / "peer" / "node_modules" / "postgraphile" / "dist" / "cli-run.js"

    psql(ADMIN_URL, f"CREATE DATABASE {NAME}")
    try:
        subprocess.run([str(USERHUB_BIN), "migrate"], env={**os.environ, "DATABASE_URL": DATABASE_URL,
                       "RUST_LOG": "warn"}, check=True)
        psql(DATABASE_URL, "", "-f", str(BENCH / "w1" / "seed.sql"))
        emulator, match = start(
            "emulator",
            [str(USERHUB_BIN), "clerk-emulator", "--emulator-listen", "127.0.0.1:0"],
            {"CLERK_SECRET_KEY": SECRET},
            r"Clerk emulator on (http://127\.0\.0\.1:\d+/v1)",
        )
        EMULATOR_API = match.group(1)
        emulator_root = EMULATOR_API.removesuffix("/v1")
        auth = {"authorization": f"Bearer {SECRET}"}
        admin = http("POST", f"{EMULATOR_API}/users", {
            "email_address": ["bench.admin@userhub.test"],
            "public_metadata": {"role": "admin"},
        }, auth)
        token = http("POST", f"{emulator_root}/__emulator/session_tokens",
                     {"user_id": admin["id"], "ttl_seconds": 7200}, auth)["jwt"]

        statements = [] if SMOKE else capture_statements_safely(token)

        userhub, match = start_userhub("w1")
        userhub_url = match.group(1)
        graphile, match = start(
            "postgraphile",
            [str(node), str(postgraphile), "-P", "postgraphile/presets/amber", "-c", DATABASE_URL,
             "-s", "public", "--host", "127.0.0.1", "--port", "18598"],
            {"NODE_ENV": "production"},
            r"(http://(?:127\.0\.0\.1|localhost):18598)",
            cwd=BENCH / "peer",
        )
        graphile_url = "http://127.0.0.1:18598"

        # Both answer the same 50 users before anything is measured.
        ours = graphql(f"{userhub_url}/graphql", USERHUB_QUERY, PAGE, token)
        theirs = graphql(f"{graphile_url}/graphql", POSTGRAPHILE_QUERY, PAGE, None)
        for name, answer in [("userhub", ours), ("PostGraphile", theirs)]:
            nodes = (answer.get("data") or {}).get("users", {}).get("nodes") or []
            if answer.get("errors") or len(nodes) != PAGE or not all(n["organisation"] for n in nodes):
                sys.exit(f"{name} did not answer 50 users with organisations: {json.dumps(answer)[:500]}")
        log(f"both servers answer {PAGE} users with their organisations")

        # Statements per request, at three page sizes.
        per_request = {}
        for first in [10, 50, 100]:
            before = metric(userhub_url, "userhub_db_statements_total")
            for _ in range(10):
                graphql(f"{userhub_url}/graphql", USERHUB_QUERY, first, token)
            per_request[first] = (metric(userhub_url, "userhub_db_statements_total") - before) / 10
        log(f"userhub SQL statements per request by page size: {per_request}")

        idle = {"userhub": rss_kib(userhub.pid), "PostGraphile": tree_rss_kib(graphile.pid)}
        targets = {
            "userhub": (f"{userhub_url}/graphql", USERHUB_QUERY, token),
            "PostGraphile": (f"{graphile_url}/graphql", POSTGRAPHILE_QUERY, None),
        }
        pids = {"userhub": userhub.pid}
        if HOT:
            hot, match = start_userhub("hot", cache="on")
            pids["userhub, cache on"] = hot.pid
            targets["userhub, cache on"] = (f"{match.group(1)}/graphql", USERHUB_QUERY, token)
        if BASELINE_BIN:
            baseline, match = start_userhub("baseline", Path(BASELINE_BIN),
                                            cache=os.environ.get("USERHUB_BASELINE_CACHE", "off"),
                                            direct=os.environ.get("USERHUB_BASELINE_DIRECT", "true"))
            pids["userhub before"] = baseline.pid
            targets["userhub before"] = (f"{match.group(1)}/graphql", USERHUB_QUERY, token)
        results: dict[tuple[str, int], list[dict]] = {}
        peak_graphile = idle["PostGraphile"]
        for round_number in range(1, ROUNDS + 1):
            for connections in CONNECTIONS:
                for name, (url, query, bearer) in targets.items():
                    wrk(url, query, bearer, connections, WARMUP)
                    profiler = None
                    if PERF and name == PERF_SERVER and round_number == 1 and connections == CONNECTIONS[0]:
                        # A profile of the server under this load, for BENCHMARKS.md's "what bounds it".
                        profiler = subprocess.Popen(
                            ["perf", "record", "-F", "999", "-g", "-p", str(pids[name]), "-o", PERF,
                             "--", "sleep", str(DURATION)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    figures = wrk(url, query, bearer, connections, DURATION)
                    if profiler:
                        profiler.wait()
                    if name == "PostGraphile":
                        peak_graphile = max(peak_graphile, tree_rss_kib(graphile.pid))
                    results.setdefault((name, connections), []).append(figures)
                    log_run(round_number, connections, name, figures)
        peak = {"userhub": rss_kib(userhub.pid, "VmHWM"), "PostGraphile": peak_graphile}
        stop(userhub)
        stop(graphile)

        ceiling = {}
        if statements:
            for clients in [16, 32]:
                ceiling[clients] = [pgbench(statements, clients, DURATION) for _ in range(ROUNDS)]
                log(f"pgbench, userhub's {len(statements)} statements, {clients} clients: "
                    f"{ceiling[clients]} tps")

        starts = {
            "PostgreSQL": [cold_start(DATABASE_URL) for _ in range(5)],
            "SQLite": [],
        }
        sqlite = Path(f"/tmp/{NAME}.db")
        subprocess.run([str(USERHUB_BIN), "migrate"], check=True, env={**os.environ,
                       "DATABASE_URL": f"sqlite://{sqlite}?mode=rwc", "RUST_LOG": "warn"})
        starts["SQLite"] = [cold_start(f"sqlite://{sqlite}?mode=rwc") for _ in range(5)]
        sqlite.unlink(missing_ok=True)
        log(f"cold start to /readyz, ms: {starts}")

        failures = sum(f["failed"] + f["errors"] for runs in results.values() for f in runs)
        if failures:
            sys.exit(f"FAIL: {int(failures)} failed responses")
        if BASELINE_BIN:
            for connections in CONNECTIONS:
                after = statistics.median(r["rps"] for r in results[("userhub", connections)])
                before = statistics.median(r["rps"] for r in results[("userhub before", connections)])
                log(f"userhub after/before at {connections} connections: {after / before:.2f}×")
        if not WRITE:
            log("every response was checked; nothing written")
            return
        write_report(results, per_request, idle, peak, statements, ceiling, starts)
    finally:
        for process in children:
            stop(process)
        psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")


def capture_statements_safely(token: str) -> list[str]:
    try:
        return capture_statements(token)
    finally:
        psql(ADMIN_URL, f"ALTER DATABASE {NAME} RESET log_statement")


def version(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]


def write_report(results, per_request, idle, peak, statements, ceiling, starts) -> None:
    machine = (
        f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
        f"{os.uname().sysname} {os.uname().release}"
    )
    graphile_version = json.loads((BENCH / "peer" / "node_modules" / "postgraphile" / "package.json").read_text())["version"]
    node_version = version([str(BENCH / "peer" / "node_modules" / ".bin" / "node"), "--version"])
    postgres_version = psql(ADMIN_URL, "SHOW server_version", "-tA").strip()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on {machine}; userhub release build; "
        f"PostGraphile {graphile_version} (amber preset) on Node {node_version}; PostgreSQL "
        f"{postgres_version}; {version(['wrk', '--version']).split(' [')[0]}, 2 threads; "
        f"{ROUNDS} rounds, interleaved, {DURATION} s each after {WARMUP} s of warm-up. Figures are "
        "medians (min–max) over the rounds; every response was checked (50 users, no `errors`).",
        "",
        "| server | connections | req/s | p50 ms | p99 ms | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    order = {"userhub": 0, "userhub, cache on": 1}
    for (name, connections), runs in sorted(results.items(), key=lambda item: (item[0][1], order.get(item[0][0], 2), item[0][0])):
        lines.append(
            f"| {name} | {connections} | {spread([r['rps'] for r in runs])} | "
            f"{statistics.median(r['p50_ms'] for r in runs):.2f} | "
            f"{spread([r['p99_ms'] for r in runs]).replace(',', '')} | "
            f"{int(sum(r['failed'] + r['errors'] for r in runs))} |"
        )
    best_ceiling = max((statistics.median(v) for v in ceiling.values()), default=None)
    lines += ["", "| ratio | " + " | ".join(f"{c} connections" for c in CONNECTIONS) + " |",
              "| --- | " + " | ".join("---" for _ in CONNECTIONS) + " |"]
    ours = {c: statistics.median(r["rps"] for r in results[("userhub", c)]) for c in CONNECTIONS}
    theirs = {c: statistics.median(r["rps"] for r in results[("PostGraphile", c)]) for c in CONNECTIONS}
    p99_ours = {c: statistics.median(r["p99_ms"] for r in results[("userhub", c)]) for c in CONNECTIONS}
    p99_theirs = {c: statistics.median(r["p99_ms"] for r in results[("PostGraphile", c)]) for c in CONNECTIONS}
    lines.append("| userhub / PostGraphile, req/s | " + " | ".join(f"{ours[c] / theirs[c]:.2f}×" for c in CONNECTIONS) + " |")
    lines.append("| userhub / PostGraphile, p99 | " + " | ".join(f"{p99_ours[c] / p99_theirs[c]:.2f}" for c in CONNECTIONS) + " |")
    if ("userhub, cache on", CONNECTIONS[0]) in results:
        hot = {c: statistics.median(r["rps"] for r in results[("userhub, cache on", c)]) for c in CONNECTIONS}
        p99_hot = {c: statistics.median(r["p99_ms"] for r in results[("userhub, cache on", c)]) for c in CONNECTIONS}
        lines.append("| userhub cache on / PostGraphile, req/s | " + " | ".join(f"{hot[c] / theirs[c]:.2f}×" for c in CONNECTIONS) + " |")
        lines.append("| userhub cache on / PostGraphile, p99 | " + " | ".join(f"{p99_hot[c] / p99_theirs[c]:.2f}" for c in CONNECTIONS) + " |")
    if ("userhub before", CONNECTIONS[0]) in results:
        before = {c: statistics.median(r["rps"] for r in results[("userhub before", c)]) for c in CONNECTIONS}
        lines.append(f"| userhub / userhub before ({BASELINE_LABEL}), req/s | " + " | ".join(f"{ours[c] / before[c]:.2f}×" for c in CONNECTIONS) + " |")
    if best_ceiling:
        lines.append("| userhub / pgbench ceiling | " + " | ".join(f"{ours[c] / best_ceiling:.0%}" for c in CONNECTIONS) + " |")
    lines += [
        "",
        f"SQL statements per userhub request: {', '.join(f'{v:g} at first: {k}' for k, v in per_request.items())}.",
    ]
    if ceiling:
        lines.append(
            "pgbench ceiling (userhub's statements, captured from PostgreSQL's log, `-M prepared`): "
            + ", ".join(f"{spread(v)} tps at {c} clients" for c, v in ceiling.items()) + "."
        )
    lines += [
        "",
        "| memory and start | userhub | PostGraphile |",
        "| --- | --- | --- |",
        f"| idle RSS | {idle['userhub'] / 1024:.1f} MiB | {idle['PostGraphile'] / 1024:.1f} MiB |",
        f"| peak RSS under W1 | {peak['userhub'] / 1024:.1f} MiB | {peak['PostGraphile'] / 1024:.1f} MiB (sampled) |",
        f"| cold start to `/readyz`, PostgreSQL | {spread(starts['PostgreSQL'])} ms | |",
        f"| cold start to `/readyz`, SQLite | {spread(starts['SQLite'])} ms | |",
    ]
    if statements:
        lines += ["", "<details><summary>The statements userhub ran for one request</summary>", "", "```sql"]
        lines += [s if len(s) < 600 else s[:600] + " …" for s in statements]
        lines += ["```", "", "</details>"]
    block = "\n".join(lines)
    print(block)
    section.write("w1", "W1: a page of users, side by side with PostGraphile (`bench/w1.sh`)", block)
    log("BENCHMARKS.md updated")


EMULATOR_API = ""

if __name__ == "__main__":
    main()
