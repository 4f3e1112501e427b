"""Report writers for ``edgekit run``: JUnit XML for CI test views, Markdown for PR comments.

Both take the run report dict (the JSON ``edgekit run`` prints, schema ``edgekit.run/1``) and
are pure apart from the ``write_*`` helpers. Each gate becomes one JUnit test case so that CI
tools (Jenkins xunit, GitLab, GitHub test reporters) show a failed budget as a failed test.
The XML follows the Jenkins xunit-plugin ``junit-10.xsd`` (a copy is in tests/data), which is
stricter than most readers: ``<testcase>`` takes no ``<properties>`` and ``<testsuites>`` no
``skipped`` count, so per-gate evidence goes into the test case's ``<system-out>``. A test
case's ``time`` is the gate's ``seconds`` (its target's bench, or its stage's share); a skipped
case says why. The Markdown carries a Mermaid chart of the targets' ticks vs their budgets,
which GitHub renders in a step summary (the PNG plots are linked by name, as artifacts).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# XML 1.0 forbids most control characters; messages can carry ANSI colour codes from rich or
# text from a backend's exception, and one such character makes the whole file unreadable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_EXIT_REASONS = {0: "all gates passed", 1: "a gate failed", 2: "bad input", 3: "missing backend"}
_VERDICT = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}


def _clean(text: Any) -> str:
    return _XML_INVALID.sub("", _ANSI.sub("", "" if text is None else str(text)))


def _num(value: float | None) -> str:
    """Three significant digits, never scientific notation for ordinary latencies."""
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _with_unit(value: float | None, unit: str | None) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    return f"{_num(value)} {unit}" if unit else _num(value)


def _recipe_name(report: dict[str, Any]) -> str:
    return str((report.get("recipe") or {}).get("name") or "recipe")


def _count(gates: list[dict[str, Any]], status: str) -> int:
    return sum(1 for g in gates if g.get("status") == status)


def _gate_details(gate: dict[str, Any]) -> str:
    unit = gate.get("unit")
    if gate.get("status") == "skipped":  # nothing was measured: say why, not "metric: None"
        lines = [
            f"gate: {gate.get('id', '')}",
            f"skipped: {gate.get('message') or 'not run'}",
            f"stage: {gate.get('stage') or ''}",
            f"target: {gate.get('target') or ''}",
            f"limit: {_with_unit(gate.get('limit'), unit)}",
        ]
        return _clean("\n".join(lines))
    lines = [
        f"gate: {gate.get('id', '')}",
        f"stage: {gate.get('stage') or ''}",
        f"target: {gate.get('target') or ''}",
        f"metric: {gate.get('metric') or ''}",
        f"value: {_with_unit(gate.get('value'), unit)}",
        f"limit: {_with_unit(gate.get('limit'), unit)}",
        f"unit: {unit or ''}",
        f"evidence: {gate.get('evidence') or ''}",
        f"method: {gate.get('method') or ''}",
    ]
    if gate.get("evidence") == "estimated":
        # A CI reader skimming test output must not mistake a roofline estimate for a timing.
        lines.insert(0, "ESTIMATED, not measured on the target")
    if gate.get("seconds") is not None:
        lines.append(f"seconds: {gate['seconds']:.3f}")
    if gate.get("message"):
        lines.append(f"message: {gate['message']}")
    return _clean("\n".join(lines))


def _seconds(value: Any) -> str:
    """A JUnit ``time``: seconds, never negative, 0 when the work was not timed."""
    try:
        return f"{max(float(value or 0.0), 0.0):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def junit_xml(report: dict[str, Any]) -> str:
    """Render the run's gates as a JUnit XML document (one test case per gate).

    Args:
        report: The ``edgekit run`` report dict (schema ``edgekit.run/1``).

    Returns:
        The XML text, with an XML declaration, valid against the xunit-plugin ``junit-10.xsd``.
    """
    gates: list[dict[str, Any]] = list(report.get("gates") or [])
    name = _clean(_recipe_name(report))
    failures, skipped = _count(gates, "failed"), _count(gates, "skipped")
    # Anything that is neither passed, failed nor skipped means the gate could not be judged.
    errors = sum(1 for g in gates if g.get("status") not in ("passed", "failed", "skipped"))
    seconds = _seconds(report.get("seconds"))
    counts = {"tests": str(len(gates)), "failures": str(failures), "errors": str(errors)}

    root = ET.Element("testsuites", {"name": "edgekit", **counts, "time": seconds})
    attrs = {"name": f"edgekit.{name}", **counts, "skipped": str(skipped), "time": seconds}
    suite = ET.SubElement(root, "testsuite", attrs)
    host = (report.get("environment") or {}).get("host")
    if host:
        suite.set("hostname", _clean(host))
    if report.get("created"):
        suite.set("timestamp", _clean(str(report["created"]).removesuffix("Z")))

    recipe = report.get("recipe") or {}
    props = ET.SubElement(suite, "properties")
    for key in ("name", "path", "sha256"):
        ET.SubElement(
            props, "property", {"name": f"recipe.{key}", "value": _clean(recipe.get(key))}
        )
    for key in ("schema", "model", "out", "edgekit", "exit_code"):
        ET.SubElement(props, "property", {"name": key, "value": _clean(report.get(key))})

    for gate in gates:
        # the time of the work behind the gate: its target's bench, or its stage's seconds
        # (shared among the stage's gates, so CI totals add up); a skipped gate took none
        case_name = _clean(gate.get("name") or gate.get("id") or "gate")
        attrs = {"name": case_name, "time": _seconds(gate.get("seconds"))}
        attrs["classname"] = f"edgekit.{name}.{_clean(gate.get('kind') or 'gate')}"
        case = ET.SubElement(suite, "testcase", attrs)
        status, message = gate.get("status"), _clean(gate.get("message"))
        if status == "failed":
            default = f"{gate.get('metric')} {_with_unit(gate.get('value'), gate.get('unit'))}"
            attrs = {"message": message or f"{default} over the limit", "type": "GateFailed"}
            ET.SubElement(case, "failure", attrs).text = _gate_details(gate)
        elif status == "skipped":
            ET.SubElement(case, "skipped", {"message": message or "not run"})
        elif status != "passed":
            attrs = {"message": message or f"gate status {status!r}", "type": "GateError"}
            ET.SubElement(case, "error", attrs).text = _gate_details(gate)
        ET.SubElement(case, "system-out").text = _gate_details(gate)

    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _write(path: str | Path, text: str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def write_junit(report: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`junit_xml` to ``path`` (UTF-8), creating parent folders.

    Args:
        report: The ``edgekit run`` report dict.
        path: Where to write the XML file.

    Returns:
        The path written.
    """
    return _write(path, junit_xml(report))


