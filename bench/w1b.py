#!/usr/bin/env python3
"""W1b of BENCHMARKS.md: W1's directory read in many ways at once. Every request is a different
page of users (page size, role, organisation, active flag and order) from a seeded list of
COMBINATIONS (1,000 by default), and one user changes every second (a signed `user.updated`
webhook), which makes every kept answer about users stale: the response cache has to earn its
hits between writes. Served by userhub (its response cache on, as deployed; and off) and by
PostGraphile 5 from the same tables, with pgbench running the statements userhub ran for a
sample of the combinations as the ceiling.

    bench/w1.sh                     # runs W1, then this (VARIED=0 leaves it out)
    SMOKE=1 bench/w1.sh             # a few seconds a workload, nothing written

Environment: as bench/w1.py (ROUNDS, DURATION, WARMUP, CONNECTIONS, USERHUB_BIN, SMOKE, WRITE),
and COMBINATIONS, SEED (the list's seed, 1812), WRITES_PER_SECOND (1).

Both servers are asked a sample of the combinations before anything is measured and must
answer the same users in the same order. Results go between the w1b markers of BENCHMARKS.md.
"""

import base64
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

import section
import w1
from w1 import log, psql, spread

COMBINATIONS = int(os.environ.get("COMBINATIONS", "1000"))
SEED = int(os.environ.get("SEED", "1812"))
WRITES_PER_SECOND = float(os.environ.get("WRITES_PER_SECOND", "1"))
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"userhub bench w1b webhook key!!!").decode()

FIELDS = "id email firstName lastName role isActive organisation { id name }"
USERHUB_QUERY = (
    "query W1b($first: Int!, $filter: UsersFilter, $orderBy: UserOrderBy!) { "
    f"users(first: $first, filter: $filter, orderBy: $orderBy) {{ nodes {{ {FIELDS} }} }} }}"
)
POSTGRAPHILE_QUERY = (
    "query W1b($first: Int!, $condition: UserCondition, $orderBy: [UserOrderBy!]) { "
    "users: allUsers(first: $first, condition: $condition, orderBy: $orderBy) { nodes { id email "
    "firstName lastName role isActive organisation: organisationByOrganisationId { id name } } } }"
)
ROLES = [None, "MEMBER", "LECTURER", "ORG_ADMIN"]
ORDERS = ["EMAIL_ASC", "EMAIL_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC"]
PAGE_SIZES = [10, 20, 50, 100]


def combinations(organisations: list[str]) -> list[dict]:
    """COMBINATIONS distinct (page size, role, organisation, active, order), seeded."""
    rng = random.Random(SEED)
    chosen, seen = [], set()
    while len(chosen) < COMBINATIONS:
        combination = (
            rng.choice(PAGE_SIZES),
            rng.choice(ROLES),
            rng.choice([None] * 10 + organisations),
            rng.choice([None, True]),
            rng.choice(ORDERS),
        )
        if combination not in seen:
            seen.add(combination)
            chosen.append(dict(zip(["first", "role", "organisation", "active", "order"], combination)))
    return chosen


def userhub_body(combination: dict) -> dict:
    filter_ = {}
    if combination["role"]:
        filter_["role"] = combination["role"]
    if combination["organisation"]:
        filter_["organisationId"] = combination["organisation"]
    if combination["active"] is not None:
        filter_["isActive"] = combination["active"]
    return {"query": USERHUB_QUERY, "variables": {
        "first": combination["first"], "filter": filter_ or None, "orderBy": combination["order"]}}


def postgraphile_body(combination: dict) -> dict:
    condition = {}
    if combination["role"]:
        condition["role"] = combination["role"].lower()
    if combination["organisation"]:
        condition["organisationId"] = combination["organisation"]
    if combination["active"] is not None:
        condition["isActive"] = combination["active"]
    # userhub orders by the column, then the id; creation order is id order (ids are UUIDv7
    # when userhub makes them). PostGraphile is asked for the same.
    order = combination["order"]
    direction = "ASC" if order.endswith("ASC") else "DESC"
    order_by = [f"PRIMARY_KEY_{direction}"]
    if order.startswith("EMAIL"):
        order_by.insert(0, order)
    return {"query": POSTGRAPHILE_QUERY, "variables": {
        "first": combination["first"], "condition": condition or None, "orderBy": order_by}}


