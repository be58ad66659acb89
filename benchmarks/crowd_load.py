"""The crowd path under load: simulated crowd workers against the deployed web stack.

    python benchmarks/crowd_load.py [--sizes 50,200,500] [--seconds 60] [--think-workers 500]

Starts the platform as `docker/entrypoint.sh web` does (DEBUG=0) on a throw-away PostgreSQL
database (`--database`, dropped and created again: never point it at a real one), loads
`--items` prompts with two models' answers (real AlpacaEval texts from ../shared/fixtures,
cycled) and makes, for each loop below, a fresh round of `--items` comparisons with
`--annotators` per item (a loop at 400 answers/s for 60 s would otherwise leave the next one a
nearly full round); the database is vacuumed before each loop, as autovacuum would on a server
where it is on. Then it runs:

- closed loops of N workers for each N in `--sizes`: each worker is its own browser session
  (cookies, CSRF) and sends exactly what the crowd page sends, the htmx answer POST, with no
  think time; after every worker holds its first item, `--seconds` are measured;
- an open loop of `--think-workers` workers who each wait an exponential think time
  (mean `--think-mean` seconds) between answers;
- the bare view (`/healthz`) in a closed loop of the largest N, the baseline of the ratio.

It prints annotations/s, answer latency, CPU per annotation in the web processes, in the
PostgreSQL server (all its processes: run it on a quiet machine) and in this process (the
simulated workers, which share the machine), transactions and statements per answer, the
ratio to the bare view, and the database's invariants: no item annotated twice by one worker,
no item over-filled, as many stored annotations as answers the server acknowledged.
"""

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT.parent / "shared" / "fixtures" / "alpaca_eval"
TOKEN = re.compile(r'name="assignment" value="([^"]+)"')

try:
    import aiohttp
    import psutil
    import yarl
except ImportError:  # pragma: no cover - the dev extra has both
    sys.exit("This benchmark needs the dev extra (aiohttp, psutil): pip install -e '.[dev]'")


def server_environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        # The entrypoint runs `python` and `gunicorn` from PATH: this interpreter's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9"),
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # Plain HTTP on loopback: the trial mode of docs/deploy.md.
        "PLAIN_HTTP": "1",
        "CROWD_RATE_LIMITS": "0",
    }


def database_reset(database_url: str) -> None:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def texts_build(database_url: str, items: int) -> None:
    """Migrate the database and load the prompts and both models' answers, rendered as an
    operator would for rounds this large (docs: `render_texts`)."""
    os.environ.update(server_environment(database_url))
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalplatform.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import LanguageModel, Project, Prompt, PromptSet, Response

    call_command("migrate", verbosity=0)
    candidate_rows = json.loads(
        (FIXTURES / "mistral-7b-instruct-v0.2.model_outputs.json").read_text()
    )
    baseline_rows = json.loads((FIXTURES / "gpt4-1106-preview.model_outputs.json").read_text())
    baseline_by_instruction = {row["instruction"]: row["output"] for row in baseline_rows}
    pairs = [
        (row["instruction"], row["output"], baseline_by_instruction[row["instruction"]])
        for row in candidate_rows
        if row["instruction"] in baseline_by_instruction
    ]

    project = Project.objects.create(name="crowd-load")
    prompt_set = PromptSet.objects.create(project=project, name="alpaca-eval cycled")
    candidate = LanguageModel.objects.create(project=project, name="Mistral-7B-Instruct-v0.2")
    baseline = LanguageModel.objects.create(project=project, name="gpt4-1106-preview")
    chosen = [pairs[index % len(pairs)] for index in range(items)]
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(
                prompt_set=prompt_set,
                external_id=str(index),
                position=index,
                text=prompt,
            )
            for index, (prompt, _, _) in enumerate(chosen)
        ],
        batch_size=5000,
    )
    Response.objects.bulk_create(
        [
            Response(
                prompt=prompt,
                model=model,
                text=text,
            )
            for prompt, (_, candidate_text, baseline_text) in zip(prompts, chosen, strict=True)
            for model, text in ((candidate, candidate_text), (baseline, baseline_text))
        ],
        batch_size=5000,
    )
    # Rendered through a first round: the rendering is stored on the prompts and responses,
    # which every round of the run shares.
    first = round_build(0, annotators=1)
    started = time.perf_counter()
    call_command("render_texts", str(first.pk), stdout=io.StringIO())
    print(f"render_texts: {time.perf_counter() - started:.1f} s for the texts")
    first.delete()
    connection.close()


