"""Writing results: Markdown tables, PNG line plots, JSON figures, and wall-clock timings.

Small helpers shared by every benchmark, so that their outputs look alike. Plots are drawn with
matplotlib's Agg backend (no display needed).
"""

import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MiB = 1024 * 1024


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; None cells are left empty, the first column is left-aligned."""
    width = len(header)
    lines = [
        "| " + " | ".join(str(h) for h in header) + " |",
        "|" + "---|" + "---:|" * (width - 1),
    ]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} cells for {width} columns: {row!r}")
        cells = ["" if cell is None else str(cell) for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (ending in one newline), creating the folder; returns the path. The file
    is replaced whole, so a run killed while writing leaves the previous one (a resumable
    run's partial file, bench.peers_passes, counts on it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """A result as JSON; a dict gets the `host` it was measured on (unless it names one),
    because the same code runs at other rates on another CPU and a reader must see which."""
    if isinstance(data, dict) and "host" not in data:
        data = {**data, "host": host()}
    return write_text(path, json.dumps(data, indent=1, ensure_ascii=False, default=_plain))


VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8")
"""The instruction sets that decide which kernels the encoders' runtimes pick."""


def host() -> dict[str, Any]:
    """The CPU this process runs on: a hypervisor's model name is often generic, so the
    family/model/stepping, the last-level cache and the vector extensions go with it."""
    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"))
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name", "unknown"),
        "family_model_stepping": "/".join(
            info.get(key, "?") for key in ("cpu family", "model", "stepping")
        ),
        "cores": os.cpu_count(),
        "last_level_cache": caches[-1].read_text().strip() if caches else None,
        "vector_flags": [flag for flag in VECTOR_FLAGS if flag in flags],
    }


def cpu(figures: dict[str, Any]) -> str:
    """The CPU a result file was measured on, as a table says it: the same code runs at other
    rates on another CPU, so times are compared on their own host; older runs did not record it."""
    if "host" not in figures:
        return "CPU: not recorded."
    host = figures["host"]
    return (
        f"CPU: {host['cpu']} ({host['family_model_stepping']}, family/model/stepping), "
        f"last-level cache {host['last_level_cache']}, {', '.join(host['vector_flags'])}."
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class Series:
    """One line of a plot: y against x, with a label; None values are gaps."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    style: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Panel:
    """One set of axes: lines, horizontal reference lines (label -> y) and axis labels."""

    series: Sequence[Series]
    ylabel: str
    hlines: Mapping[str, float] = field(default_factory=dict)
    title: str | None = None


def line_plot(
    path: str | os.PathLike[str],
    panels: Sequence[Panel],
    *,
    xlabel: str,
    xticks: Sequence[float] | None = None,
    log2_x: bool = False,
    top_axis: tuple[str, float] | None = None,
    suptitle: str | None = None,
) -> Path:
    """Draw `panels` side by side into a PNG; returns the path.

    Args:
        xlabel, xticks: the shared x axis (ticks labelled with their values).
        log2_x: a base-2 logarithmic x axis (even spacing for 32, 64, 128...).
        top_axis: (label, factor): a second x axis on top showing x·factor (e.g. bytes).
        suptitle: a title over all panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(8.0, 6.4 * len(panels)), 5.8),
        squeeze=False,
        layout="constrained",
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        for series in panel.series:
            points = [(x, y) for x, y in zip(series.x, series.y, strict=True) if _finite(y)]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(
                    xs, ys, label=series.label, **{"marker": "o", "markersize": 4, **series.style}
                )
        for i, (label, y) in enumerate(panel.hlines.items()):
            ax.axhline(y, color="black", linestyle=("--", ":", "-.")[i % 3], lw=1.2, label=label)
        if log2_x:
            ax.set_xscale("log", base=2)
        if xticks is not None:
            ax.xaxis.set_major_locator(FixedLocator(list(xticks)))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{t:g}" for t in xticks])
        if top_axis is not None:
            label, factor = top_axis
            top = ax.secondary_xaxis(
                "top", functions=(lambda x, f=factor: x * f, lambda x, f=factor: x / f)
            )
            top.set_xlabel(label)
            if xticks is not None:
                top.xaxis.set_major_locator(FixedLocator([t * factor for t in xticks]))
                top.xaxis.set_minor_locator(NullLocator())
                top.set_xticklabels([f"{t * factor:g}" for t in xticks])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.title:
            ax.set_title(panel.title)
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=min(3 * len(panels), len(labels)),
        fontsize="small",
        frameon=False,
    )
    if suptitle:
        fig.suptitle(suptitle)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class Timings:
    """Named wall-clock durations of a run's phases, in the order they were taken."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def markdown(self) -> str:
        return ", ".join(f"{name} {format_seconds(s)}" for name, s in self.seconds.items())


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, mean and count of timings in ms: the summary the speed figures keep."""
    values = np.asarray(ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": p50, "p95": p95, "p99": p99, "mean": values.mean(), "n": len(values)}


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s"


def page(title: str, about: str, body: Sequence[str], passes: Sequence[Any]) -> str:
    """A result's Markdown page: its title, what ran, its tables, and the load average at the
    start of each interleaved pass."""
    loads = ", ".join(f"{p['system']} {p['load_average'][0]:.2f}" for p in passes)
    return "\n".join(
        [
            f"# {title}",
            "",
            about,
            "",
            *body,
            f"- 1-minute load average at the start of each pass: {loads}",
            "",
        ]
    )