def post(url: str, body: dict, token: str | None):
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return w1.http("POST", url, body, headers)


def signed(body: bytes, svix_id: str) -> dict:
    timestamp = str(int(time.time()))
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    signature = base64.b64encode(
        hmac.new(key, f"{svix_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    return {"svix-id": svix_id, "svix-timestamp": timestamp, "svix-signature": f"v1,{signature}",
            "content-type": "application/json"}


class Writer(threading.Thread):
    """One user changed every 1/WRITES_PER_SECOND s, by a signed `user.updated` webhook."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stopping = threading.Event()
        self.sent = 0
        self.failed = 0

    def run(self) -> None:
        rng = random.Random(SEED + 1)
        while not self.stopping.wait(1 / WRITES_PER_SECOND):
            n = rng.randint(1, 10000)
            self.sent += 1
            user = {
                "id": f"user_bench{n:06d}", "object": "user",
                "email_addresses": [{"id": f"idn_{n}", "email_address": f"user{n:05d}@bench.userhub.test"}],
                "primary_email_address_id": f"idn_{n}",
                "first_name": f"First{n} w{self.sent}", "last_name": f"Last{n}",
                # The seed's role and organisation (bench/w1/seed.sql): only the name changes.
                "public_metadata": {"role": ["member", "lecturer", "lecturer", "org_admin"][n % 4],
                                    "organisationId": seeded_organisation(1 + n % 100)},
                "banned": False, "created_at": 1767225600000,
                "updated_at": int(time.time() * 1000),
            }
            body = json.dumps({"type": "user.updated", "object": "event", "data": user}).encode()
            request = urllib.request.Request(self.url, data=body, method="POST",
                                             headers=signed(body, f"msg_w1b_{os.getpid()}_{self.sent}"))
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if response.status != 200:
                        self.failed += 1
            except OSError:
                self.failed += 1


def seeded_organisation(number: int) -> str:
    """The id bench/w1/seed.sql gives organisation `number`: md5('bench-organisation-N')::uuid."""
    digest = hashlib.md5(f"bench-organisation-{number}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def wrk(url: str, bodies: Path, token: str | None, connections: int, seconds: int) -> dict:
    return w1.run_wrk("check.lua", {
        "BODIES": str(bodies),
        "AUTHORIZATION": f"Bearer {token}" if token else "",
    }, url, connections, seconds)


def main() -> None:
    node = w1.BENCH / "peer" / "node_modules" / ".bin" / "node"
    postgraphile = w1.BENCH / "peer" / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    os.environ["CLERK_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    psql(w1.ADMIN_URL, f"CREATE DATABASE {w1.NAME}")
    try:
        w1.subprocess.run([str(w1.USERHUB_BIN), "migrate"], env={**os.environ, "DATABASE_URL": w1.DATABASE_URL,
                          "RUST_LOG": "warn"}, check=True)
        psql(w1.DATABASE_URL, "", "-f", str(w1.BENCH / "w1" / "seed.sql"))
        organisations = psql(w1.DATABASE_URL, "SELECT id FROM organisations ORDER BY id", "-tA").split()
        chosen = combinations(organisations)
        emulator, match = w1.start(
            "emulator",
            [str(w1.USERHUB_BIN), "clerk-emulator", "--emulator-listen", "127.0.0.1:0"],
            {"CLERK_SECRET_KEY": w1.SECRET},
            r"Clerk emulator on (http://127\.0\.0\.1:\d+/v1)",
        )
        w1.EMULATOR_API = match.group(1)
        auth = {"authorization": f"Bearer {w1.SECRET}"}
        admin = w1.http("POST", f"{w1.EMULATOR_API}/users", {
            "email_address": ["bench.admin@userhub.test"], "public_metadata": {"role": "admin"},
        }, auth)
        token = w1.http("POST", f"{w1.EMULATOR_API.removesuffix('/v1')}/__emulator/session_tokens",
                        {"user_id": admin["id"], "ttl_seconds": 7200}, auth)["jwt"]

        sample = random.Random(SEED + 2).sample(chosen, min(40, len(chosen)))
        captured = [] if w1.SMOKE else [s for s in w1.capture_requests(token, [userhub_body(c) for c in sample]) if s]

        cached, match = w1.start_userhub("w1b", cache="on")
        targets = {"userhub, cache on": f"{match.group(1)}/graphql"}
        uncached, match = w1.start_userhub("w1b_off", cache="off")
        targets["userhub, cache off"] = f"{match.group(1)}/graphql"
        webhook_url = targets["userhub, cache on"].removesuffix("/graphql") + "/api/webhooks/clerk"
        graphile, match = w1.start(
            "postgraphile",
            [str(node), str(postgraphile), "-P", "postgraphile/presets/amber", "-c", w1.DATABASE_URL,
             "-s", "public", "--host", "127.0.0.1", "--port", "18598"],
            {"NODE_ENV": "production"},
            r"(http://(?:127\.0\.0\.1|localhost):18598)",
            cwd=w1.BENCH / "peer",
        )
        targets["PostGraphile"] = "http://127.0.0.1:18598/graphql"

        # The same users in the same order from both, for a sample of the combinations.
        for combination in sample[:20]:
            ours = post(targets["userhub, cache off"], userhub_body(combination), token)
            theirs = post(targets["PostGraphile"], postgraphile_body(combination), None)
            if ours.get("errors") or theirs.get("errors"):
                sys.exit(f"an error for {combination}: {json.dumps(ours)[:300]} {json.dumps(theirs)[:300]}")
            emails = [[n["email"] for n in answer["data"]["users"]["nodes"]] for answer in (ours, theirs)]
            if emails[0] != emails[1]:
                sys.exit(f"userhub and PostGraphile disagree on {combination}: {emails}")
        log(f"both servers answer the same users for {len(sample[:20])} of the {len(chosen)} combinations")

        files = {}
        for name, make in [("userhub", userhub_body), ("PostGraphile", postgraphile_body)]:
            files[name] = Path(f"/tmp/{w1.NAME}_{name}.bodies")
            files[name].write_text("".join(json.dumps(make(c)) + "\n" for c in chosen))

        writer = Writer(webhook_url)
        writer.start()
        results: dict[tuple[str, int], list[dict]] = {}
        hits_before = w1.metric(targets["userhub, cache on"].removesuffix("/graphql"), "userhub_response_cache_hits_total")
        misses_before = w1.metric(targets["userhub, cache on"].removesuffix("/graphql"), "userhub_response_cache_misses_total")
        for round_number in range(1, w1.ROUNDS + 1):
            for connections in w1.CONNECTIONS:
                for name, url in targets.items():
                    bodies = files["PostGraphile" if name == "PostGraphile" else "userhub"]
                    bearer = None if name == "PostGraphile" else token
                    wrk(url, bodies, bearer, connections, w1.WARMUP)
                    figures = wrk(url, bodies, bearer, connections, w1.DURATION)
                    results.setdefault((name, connections), []).append(figures)
                    w1.log_run(round_number, connections, name, figures)
        writer.stopping.set()
        writer.join()
        base = targets["userhub, cache on"].removesuffix("/graphql")
        hits = w1.metric(base, "userhub_response_cache_hits_total") - hits_before
        misses = w1.metric(base, "userhub_response_cache_misses_total") - misses_before
        log(f"writes: {writer.sent} sent, {writer.failed} failed; cache: {hits:,.0f} hits, {misses:,.0f} misses")
        for process in (cached, uncached, graphile):
            w1.stop(process)

        ceiling = {}
        if captured:
            for clients in [16, 32]:
                ceiling[clients] = [w1.pgbench(captured, clients, w1.DURATION) for _ in range(w1.ROUNDS)]
                log(f"pgbench, userhub's statements for {len(captured)} combinations, {clients} clients: "
                    f"{ceiling[clients]} tps")

        failures = sum(f["failed"] + f["errors"] for runs in results.values() for f in runs) + writer.failed
        if failures:
            sys.exit(f"FAIL: {int(failures)} failed responses or writes")
        if not w1.WRITE:
            log("every response was checked; nothing written")
            return
        write_report(results, ceiling, captured, writer, hits, misses, len(chosen))
    finally:
        for process in w1.children:
            w1.stop(process)
        psql(w1.ADMIN_URL, f"DROP DATABASE IF EXISTS {w1.NAME} WITH (FORCE)")


def write_report(results, ceiling, captured, writer, hits, misses, combinations_count) -> None:
    machine = (
        f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
        f"{os.uname().sysname} {os.uname().release}"
    )
    connections = w1.CONNECTIONS
    lines = [
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on {machine}; the servers, database "
        f"and wrk as W1's above; {w1.ROUNDS} rounds, interleaved, {w1.DURATION} s each after "
        f"{w1.WARMUP} s of warm-up; {combinations_count} combinations (seed {SEED}); "
        f"{WRITES_PER_SECOND:g} write a second throughout ({writer.sent} in all). Figures are medians "
        "(min–max) over the rounds; every response was checked (200, no `errors`, a page of users).",
        "",
        "| server | connections | req/s | p50 ms | p99 ms | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    order = {"userhub, cache on": 0, "userhub, cache off": 1}
    for (name, conns), runs in sorted(results.items(), key=lambda item: (item[0][1], order.get(item[0][0], 2))):
        lines.append(
            f"| {name} | {conns} | {spread([r['rps'] for r in runs])} | "
            f"{statistics.median(r['p50_ms'] for r in runs):.2f} | "
            f"{spread([r['p99_ms'] for r in runs]).replace(',', '')} | "
            f"{int(sum(r['failed'] + r['errors'] for r in runs))} |"
        )
    rps = {key: statistics.median(r["rps"] for r in runs) for key, runs in results.items()}
    lines += ["", "| ratio | " + " | ".join(f"{c} connections" for c in connections) + " |",
              "| --- | " + " | ".join("---" for _ in connections) + " |"]
    for name in ["userhub, cache on", "userhub, cache off"]:
        lines.append(f"| {name} / PostGraphile, req/s | "
                     + " | ".join(f"{rps[(name, c)] / rps[('PostGraphile', c)]:.2f}×" for c in connections) + " |")
    best_ceiling = max((statistics.median(v) for v in ceiling.values()), default=None)
    if best_ceiling:
        for name in ["userhub, cache on", "userhub, cache off"]:
            lines.append(f"| {name} / pgbench ceiling | "
                         + " | ".join(f"{rps[(name, c)] / best_ceiling:.0%}" for c in connections) + " |")
    lines += ["", f"The cache with one write a second: {hits:,.0f} hits and {misses:,.0f} misses "
              f"({hits / max(hits + misses, 1):.0%} hits) over the run."]
    if ceiling:
        statements = statistics.mean(len(s) for s in captured)
        lines.append(
            f"pgbench ceiling (the statements userhub ran for {len(captured)} of the combinations, "
            f"{statements:.1f} a request, captured from PostgreSQL's log, one combination at random "
            "a transaction, `-M prepared`): "
            + ", ".join(f"{spread(v)} tps at {c} clients" for c, v in ceiling.items()) + "."
        )
    block = "\n".join(lines)
    print(block)
    section.write("w1b", "W1b: many different pages while users change (`bench/w1.sh`)", block)
    log("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
