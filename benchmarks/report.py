"""Metrics with targets, rendered as one table per section and as JSON."""

from __future__ import annotations

import json
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path

_OPS = {"<": operator.lt, "<=": operator.le, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Target:
    op: str
    value: float

    def met(self, figure: float) -> bool:
        return _OPS[self.op](figure, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    unit: str = ""
    target: Target | None = None

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.target.met(self.value)

    def to_json(self) -> dict:
        data = asdict(self)
        data["target"] = str(self.target) if self.target else None
        data["passed"] = self.passed
        return data


@dataclass
class Section:
    title: str
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, name: str, value: float | None, unit: str = "", target: Target | None = None) -> None:
        self.metrics.append(Metric(name, value, unit, target))

    def to_json(self) -> dict:
        return {"title": self.title, "metrics": [m.to_json() for m in self.metrics],
                "notes": self.notes, "details": self.details}


def _figure(metric: Metric) -> str:
    if metric.value is None:
        return "n/a"
    value = metric.value
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    return f"{text} {metric.unit}".strip()


def render(sections: list[Section]) -> str:
    """Plain-text tables: metric, figure, target and PASS/FAIL (blank when there is no target)."""
    lines: list[str] = []
    for section in sections:
        rows = [(m.name, _figure(m), f"{m.target} {m.unit}".strip() if m.target else "",
                 {True: "PASS", False: "FAIL", None: ""}[m.passed]) for m in section.metrics]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("metric", "figure", "target"))]
        lines += ["", f"== {section.title} ==",
                  f"{'metric':<{widths[0]}}  {'figure':>{widths[1]}}  {'target':<{widths[2]}}  result"]
        lines += [f"{n:<{widths[0]}}  {f:>{widths[1]}}  {t:<{widths[2]}}  {r}" for n, f, t, r in rows]
        lines += [f"  note: {note}" for note in section.notes]
    return "\n".join(lines)


def summary(sections: list[Section]) -> str:
    """One line: how many targets pass, and which fail."""
    judged = [m for s in sections for m in s.metrics if m.passed is not None]
    failed = [m.name for m in judged if not m.passed]
    line = f"{len(judged) - len(failed)}/{len(judged)} targets met"
    return line + ("; missed: " + "; ".join(failed) if failed else "")


def write_json(path: Path, sections: list[Section], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "sections": [s.to_json() for s in sections]}
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
