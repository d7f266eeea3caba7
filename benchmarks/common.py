"""What every benchmark shares: the result row, its verdict, the tables and the machine.

A benchmark's ``main(argv=None)`` returns a list of rows, each a dict with the keys of
``ROW_KEYS``: ``bench`` (the benchmark), ``metric`` (what was measured), ``value`` (a
number; NaN when it could not be measured), ``unit``, ``target`` and ``note`` (how it was
measured, e.g. the mean activation reached next to a filter-pattern time, so that speed
never comes from doing less). A target is None, a string ``"<op> <number>"`` with ``op``
one of ``<``, ``<=``, ``>``, ``>=`` (``"< 1.15"``: the value must stay below 1.15), or a
bare number, read as ``"< number"``.

This module imports neither TensorFlow nor Keras: ``run_all`` uses it in the parent process.

Example:
    >>> rows = [row("callback", "fit time ratio", 1.08, "x", "< 1.15", "4 epochs")]
    >>> verdict(rows[0])
    'ok'
    >>> print(format_table(rows))
"""

import datetime
import importlib.metadata
import math
import os
import platform
import re

ROW_KEYS = ("bench", "metric", "value", "unit", "target", "note")
"""The keys of a result row, in table order."""

OPERATORS = {
    "<": lambda value, bound: value < bound,
    "<=": lambda value, bound: value <= bound,
    ">": lambda value, bound: value > bound,
    ">=": lambda value, bound: value >= bound,
}
"""Comparison directions a target may name."""

COLUMNS = ("bench", "metric", "value", "unit", "target", "verdict", "note")
"""The columns of the printed and Markdown tables."""


def row(bench, metric, value, unit, target=None, note=""):
    """One result row.

    Args:
        bench: the benchmark's name, e.g. ``"callback"``.
        metric: what was measured, e.g. ``"fit time with / without callback"``.
        value: the measured number (NaN or None when it could not be measured).
        unit: its unit (``"s"``, ``"ms"``, ``"MiB"``, ``"x"`` for ratios, ...).
        target: None, ``"<op> <number>"`` or a number (read as ``"< number"``).
        note: how it was measured, in a few words.

    Returns:
        A dict with the keys of ``ROW_KEYS``; the target normalized to a string or None.

    Raises:
        ValueError: for a target that is not a number or ``"<op> <number>"``.

    Example:
        >>> row("plugin", "/tags median", 3.2, "ms", 50)["target"]
        '< 50'
    """
    value = float("nan") if value is None else float(value)
    target = None if target is None else _target_text(target)
    return {"bench": str(bench), "metric": str(metric), "value": value, "unit": str(unit),
            "target": target, "note": str(note or "")}  # fmt: skip


def parse_target(target):
    """``(operator, bound)`` of a target, or None when there is none.

    Args:
        target: None, a number (read as ``< number``) or a string ``"<op> <number>"``.

    Returns:
        None or a tuple ``(op, bound)`` with ``op`` a key of ``OPERATORS``.

    Raises:
        ValueError: for anything else.

    Example:
        >>> parse_target(">= 4")
        ('>=', 4.0)
    """
    if target is None:
        return None
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return "<", float(target)
    if isinstance(target, str):
        match = re.fullmatch(r"\s*(<=|>=|<|>)\s*([-+.0-9eE]+)\s*", target)
        if match:
            try:
                return match.group(1), float(match.group(2))
            except ValueError:
                pass
    raise ValueError(
        f"A target must be None, a number or '<op> <number>' with op in {list(OPERATORS)}; "
        f"got {target!r}."
    )


def _target_text(target):
    """A target as ``"<op> <number>"``."""
    op, bound = parse_target(target)
    return f"{op} {bound:g}"


def verdict(result):
    """``"ok"``, ``"MISSED"``, ``"n/a"`` (target but no value) or ``""`` (no target).

    Args:
        result: a row (see ``row``).

    Returns:
        The verdict as a string.

    Example:
        >>> verdict(row("b", "m", 2.0, "x", ">= 3"))
        'MISSED'
    """
    target = parse_target(result.get("target"))
    if target is None:
        return ""
    value = result.get("value")
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    op, bound = target
    return "ok" if OPERATORS[op](float(value), bound) else "MISSED"


