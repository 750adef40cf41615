"""A classroom on one server: N simulated students, each with their own image, clicking through the pages.

    .venv/bin/python benchmarks/bench_classroom.py            # 30 students
    .venv/bin/python benchmarks/bench_classroom.py 3 --seed 1 # a quick look while developing
    .venv/bin/python benchmarks/bench_classroom.py --help

It starts ONE ``streamlit run app.py`` on a free 127.0.0.1 port (headless, usage stats off, file
watcher off so that edits to the sources cannot rerun the sessions mid-measurement), its log in
``artifacts/bench-classroom-server.log``,
opens the Channel page once as the teacher would (the cold start: imports, the model, the first
network run; reported apart), then lets N students loose at the same time and stops the server at
the end.

**No browsers.** N headless Chromiums would take the two cores the server is measured on, so each
student is a ``StudentClient`` (``benchmarks/st_client.py``): Streamlit's own websocket protocol
(``/_stcore/stream``, ``BackMsg``/``ForwardMsg`` protobufs, uploads through
``/_stcore/upload_file``), the messages a browser tab exchanges, without rendering anything. All
students run in one asyncio loop of this process. Like a browser, a student then downloads the
images of each run it has not seen yet (``/media/…``; ``--no-media`` to skip); that is not part of
a step's time.

**Each student** (seeded: ``--seed``) waits 0–3 s, then does these steps, with 1–3 s of reading
(random) between two steps:

    open /channel · Image source → Upload · upload student-NN.png · r one notch (on /channel)
    · open /spatial · k one notch · open /full · open /layers · open /channel · r one notch

Its image is a PNG made here, a colour and a stripe pattern of its own with its number drawn in it,
named ``student-NN.png``. A notch goes up or down at random (down at the top end, up at the bottom).

**Measured**

* per step: the latency, from sending the step (for the upload: from asking for the upload URL,
  so the HTTP PUT counts) until the server's ``script_finished`` for its run; p50, p95 and max;
* the server's CPU-seconds per step: utime + stime of the server process (``/proc/<pid>/stat``)
  over the students' part, divided by the number of steps done (the teacher's cold start is not
  in it);
* the server's RSS: after the cold start ("start"), the peak (sampled every 0.25 s) and at the end;
* errors: an exception element or an ``st.error`` alert in any run, a script compile error, a step
  that timed out or lost its connection, a page that did not become the one asked for, a slider
  the server did not take (its value not sent back, or no text of the page changed), an image
  that could not be downloaded; and, counted apart (a failed run usually shows in both), each
  traceback in the server's log;
* cross-talk: in every run of a student, each text, caption or image caption that names a
  ``student-NN`` must name only that student; after the upload the sidebar must show the student's
  own file name (else the error "own image missing"), and the image shown with that caption, once
  downloaded, must look like the student's upload: of all the class's uploads, its own must be
  the nearest, within 8/255 on average over 32×24 thumbnails (a JPEG of the same picture is
  about 1 away; two students' pictures are 12 to 50 apart).

It prints a table and one line ``JSON {...}`` with everything, and exits with 1 if there was any
error, cross-talk or traceback (2 if the server did not start or the teacher's first page
failed). These are measurements of a shared machine: compare rows of one run, not runs on
different days.
"""

from __future__ import annotations

import argparse
import asyncio
import colorsys
import io
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from st_client import StudentClient  # noqa: E402

