"""Report writers for ``edgekit run``: JUnit XML for CI test views, Markdown for PR comments.

Both take the run report dict (the JSON ``edgekit run`` prints, schema ``edgekit.run/1``) and
are pure apart from the ``write_*`` helpers. Each gate becomes one JUnit test case so that CI
tools (Jenkins xunit, GitLab, GitHub test reporters) show a failed budget as a failed test.
The XML follows the Jenkins xunit-plugin ``junit-10.xsd`` (a copy is in tests/data), which is
stricter than most readers: ``<testcase>`` takes no ``<properties>`` and ``<testsuites>`` no
``skipped`` count, so per-gate evidence goes into the test case's ``<system-out>``.
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
    lines = [
        f"gate: {gate.get('id', '')}",
        f"stage: {gate.get('stage') or ''}",
        f"target: {gate.get('target') or ''}",
        f"metric: {gate.get('metric', '')}",
        f"value: {_with_unit(gate.get('value'), unit)}",
        f"limit: {_with_unit(gate.get('limit'), unit)}",
        f"unit: {unit or ''}",
        f"evidence: {gate.get('evidence', '')}",
        f"method: {gate.get('method', '')}",
    ]
    if gate.get("evidence") == "estimated":
        # A CI reader skimming test output must not mistake a roofline estimate for a timing.
        lines.insert(0, "ESTIMATED, not measured on the target")
    if gate.get("message"):
        lines.append(f"message: {gate['message']}")
    return _clean("\n".join(lines))


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
    seconds = f"{max(float(report.get('seconds') or 0.0), 0.0):.3f}"
    counts = {"tests": str(len(gates)), "failures": str(failures), "errors": str(errors)}

    root = ET.Element("testsuites", {"name": "edgekit", **counts, "time": seconds})
    attrs = {"name": f"edgekit.{name}", **counts, "skipped": str(skipped), "time": seconds}
    suite = ET.SubElement(root, "testsuite", attrs)
    host = (report.get("environment") or {}).get("host")
    if host:
        suite.set("hostname", _clean(host))

    recipe = report.get("recipe") or {}
    props = ET.SubElement(suite, "properties")
    for key in ("name", "path", "sha256"):
        ET.SubElement(
            props, "property", {"name": f"recipe.{key}", "value": _clean(recipe.get(key))}
        )
    for key in ("model", "out", "edgekit", "exit_code"):
        ET.SubElement(props, "property", {"name": key, "value": _clean(report.get(key))})

    for gate in gates:
        # time 0: a gate only compares numbers; charging the stage's seconds to each of its
        # gates would multiply them in CI totals (the stage times are in the Markdown summary).
        attrs = {"name": _clean(gate.get("name") or gate.get("id") or "gate"), "time": "0"}
        attrs["classname"] = f"edgekit.{name}.{_clean(gate.get('kind') or 'gate')}"
        case = ET.SubElement(suite, "testcase", attrs)
        status, message = gate.get("status"), _clean(gate.get("message"))
        if status == "failed":
            default = f"{gate.get('metric')} {_with_unit(gate.get('value'), gate.get('unit'))}"
            attrs = {"message": message or f"{default} over the limit", "type": "GateFailed"}
            ET.SubElement(case, "failure", attrs).text = _gate_details(gate)
        elif status == "skipped":
            ET.SubElement(case, "skipped", {"message": message or "skipped"})
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
        target, metric = g.get("target"), g.get("metric")
        latency.append([target, _with_unit(budget, "ms"), metric, value, evidence, _verdict(g)])
    header = ["target", "budget", "statistic", "value", "evidence", "verdict"]
    lines += _section("Latency", header, latency)

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

    if plots:
        lines += ["#### Latency plots", ""]
        lines += [f"![{t} latency]({f})" for t, f in plots.items()]
        lines.append("")
    return "\n".join(lines)


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
