"""Run every benchmark, each in its own process, and print one table of all their rows.

``make bench`` runs ``python -m benchmarks.run_all``. Each benchmark module's
``main(argv)`` runs in a fresh Python process (no TensorFlow state, memory or threads shared
between benchmarks) and hands its rows back as JSON; this process then prints one table
(bench, metric, value, unit, target, verdict ok / MISSED, note) under a line describing the
machine: CPU model, cores, ``nproc``, load average (other processes sharing the machine
skew times; the ratios are measured side by side within one benchmark), date and versions.

The full run takes about 10 minutes on two cores. Sizes are chosen for that: the callback's
overhead is measured on 6 epochs x 5,000 images rather than the demo's 15 x 10,000 (its rows
say so and project the ratio to the demo's size).

Usage::

    python -m benchmarks.run_all                          # everything
    python -m benchmarks.run_all --quick --only callback,plugin
    python -m benchmarks.run_all --markdown benchmarks/RESULTS.md --json results.json
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import format_table, machine, machine_line, markdown_table, normalize, row

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS = {
    "callback": ("benchmarks.bench_callback", [], ["--quick"]),
    "top_examples": ("benchmarks.bench_top_examples", [], ["--quick"]),
    "filters": ("benchmarks.bench_filters", [], ["--quick"]),
    "methods": ("benchmarks.bench_methods", [], ["--quick"]),
    "targets": ("benchmarks.bench_targets", [], ["--quick"]),
    "applications": ("benchmarks.bench_applications", [], ["--quick"]),
    "plugin": ("benchmarks.bench_plugin", [], ["--quick"]),
    "browser": ("benchmarks.bench_browser", [], ["--loads", "2"]),
    "explore": ("benchmarks.bench_explore", [], ["--quick"]),
    "server_memory": ("benchmarks.bench_server_memory", [], ["--quick"]),
    "zoo": ("benchmarks.bench_zoo", [], ["--quick"]),
}
"""name -> (module, arguments of the full run, arguments of ``--quick``)."""

CHILD = """\
import json, sys
from importlib import import_module
rows = import_module(sys.argv[1]).main(sys.argv[3:])
with open(sys.argv[2], "w") as out:
    json.dump(rows, out, default=float)
"""
"""The child process: run one module's ``main(argv)`` and write its rows as JSON."""


def run_one(name, quick=False, timeout=1800, verbose=False, workdir=None):
    """Run one benchmark in a fresh Python process and return its rows and what it cost.

    Args:
        name: a key of ``BENCHMARKS``.
        quick: pass the benchmark's quick arguments instead of the full run's.
        timeout: seconds before the process is stopped.
        verbose: let the benchmark's own output through (otherwise kept, and shown only
            if it fails).
        workdir: folder for the JSON hand-off (default: a temporary one).

    Returns:
        ``(rows, info)``: the normalized rows (one row saying what went wrong if the
        benchmark failed) and ``{"seconds", "returncode", "load"}``.

    Raises:
        KeyError: for an unknown name.

    Example:
        >>> rows, info = run_one("top_examples", quick=True)
    """
    module, full, quick_args = BENCHMARKS[name]
    with tempfile.TemporaryDirectory(prefix="bench_", dir=workdir) as folder:
        handoff = Path(folder) / f"{name}.json"
        command = [sys.executable, "-c", CHILD, module, str(handoff)]
        command += quick_args if quick else full
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        output = None if verbose else subprocess.PIPE
        start = time.monotonic()
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=output,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout)  # fmt: skip
            code, log = done.returncode, done.stdout or ""
        except subprocess.TimeoutExpired as error:
            code, log = "timeout", _text(error.stdout)
        seconds = time.monotonic() - start
        rows = json.loads(handoff.read_text()) if code == 0 and handoff.exists() else None
    info = {"seconds": round(seconds, 1), "returncode": code, "load": os.getloadavg()[0]}
    if rows is None:
        tail = [line for line in log.splitlines() if line.strip()][-1:] or ["no output"]
        if not verbose:
            print(f"--- {name} failed ({code}); the end of its output:\n" + "\n".join(
                log.splitlines()[-40:]), file=sys.stderr)  # fmt: skip
        return [row(name, f"benchmark failed ({code})", None, "", None, tail[0][:200])], info
    return [normalize(result, name) for result in rows], info


def _text(output):
    """Captured output as text (bytes, str or None)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def header(facts, quick, runs):
    """The lines above the table: the machine, the mode, each benchmark's time and load."""
    timing = ", ".join(
        f"{name} {info['seconds']:.0f} s (load {info['load']:.1f})" for name, info in runs.items()
    )
    total = sum(info["seconds"] for info in runs.values())
    return [
        f"Machine: {machine_line(facts)}",
        f"Run: {'quick' if quick else 'full'}, {total / 60:.1f} min: {timing}; load average "
        f"at the end {'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def write_markdown(path, lines, rows):
    """Write the header lines and the rows as a Markdown table to ``path``."""
    text = ["# Benchmark results", "", *(f"{line}  " for line in lines), "",
            "Produced by `make bench` (`python -m benchmarks.run_all`); every number is measured "
            "by the benchmark named in the first column (see its module docstring).", "",
            markdown_table(rows), ""]  # fmt: skip
    Path(path).write_text("\n".join(text))


def main(argv=None):
    """Run the chosen benchmarks, print one table, and optionally write Markdown and JSON.

    Args:
        argv: command-line arguments (``--quick``, ``--only NAME[,NAME]``, ``--markdown PATH``,
            ``--json PATH``, ``--timeout S``, ``--verbose``); None reads ``sys.argv``.

    Returns:
        0 if every benchmark ran (targets missed or not), 1 if one failed.

    Raises:
        SystemExit: for an unknown benchmark name in ``--only``.

    Example:
        >>> main(["--quick", "--only", "top_examples"])
        0
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", help=f"comma-separated names among {', '.join(BENCHMARKS)}")
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    parser.add_argument("--json", help="also write the machine facts and rows as JSON here")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    parser.add_argument("--verbose", action="store_true", help="show each benchmark's output")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS)
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in names if name not in BENCHMARKS]
        if unknown or not names:
            parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}")
    facts = machine()
    print(f"Machine: {machine_line(facts)}", flush=True)
    rows, runs = [], {}
    for number, name in enumerate(names, 1):
        print(f"[{number}/{len(names)}] {name} ...", end=" ", flush=True)
        found, runs[name] = run_one(name, args.quick, args.timeout, args.verbose)
        rows += found
        print(f"{runs[name]['seconds']:.0f} s, {len(found)} rows", flush=True)
    lines = header(facts, args.quick, runs)
    print("\n" + "\n".join(lines))
    print(format_table(rows))
    if args.markdown:
        write_markdown(args.markdown, lines, rows)
    if args.json:
        strict = [{**r, "value": r["value"] if math.isfinite(r["value"]) else None} for r in rows]
        payload = {"machine": facts, "runs": runs, "rows": strict}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    failed = [name for name, info in runs.items() if info["returncode"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