def _cell(text: Any) -> str:
    # A pipe or newline inside a cell would break the table row.
    return _ANSI.sub("", str(text)).replace("|", "\\|").replace("\n", " ")


def _section(title: str, header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return []
    lines = [f"#### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _verdict(gate: dict[str, Any]) -> str:
    status = str(gate.get("status"))
    text = _VERDICT.get(status, f"⚠️ {status}")
    if status != "passed" and gate.get("message"):
        text += f": {gate['message']}"
    return text


def _headline(report: dict[str, Any], gates: list[dict[str, Any]]) -> str:
    failed, skipped = _count(gates, "failed"), _count(gates, "skipped")
    ok = bool(report.get("passed")) and failed == 0
    if failed:
        verdict = f"{failed} of {len(gates)} gates failed"
    elif ok and not gates:
        verdict = "no gate set"
    elif ok:
        verdict = f"all {len(gates)} gates passed" if not skipped else "passed"
    else:
        code = report.get("exit_code")
        reason = _EXIT_REASONS.get(code, "error") if isinstance(code, int) else "error"
        verdict = f"failed (exit {code}: {reason})"
    if skipped:
        verdict += f", {skipped} of {len(gates)} skipped"
    return f"{'✅' if ok else '❌'} edgekit run {_recipe_name(report)}: {verdict}"


def markdown_summary(report: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """Render the run as Markdown for a PR comment or ``$GITHUB_STEP_SUMMARY``.

    Args:
        report: The ``edgekit run`` report dict (schema ``edgekit.run/1``).
        plots: Optional ``{target: image path}`` (as :func:`edgekit.run.plot.write_latency_plots`
            returns); paths are linked as given, so make them relative to the Markdown file.

    Returns:
        The Markdown text.
    """
    gates: list[dict[str, Any]] = list(report.get("gates") or [])
    targets: dict[str, Any] = report.get("targets") or {}
    recipe = report.get("recipe") or {}
    lines = [f"### {_headline(report, gates)}", ""]
    sha = str(recipe.get("sha256") or "")[:12]
    lines += [
        f"Model `{report.get('model')}`, recipe `{recipe.get('path')}` (sha256 {sha}), "
        f"edgekit {report.get('edgekit')}, {_num(report.get('seconds'))} s, "
        f"output `{report.get('out')}`.",
        "",
    ]

    latency = []
    for g in (g for g in gates if g.get("kind") == "latency"):
        entry = targets.get(g.get("target") or "") or {}
        budget = g.get("limit") if g.get("limit") is not None else entry.get("budget_ms")
        value = _with_unit(g.get("value"), g.get("unit") or "ms")
        evidence = g.get("evidence") or entry.get("evidence") or "n/a"
        if evidence == "estimated" and g.get("value") is not None:
            value = f"~{value}"  # an estimate reads as approximate even out of context
        target, metric = g.get("target"), g.get("metric") or "-"
        stats, misses = entry.get("stats_ms") or {}, entry.get("deadline_misses")
        over = "-" if misses is None or not stats.get("n") else f"{misses}/{stats['n']}"
        row = [target, _with_unit(budget, "ms"), metric, value, over, evidence, _verdict(g)]
        latency.append(row)
    header = ["target", "budget", "statistic", "value", "ticks over budget", "evidence", "verdict"]
    lines += _section("Latency", header, latency)
    lines += mermaid_latency(targets)

    fidelity = []
    for g in (g for g in gates if g.get("kind") == "fidelity"):
        unit = g.get("unit")
        value, limit = _with_unit(g.get("value"), unit), _with_unit(g.get("limit"), unit)
        fidelity.append([g.get("stage"), g.get("metric"), value, limit, _verdict(g)])
    lines += _section("Fidelity", ["stage", "metric", "value", "limit", "verdict"], fidelity)

    task = []  # closed-loop task success (edgekit eval), ratio to the teacher
    for g in (g for g in gates if g.get("kind") == "task"):
        value = "n/a" if g.get("value") is None else f"{g['value']:.3f}"
        task.append([g.get("name"), value, f"{g.get('limit'):g}", _verdict(g)])
    lines += _section("Task success (closed loop)", ["gate", "ratio", "limit", "verdict"], task)

    stages = []
    for s in report.get("stages") or []:
        artifact = f"`{s['artifact']}`" if s.get("artifact") else ""
        seconds = _with_unit(s.get("seconds"), "s")
        stages.append([s.get("stage"), s.get("status"), seconds, s.get("summary") or "", artifact])
    lines += _section("Stages", ["stage", "status", "seconds", "summary", "artifact"], stages)

    warnings = [str(w) for w in report.get("warnings") or []]
    if warnings:
        lines += ["#### Warnings", "", *(f"- ⚠️ {_cell(w)}" for w in warnings), ""]

    if plots:  # linked by name, not embedded: a step summary cannot show a file of the run
        lines += ["#### Latency plots (PNG, in the run folder / uploaded artifacts)", ""]
        lines += [f"- {t}: [{f}]({f})" for t, f in plots.items()]
        lines.append("")
    return "\n".join(lines)


def _mermaid_number(x: float) -> str:
    """A plain decimal (mermaid's parser takes no exponent): 4 decimals, trailing zeros cut."""
    text = f"{x:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def mermaid_latency(targets: dict[str, Any]) -> list[str]:
    """A Mermaid ``xychart-beta`` of each target's tick (p99 and p50 bars; an estimate, which
    has no distribution, as both) and its budget (a line), which GitHub renders in a step
    summary or a PR comment; [] when no target has a figure."""
    names, p99, p50, budgets = [], [], [], []
    for name, entry in targets.items():
        stats, est = entry.get("stats_ms") or {}, entry.get("estimated_ms")
        if stats.get("p50") is not None and stats.get("p99") is not None:
            names.append(str(name))
            p99.append(float(stats["p99"]))
            p50.append(float(stats["p50"]))
        elif est is not None:
            names.append(f"{name} (est.)")
            p99.append(float(est))
            p50.append(float(est))
        else:
            continue
        budgets.append(entry.get("budget_ms"))
    if not names:
        return []
    top = max(p99 + [float(b) for b in budgets if b is not None]) * 1.15 or 1.0
    labels = ", ".join('"' + n.replace('"', "'") + '"' for n in names)

    def series(xs: list[float]) -> str:
        return "[" + ", ".join(_mermaid_number(x) for x in xs) + "]"

    chart = [
        "```mermaid",
        "xychart-beta",
        '    title "Whole-tick latency (ms) vs budget"',
        f"    x-axis [{labels}]",
        f'    y-axis "ms" 0 --> {_mermaid_number(top)}',
        f"    bar {series(p99)}",
        f"    bar {series(p50)}",
    ]
    if all(b is not None for b in budgets):
        chart.append(f"    line {series([float(b) for b in budgets])}")
    key = "bars: tick p99 (behind) and p50 (in front), ms; line: the budget"
    key += "; (est.): a roofline estimate, no distribution"
    return ["#### Tick latency vs budget", "", *chart, "```", "", f"_{key}._", ""]


def write_markdown(
    report: dict[str, Any], path: str | Path, plots: dict[str, str] | None = None
) -> Path:
    """Write :func:`markdown_summary` to ``path`` (UTF-8), creating parent folders.

    Args:
        report: The ``edgekit run`` report dict.
        path: Where to write the Markdown file.
        plots: Optional ``{target: image path}`` to link, relative to ``path``'s folder.

    Returns:
        The path written.
    """
    return _write(path, markdown_summary(report, plots))