def round_build(index: int, annotators: int):
    """A fresh round over every prompt: each loop starts from the same state, as the issue
    sets it (a round of `--items` comparisons with `--annotators` each), not from what the
    loop before left open."""
    from annotation.models import LanguageModel, Project, PromptSet
    from annotation.services.rounds import round_create

    project = Project.objects.get(name="crowd-load")
    return round_create(
        name=f"crowd load {index}",
        project=project,
        prompt_set=PromptSet.objects.get(project=project),
        candidate=LanguageModel.objects.get(project=project, name="Mistral-7B-Instruct-v0.2"),
        baselines=[LanguageModel.objects.get(project=project, name="gpt4-1106-preview")],
        annotators_per_item=annotators,
        shared_items=0,
        items_per_worker=1000,
        lease_seconds=3600,
        seed=1 + index,
    )


def database_vacuum(database_url: str) -> None:
    """What autovacuum does on a server where it is on (PostgreSQL's default): without it, the
    item rows every claim updates pile up as dead versions from one loop to the next."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def autovacuum_setting(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        return str(connection.execute("SHOW autovacuum").fetchone()[0])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVER_LOG = Path(tempfile.gettempdir()) / "crowd_load_server.log"


def server_start(database_url: str, port: int) -> subprocess.Popen:
    # The server's log goes to a file: a pipe nobody reads would stall it once full.
    with SERVER_LOG.open("wb") as log:
        server = subprocess.Popen(
            ["sh", str(ROOT / "docker" / "entrypoint.sh"), "web"],
            cwd=ROOT,
            env={**server_environment(database_url), "BIND": f"127.0.0.1:{port}"},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                sys.exit(f"the web server did not start:\n{SERVER_LOG.read_text()}")
            time.sleep(0.2)
    sys.exit("the web server did not listen within 60 s")


class CpuMeter:
    """CPU seconds of the web server's processes and of this database's PostgreSQL backends."""

    def __init__(self, server: subprocess.Popen, database_url: str) -> None:
        self.server = psutil.Process(server.pid)
        self.database_url = database_url
        self.postmaster: psutil.Process | None = None

    def _web(self) -> dict[int, float]:
        processes = [self.server, *self.server.children(recursive=True)]
        return {p.pid: _cpu(p) for p in processes}

    def _database(self) -> dict[int, float]:
        """The PostgreSQL server's CPU: its live processes, plus what the postmaster has
        reaped of ended ones (a backend replaced at DATABASE_CONN_MAX_AGE inside the window
        is counted too). Every database of the server: run it on a quiet machine."""
        postmaster = self._postmaster()
        found = {0: 0.0}
        with contextlib.suppress(psutil.NoSuchProcess):
            times = postmaster.cpu_times()
            found[0] = times.user + times.system + times.children_user + times.children_system
            for child in postmaster.children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    found[child.pid] = _cpu(child)
        return found

    def _postmaster(self) -> "psutil.Process":
        if self.postmaster is None:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as connection:
                backend = int(connection.execute("SELECT pg_backend_pid()").fetchone()[0])
                # Read while the backend lives: it ends with the connection.
                self.postmaster = psutil.Process(backend).parent()
        return self.postmaster

    def read(self) -> tuple[dict[int, float], dict[int, float]]:
        return self._web(), self._database()

    @staticmethod
    def client() -> float:
        """This process's own CPU: the simulated workers share the machine with the server."""
        return _cpu(psutil.Process())