def normalize(result, bench=None):
    """A row from any dict with at least metric and value: keys of ``ROW_KEYS`` only.

    Keys outside the schema (e.g. a benchmark's own ``loader``) are kept, as
    ``key=value``, at the front of the note.

    Args:
        result: a dict returned by a benchmark.
        bench: the benchmark's name, used when the dict has none.

    Returns:
        A row (see ``row``).

    Example:
        >>> normalize({"metric": "m", "value": 1, "unit": "s", "loader": "rust"}, "plugin")
        {'bench': 'plugin', 'metric': 'm', 'value': 1.0, 'unit': 's', 'target': None, 'note': 'loader=rust'}
    """
    extras = [f"{key}={value}" for key, value in result.items() if key not in ROW_KEYS]
    note = "; ".join([*extras, result.get("note") or ""]).strip("; ")
    return row(result.get("bench") or bench, result["metric"], result.get("value"),
               result.get("unit", ""), result.get("target"), note)  # fmt: skip


def format_value(value):
    """A number for a table: 4 significant digits, thousands separated, NaN as ``-``."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 999.5 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _cells(result):
    """The table cells of one row, in ``COLUMNS`` order."""
    return [result["bench"], result["metric"], format_value(result["value"]), result["unit"],
            result["target"] or "", verdict(result), result["note"]]  # fmt: skip


def format_table(rows):
    """The rows as one aligned plain-text table (the note column last, not padded).

    Args:
        rows: rows (see ``row``).

    Returns:
        The table as a string, a header line first.

    Example:
        >>> print(format_table([row("b", "m", 1.5, "s")]))
    """
    cells = [list(COLUMNS), *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    right = {2}  # values right-aligned
    lines = []
    for line in cells:
        padded = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))
        ]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines)


def markdown_table(rows):
    """The rows as a Markdown table (``|`` in cells escaped).

    Args:
        rows: rows (see ``row``).

    Returns:
        The table as a string.

    Example:
        >>> markdown_table([row("b", "m", 1.5, "s")]).splitlines()[0]
        '| bench | metric | value | unit | target | verdict | note |'
    """

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [
        line(COLUMNS),
        "|" + "|".join("---:" if c == "value" else "---" for c in COLUMNS) + "|",
    ]
    return "\n".join([*lines, *(line(_cells(r)) for r in rows)])


def print_rows(title, rows):
    """Print a benchmark's title and its rows as a table (what ``main`` shows when run alone)."""
    print(title)
    print(format_table(rows), flush=True)


PEERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts",
                     "peers")  # fmt: skip
"""Where ``make peers`` installs the peer tools the benchmarks compare with (tf-keras-vis),
outside the test environment: tf-keras-vis ships a top-level ``tests`` package that would
shadow this project's."""


def use_peers():
    """Let the peer tools of ``PEERS`` be imported (appended to ``sys.path``, so that
    nothing of this project is shadowed); True if the folder exists.

    Example:
        >>> use_peers() or print("run make peers for the tf-keras-vis rows")
    """
    import sys

    if not os.path.isdir(PEERS):
        return False
    if PEERS not in sys.path:
        sys.path.append(PEERS)
    return True


def machine():
    """Facts about this machine and software, without importing TensorFlow.

    Returns:
        A dict: ``cpu`` (model name), ``cores`` (physical cores per socket, from
        /proc/cpuinfo), ``logical_cpus``, ``nproc`` (CPUs this process may use), ``date``
        (ISO, local time), ``load`` (1, 5, 15-minute load averages), ``tensorflow``,
        ``python``.

    Example:
        >>> machine()["nproc"] >= 1
        True
    """
    cpu, cores, logical = platform.processor() or "unknown", None, 0
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key == "model name":
                    cpu = value
                elif key == "cpu cores":
                    cores = int(value)
                elif key == "processor":
                    logical += 1
    except OSError:
        pass
    tensorflow = "not installed"
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            tensorflow = importlib.metadata.version(name)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": cores,
        "logical_cpus": logical or os.cpu_count(),
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load": [round(x, 2) for x in os.getloadavg()],
        "tensorflow": tensorflow,
        "python": platform.python_version(),
    }


def machine_line(facts):
    """One header line from ``machine()``'s dict."""
    load = "/".join(f"{x:g}" for x in facts["load"])
    return (
        f"{facts['cpu']}, {facts['cores'] or '?'} cores ({facts['logical_cpus']} logical, "
        f"nproc {facts['nproc']}), load average {load} (1/5/15 min), {facts['date']}, "
        f"TensorFlow {facts['tensorflow']}, Python {facts['python']}"
    )