R_LABEL, K_LABEL = "Reduction ratio r", "Spatial kernel size k"
SOURCE_LABEL, UPLOAD_LABEL = "Image source", "Image"
STEPS = [  # (name, action, argument); the names are the rows of the table
    ("open /channel", "open", "channel"),
    ("source: Upload", "set", (SOURCE_LABEL, "Upload")),
    ("upload image", "upload", UPLOAD_LABEL),
    ("r notch /channel", "notch", R_LABEL),
    ("open /spatial", "open", "spatial"),
    ("k notch /spatial", "notch", K_LABEL),
    ("open /full", "open", "full"),
    ("open /layers", "open", "layers"),
    ("back to /channel", "open", "channel"),
    ("r notch /channel 2", "notch", R_LABEL),
]
STUDENT_NAME = re.compile(r"student-\d+")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process, in stop_server
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    return process


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 90) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local: never a proxy
    deadline = time.time() + timeout_s
    while True:
        try:
            if opener.open(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before it was ready")
        if time.time() > deadline:
            raise RuntimeError(f"the server did not come up within {timeout_s:.0f} s")
        time.sleep(0.3)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log.close()


# --------------------------------------------------------------------------------------------
# The students
# --------------------------------------------------------------------------------------------


def student_image(number: int) -> bytes:
    """A PNG no other student has: its own hue, stripe spacing and angle, and its number drawn large."""
    rng = random.Random(number)
    hue = (number * 0.618034) % 1.0
    base = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.95))
    ink = tuple(int(255 * c) for c in colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.9, 0.45))
    image = Image.new("RGB", (320, 240), base)
    draw = ImageDraw.Draw(image)
    spacing, slope = 12 + number % 9 * 3, rng.choice([-1, 1]) * rng.uniform(0.2, 1.5)
    for x in range(-480, 640, spacing):
        draw.line([(x, 0), (x + slope * 240, 240)], fill=ink, width=3)
    font = ImageFont.load_default(size=120)
    draw.rectangle([60, 50, 260, 190], fill=(255, 255, 255))
    draw.text((160, 120), f"{number:02d}", fill=ink, font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


PIXEL_TOLERANCE = 8.0  # mean absolute difference (0-255) of thumbnails; a JPEG of the same picture is ~1


def thumbnail(encoded: bytes) -> bytes:
    return Image.open(io.BytesIO(encoded)).convert("RGB").resize((32, 24), Image.Resampling.BOX).tobytes()


def difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two thumbnails (0-255)."""
    return sum(abs(p - q) for p, q in zip(a, b)) / len(a)


def whose_image(shown: bytes, thumbnails: dict[int, bytes]) -> tuple[int, float]:
    """The student whose upload the encoded image ``shown`` is nearest to, and how near."""
    small = thumbnail(shown)
    return min(((n, difference(small, t)) for n, t in thumbnails.items()), key=lambda x: x[1])


@dataclass
class Student:
    number: int
    name: str  # the upload's file name
    timings: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crosstalk: list[str] = field(default_factory=list)
    media_fetched: int = 0
    checked_urls: set[str] = field(default_factory=set)
    finished: bool = False


def next_notch(options: list[str], current: str, rng: random.Random) -> str:
    i = options.index(current)
    step = rng.choice([-1, 1])
    if not 0 <= i + step < len(options):
        step = -step
    return options[i + step]


async def run_student(student: Student, url: str, rng: random.Random, read_s: tuple[float, float],
                      step_timeout: float, fetch_media: bool, thumbnails: dict[int, bytes]) -> None:
    image = student_image(student.number)
    seen_media: set[str] = set()
    uploaded, texts = False, []
    await asyncio.sleep(rng.uniform(0, read_s[1]))
    client = StudentClient(url, step_timeout=step_timeout)
    try:
        await client.connect()
        for index, (name, action, arg) in enumerate(STEPS):
            if index:
                await asyncio.sleep(rng.uniform(*read_s))
            where = f"{student.name} step {index + 1} ({name})"
            expected = None
            try:
                if action == "open":
                    run = await client.open(arg)
                elif action == "set":
                    run = await client.set_widget(*arg)
                elif action == "upload":
                    run = await client.upload(arg, student.name, image)
                    uploaded = True
                else:  # a notch of a select_slider
                    _, proto = client.widget(arg)
                    expected = next_notch(list(proto.options), client.value(arg)[0], rng)
                    run = await client.set_widget(arg, expected)
            except Exception as error:  # a timeout, a lost connection, a missing widget: this student stops
                student.errors.append(f"{where}: {type(error).__name__}: {error}")
                return
            student.timings.append((name, run.elapsed))
            student.errors += [f"{where}: {e}" for e in run.errors() + client.protocol_errors]
            client.protocol_errors.clear()
            # The page asked for is the page that ran.
            if action == "open" and arg in client.pages and client.page_script_hash != client.pages[arg]:
                student.errors.append(f"{where}: the server ran another page")
            # The slider took the value (the server sends it back: the sidebar sets it from session
            # state) and the page changed with it.
            previous_texts, texts = texts, run.texts()
            if expected is not None and client.value(arg) != [expected]:
                student.errors.append(f"{where}: {arg} is {client.value(arg)}, not {expected!r}")
            if expected is not None and texts == previous_texts:
                student.errors.append(f"{where}: moving {arg} to {expected} changed no text of the page")
            # Nobody else's image; after the upload, one's own.
            for text in texts:
                others = {n for n in STUDENT_NAME.findall(text) if n != student.name.removesuffix(".png")}
                if others:
                    student.crosstalk.append(f"{where}: sees {sorted(others)} in {text[:120]!r}")
            if uploaded:
                own = [image_url for image_url, caption in run.images() if student.name in caption]
                if not own:
                    student.errors.append(f"{where}: own image missing (image captions: {run.image_captions()[:3]})")
                for image_url in set(own) - student.checked_urls:  # the pixels too, once per image URL
                    student.checked_urls.add(image_url)
                    try:
                        shown = await asyncio.to_thread(client.get, image_url)
                    except Exception as error:
                        student.errors.append(f"{where}: GET {image_url}: {error}")
                        continue
                    owner, distance = whose_image(shown, thumbnails)
                    if owner != student.number or distance > PIXEL_TOLERANCE:
                        student.crosstalk.append(f"{where}: the image captioned {student.name} looks like "
                                                 f"student {owner:02d}'s upload ({distance:.1f}/255 from it)")
            if fetch_media:
                before = len(seen_media)
                failures = await asyncio.to_thread(client.fetch_media, run, seen_media)
                student.media_fetched += len(seen_media) - before
                student.errors += [f"{where}: {f}" for f in failures]
        student.finished = True
    finally:
        await client.close()


# --------------------------------------------------------------------------------------------
# The measurement
# --------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def sample_rss(pid: int, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            samples.append(rss_mb(pid))
        except OSError:
            return
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def classroom(args: argparse.Namespace, url: str, pid: int) -> dict:
    # Uploads and image downloads run in threads: enough of them that no student waits for one.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2 * args.students + 4))
    # The teacher opens the app first: the cold start, measured apart.
    async with StudentClient(url, step_timeout=args.step_timeout) as teacher:
        cold = await teacher.open("channel")
    cold_errors = cold.errors()
    rss_start = rss_mb(pid)
    rss_samples: list[float] = [rss_start]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, rss_samples, stop))

    master = random.Random(args.seed)
    students = [Student(n, f"student-{n:02d}.png") for n in range(1, args.students + 1)]
    rngs = [random.Random(master.random()) for _ in students]
    thumbnails = {s.number: thumbnail(student_image(s.number)) for s in students}
    cpu_before, wall_before, client_cpu_before = cpu_seconds(pid), time.perf_counter(), time.process_time()
    tasks = [asyncio.create_task(run_student(s, url, rng, (args.read_min, args.read_max), args.step_timeout,
                                             not args.no_media, thumbnails)) for s, rng in zip(students, rngs)]
    done, pending = await asyncio.wait(tasks, timeout=args.max_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for student, task in zip(students, tasks):
        if task in pending:
            student.errors.append(f"{student.name}: not finished after --max-seconds {args.max_seconds:.0f}")
        elif task.exception() is not None:
            student.errors.append(f"{student.name}: {type(task.exception()).__name__}: {task.exception()}")
    wall = time.perf_counter() - wall_before
    cpu = cpu_seconds(pid) - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    rss_end = rss_mb(pid)
    stop.set()
    await sampler

    by_step: dict[str, list[float]] = defaultdict(list)
    for student in students:
        for name, elapsed in student.timings:
            by_step[name].append(elapsed)
    all_times = [t for times in by_step.values() for t in times]
    n_steps = len(all_times)

    def stats(times: list[float]) -> dict:
        return {"n": len(times), "p50_s": round(percentile(times, 50), 3), "p95_s": round(percentile(times, 95), 3),
                "max_s": round(max(times), 3)} if times else {"n": 0}

    errors = [e for s in students for e in s.errors]
    crosstalk = [c for s in students for c in s.crosstalk]
    return {
        "students": args.students, "seed": args.seed, "read_s": [args.read_min, args.read_max],
        "media": not args.no_media, "cpu_count": os.cpu_count(),
        "cold_start_s": round(cold.elapsed, 3), "cold_start_errors": cold_errors,
        "wall_s": round(wall, 1), "steps": n_steps, "expected_steps": args.students * len(STEPS),
        "students_finished": sum(s.finished for s in students),
        "per_step": {name: stats(by_step[name]) for name, _, _ in STEPS},
        "all_steps": stats(all_times),
        "server_cpu_s": round(cpu, 1), "server_cpu_s_per_step": round(cpu / n_steps, 3) if n_steps else None,
        "server_cpu_utilisation": round(cpu / wall, 2) if wall else None,
        "client_cpu_s": round(client_cpu, 1),
        "rss_mb": {"start": round(rss_start), "peak": round(max(rss_samples + [rss_end])), "end": round(rss_end)},
        "media_fetched": sum(s.media_fetched for s in students),
        "errors": len(errors) + len(cold_errors), "crosstalk": len(crosstalk),
        "error_list": errors[:50], "crosstalk_list": crosstalk[:50],
    }


def print_report(result: dict) -> None:
    print(f"\nClassroom at {result['commit']}: {result['students']} students, {result['steps']} of {result['expected_steps']} steps done, "
          f"{result['students_finished']} students finished, {result['wall_s']:.0f} s "
          f"(cold start {result['cold_start_s']:.1f} s, before the students)")
    print(f"{'step':<22}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for name, row in [*result["per_step"].items(), ("all steps", result["all_steps"])]:
        if row["n"]:
            print(f"{name:<22}{row['n']:>5}{row['p50_s']:>9.2f}{row['p95_s']:>9.2f}{row['max_s']:>9.2f}")
        else:
            print(f"{name:<22}{0:>5}")
    rss = result["rss_mb"]
    print(f"server CPU: {result['server_cpu_s']:.1f} s in all, {result['server_cpu_s_per_step']} s per step, "
          f"{result['server_cpu_utilisation']} cores busy on average (of {result['cpu_count']}); "
          f"this client: {result['client_cpu_s']:.1f} CPU-s")
    print(f"server RSS: start {rss['start']} MB, peak {rss['peak']} MB, end {rss['end']} MB; "
          f"images downloaded: {result['media_fetched']}")
    print(f"errors: {result['errors']}, cross-talk: {result['crosstalk']}, "
          f"tracebacks in the server's log: {len(result['server_log_tracebacks'])}")
    for line in result["cold_start_errors"] + result["error_list"][:20] + result["crosstalk_list"][:20]:
        print(f"  {line}")
    for line in result["server_log_tracebacks"]:
        print(f"  server log: {line}")
    print("JSON " + json.dumps(result, separators=(",", ":")))


def app_commit() -> str:
    """The commit the app was measured at, "+dirty" when its sources differ from it."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("students", nargs="?", type=int, default=30, help="how many students (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--read-min", type=float, default=1.0, help="shortest reading time between steps, s")
    parser.add_argument("--read-max", type=float, default=3.0, help="longest reading time between steps, s")
    parser.add_argument("--step-timeout", type=float, default=120.0, help="a step slower than this is an error, s")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop the students after this, s")
    parser.add_argument("--no-media", action="store_true", help="do not download the runs' images")
    parser.add_argument("--log", type=Path, default=ROOT / "artifacts" / "bench-classroom-server.log")
    args = parser.parse_args()

    context = {"commit": app_commit(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
               "server_log": str(args.log)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, args.log)
    try:
        try:
            wait_healthy(url, server)
        except RuntimeError as error:
            print(f"error: {error}; see {args.log}", file=sys.stderr)
            return 2
        result = context | asyncio.run(classroom(args, url, server.pid))
    except Exception as error:  # the teacher's first page failed, or this script has a bug
        print(f"error: {type(error).__name__}: {error}; see {args.log}", file=sys.stderr)
        return 2
    finally:
        stop_server(server)
    result["server_log_tracebacks"] = tracebacks(args.log)
    print_report(result)
    return 1 if result["errors"] or result["crosstalk"] or result["server_log_tracebacks"] else 0


def tracebacks(log: Path) -> list[str]:
    """The last line of each traceback in the server's log (the exception), at most 20."""
    found, inside = [], False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            inside = True
        elif inside and line and not line.startswith((" ", "Traceback", "During handling", "The above")):
            found.append(line.strip()[:200])
            inside = False
    return found[:20]


if __name__ == "__main__":
    sys.exit(main())