def _cpu(process: "psutil.Process") -> float:
    times = process.cpu_times()
    return times.user + times.system


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """The web processes' CPU in the window (gunicorn's workers live through it)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def server_cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """The PostgreSQL server's CPU in the window: all of it after less all of it before. A
    backend that ended inside the window is in `after` through the postmaster's reaped
    children with its whole life, and its CPU before the window is taken off with `before`."""
    return sum(after.values()) - sum(before.values())


def busiest_share(before: dict[int, float], after: dict[int, float]) -> float:
    """The busiest process's share of the CPU spent: 1/3 with 3 evenly loaded workers."""
    spent = [seconds - before.get(pid, 0.0) for pid, seconds in after.items()]
    total = sum(spent)
    return max(spent) / total if total else 0.0


def item_table_churn(database_url: str) -> tuple[int, int]:
    """Dead row versions in the item table and how often autovacuum has cleaned it."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT n_dead_tup, autovacuum_count FROM pg_stat_user_tables"
            " WHERE relname = 'annotation_item'"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def transactions(database_url: str) -> int:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class Run:
    answers: int = 0
    acknowledged: int = 0
    refused: int = 0
    errors: int = 0
    setup_failures: int = 0
    latencies: list[float] = field(default_factory=list)
    measuring: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def crowd_worker(
    http: "aiohttp.ClientSession",
    base: str,
    crowd_token: str,
    name: str,
    ready: asyncio.Barrier,
    run: Run,
    think_mean: float,
) -> None:
    landing = f"{base}/c/{crowd_token}/"
    found, csrf, work_url = None, "", ""
    for _attempt in range(3):
        try:
            async with http.get(landing, params={"worker_id": name}) as reply:
                await reply.read()
            csrf = http.cookie_jar.filter_cookies(yarl.URL(landing))["csrftoken"].value
            data = {"csrfmiddlewaretoken": csrf, "worker_id": name}
            async with http.post(landing, data=data) as reply:
                page = await reply.text()
                work_url = str(reply.url)
            found = TOKEN.search(page)
            break
        except (KeyError, TimeoutError, aiohttp.ClientError):
            run.setup_failures += 1
    # Every worker passes the barrier, started or not, so that the run never waits for one.
    await ready.wait()
    headers = {"HX-Request": "true", "X-CSRFToken": csrf, "HX-Current-URL": work_url}
    answer_url = f"{work_url}answer/"
    while found and not run.stop.is_set():
        if think_mean:
            await asyncio.sleep(random.expovariate(1 / think_mean))
            if run.stop.is_set():
                break
        measured = run.measuring
        started = time.perf_counter()
        try:
            async with http.post(
                answer_url,
                data={"assignment": found.group(1), "choice": random.choice("ABN")},
                headers=headers,
            ) as reply:
                body = await reply.text()
                status = reply.status
        except (TimeoutError, aiohttp.ClientError):
            run.errors += 1
            continue
        elapsed = time.perf_counter() - started
        if status != 200:
            run.errors += 1
            continue
        if 'role="alert"' in body:
            run.refused += 1
        else:
            run.acknowledged += 1
            # Counted in the window only when sent and answered inside it.
            if measured and run.measuring:
                run.answers += 1
                run.latencies.append(elapsed)
        found = TOKEN.search(body)


class Loop:
    """N crowd workers, each with its own cookies, sharing one connection pool."""

    def __init__(self, base: str, crowd_token: str, workers: int, think_mean: float, prefix: str):
        self.run = Run()
        self.connector = aiohttp.TCPConnector(limit=0)
        self.sessions = [
            aiohttp.ClientSession(
                connector=self.connector,
                connector_owner=False,
                timeout=aiohttp.ClientTimeout(total=120),
                cookie_jar=aiohttp.CookieJar(unsafe=True),
            )
            for _ in range(workers)
        ]
        self.ready = asyncio.Barrier(workers + 1)
        self.tasks = [
            asyncio.create_task(
                crowd_worker(
                    http, base, crowd_token, f"{prefix}-{index}", self.ready, self.run, think_mean
                )
            )
            for index, http in enumerate(self.sessions)
        ]

    async def started(self) -> None:
        """Every worker has its session and first item."""
        await asyncio.wait_for(self.ready.wait(), timeout=600)

    async def close(self) -> None:
        self.run.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for http in self.sessions:
            await http.close()
        await self.connector.close()


async def bare_loop(base: str, workers: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with http.get(f"{base}/healthz") as reply:
                    await reply.read()
                    if reply.status == 200:
                        done += 1

        await asyncio.gather(*(one() for _ in range(workers)))
    return done / seconds


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def invariants(database_url: str, annotators: int) -> dict[str, int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:

        def one(sql: str) -> int:
            return int(connection.execute(sql).fetchone()[0])

        return {
            "annotations": one("SELECT count(*) FROM annotation_annotation"),
            "duplicates": one(
                "SELECT count(*) FROM (SELECT item_id, annotator_id FROM annotation_annotation "
                "GROUP BY 1, 2 HAVING count(*) > 1) d"
            ),
            "over_filled": one(
                f"SELECT count(*) FROM annotation_item WHERE taken > {annotators} "
                f"OR completed > {annotators}"
            ),
            "completed_mismatch": one(
                "SELECT count(*) FROM annotation_item i WHERE i.completed <> "
                "(SELECT count(*) FROM annotation_annotation a WHERE a.item_id = i.id)"
            ),
        }


def statements_per_answer(database_url: str, crowd_token: str) -> tuple[int, int]:
    """SQL statements and transactions of one answer round-trip, through Django in-process."""
    from django.db import connection
    from django.test import Client

    executed: list[str] = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    client = Client(enforce_csrf_checks=False, HTTP_HOST="127.0.0.1")
    client.post(f"/c/{crowd_token}/", {"worker_id": "statement-counter"}, follow=True)
    from annotation.models import Assignment, WorkerSession

    session = WorkerSession.objects.get(annotator__name="statement-counter")
    assignment = Assignment.objects.filter(session=session, status="leased").first()
    connection.close()
    before = transactions(database_url)
    with connection.execute_wrapper(count):
        client.post(
            f"/c/w/{session.token}/answer/",
            {"assignment": assignment.token, "choice": "A"},
            HTTP_HX_REQUEST="true",
        )
    connection.close()
    return len(executed), transactions(database_url) - before - 1


def loops_planned(args) -> list[tuple[int, float]]:
    loops = [(size, 0.0) for size in args.sizes]
    if args.think_workers:
        loops.append((args.think_workers, args.think_mean))
    return loops


async def measure(
    args, base: str, crowd_tokens: list[str], meter: CpuMeter
) -> tuple[list[dict], int]:
    rows = []
    acknowledged = 0
    for index, (workers, think_mean) in enumerate(loops_planned(args)):
        await asyncio.to_thread(database_vacuum, args.database)
        loop = Loop(base, crowd_tokens[index], workers, think_mean, f"run{index}")
        await loop.started()
        web_before, db_before = meter.read()
        client_before = meter.client()
        xacts_before = transactions(args.database)
        loop.run.measuring = True
        started = time.perf_counter()
        await asyncio.sleep(args.seconds)
        loop.run.measuring = False
        elapsed = time.perf_counter() - started
        web_after, db_after = meter.read()
        client_after = meter.client()
        xacts = transactions(args.database) - xacts_before
        await loop.close()
        dead_rows, autovacuums = item_table_churn(args.database)
        run = loop.run
        acknowledged += run.acknowledged
        answers = max(run.answers, 1)
        rows.append(
            {
                "workers": workers,
                "think": think_mean,
                "rate": run.answers / elapsed,
                "p50": percentile(run.latencies, 0.50),
                "p99": percentile(run.latencies, 0.99),
                "web_ms": 1000 * cpu_spent(web_before, web_after) / answers,
                "db_ms": 1000 * server_cpu_spent(db_before, db_after) / answers,
                "client_ms": 1000 * (client_after - client_before) / answers,
                "xacts": xacts / answers,
                "refused": run.refused,
                "errors": run.errors,
            }
        )
        print(_row(rows[-1]), flush=True)
        print(
            f"      busiest web process {busiest_share(web_before, web_after):.0%} of the web CPU;"
            f" item table: {dead_rows:,} dead row versions, {autovacuums} autovacuums so far"
        )
        if run.setup_failures:
            print(f"      ({run.setup_failures} failed attempts to start a worker's session)")
    return rows, acknowledged


def _row(row: dict) -> str:
    kind = f"think {row['think']:.0f} s" if row["think"] else "closed"
    return (
        f"{row['workers']:>5} {kind:>10} {row['rate']:>9.1f} {row['p50'] * 1000:>9.0f} "
        f"{row['p99'] * 1000:>9.0f} {row['web_ms']:>8.2f} {row['db_ms']:>8.2f} "
        f"{row['client_ms']:>8.2f} {row['xacts']:>6.2f} {row['refused']:>7} {row['errors']:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/crowd_load")
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--annotators", type=int, default=3)
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think-workers", type=int, default=500)
    parser.add_argument("--think-mean", type=float, default=20.0)
    parser.add_argument("--bare-seconds", type=float, default=15)
    args = parser.parse_args()
    args.sizes = [int(size) for size in args.sizes.split(",") if size]

    database_reset(args.database)
    print(
        f"loading {args.items:,} prompts and two models' answers; rounds of {args.annotators} "
        "annotators an item...",
        flush=True,
    )
    texts_build(args.database, args.items)
    started = time.perf_counter()
    crowd_tokens = [
        round_build(index + 1, args.annotators).crowd_token
        for index in range(len(loops_planned(args)))
    ]
    print(
        f"{len(crowd_tokens)} rounds of {args.items:,} items, one a loop: "
        f"{time.perf_counter() - started:.1f} s; this server's autovacuum is "
        f"{autovacuum_setting(args.database)} (the script vacuums before each loop)",
        flush=True,
    )
    port = free_port()
    server = server_start(args.database, port)
    base = f"http://127.0.0.1:{port}"
    try:
        meter = CpuMeter(server, args.database)
        print(
            f"{'N':>5} {'loop':>10} {'annot/s':>9} {'p50 ms':>9} {'p99 ms':>9} "
            f"{'web ms':>8} {'db ms':>8} {'load ms':>8} {'xact/a':>6} {'refused':>7} "
            f"{'errors':>6}"
        )
        rows, acknowledged = asyncio.run(measure(args, base, crowd_tokens, meter))
        bare = asyncio.run(bare_loop(base, max(args.sizes or [50]), args.bare_seconds))
        statements, xacts = statements_per_answer(args.database, crowd_tokens[-1])
        closed = [row for row in rows if not row["think"]]
        best = max((row["rate"] for row in closed), default=0.0)
        print(
            f"bare view (/healthz), closed loop of {max(args.sizes or [50])}: {bare:.0f} requests/s"
        )
        print(f"best closed-loop annotation rate / bare view rate: {best / bare:.1%}")
        print(f"one answer round-trip: {statements} SQL statements, {xacts} transactions")
        found = invariants(args.database, args.annotators)
        print(
            f"invariants: {found['annotations']:,} annotations stored, {acknowledged:,} "
            f"acknowledged (+1 by the statement count); {found['duplicates']} items annotated "
            f"twice by one worker; {found['over_filled']} items over-filled; "
            f"{found['completed_mismatch']} items whose count differs from their annotations"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
