"""How an evaluation reads to a person: result lines for the console and the
count-vs-truth plot (the report itself comes from ``evaluate``)."""

from __future__ import annotations

from pathlib import Path


def flags(name: str, det: dict) -> list[str]:
    out = []
    if det.get("collapsed"):
        out.append("COLLAPSED")
    if name != "constant" and "skill" in det and not det.get("beats_constant", True):
        out.append("WORSE THAN CONSTANT")
    return out


def summary_lines(report: dict) -> list[str]:
    """Human-readable result lines for the console."""
    lines = []
    for name, det in report["detectors"].items():
        if "skipped" in det:
            lines.append(f"{name:18s} skipped: {det['skipped']}")
            continue
        mark = " <- recommended" if name == report.get("recommended") else ""
        raised = flags(name, det)
        flag = "  [" + ", ".join(raised) + "]" if raised else ""
        lines.append(f"{name:18s} MAE {det['mae']:6.2f}  skill {det['skill']:+.2f}  "
                     f"{det['frames']} frames{flag}{mark}")
        if det.get("calibration_deferred") or det.get("calibration_not_kept"):
            used = (det.get("calibration") or {}).get("deferred_frames_used", True)
            lines.append(f"{'':18s} {det['calibration_deferred']} calibration frames came "
                         "while the background was being built: measured once it was ready"
                         + ("" if used else " (not fitted: enough frames came later)")
                         + (f"; {det['calibration_not_kept']} not kept (over --hold-mb)"
                            if det.get("calibration_not_kept") else ""))
    lines.append(f"recommended: {report.get('recommended')} ({report.get('recommended_because')})")
    return lines


def plot_report(report: dict, path: str | Path) -> None:
    """Count and truth over time per detector, on the test frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["series"]
    fig, ax = plt.subplots(figsize=(14.5, 4.5))
    ax.plot(series["frame"], series["truth"], color="black", lw=1.2, label="truth")
    for name, det in report["detectors"].items():
        if name not in series:
            continue
        s = series[name]
        flag = " ".join(flags(name, det))
        constant = name == "constant"
        ax.plot(s["frame"], s["count"], lw=0.9, alpha=0.85,
                color="grey" if constant else None, ls="--" if constant else "-",
                label=f"{name} (MAE {det['mae']:.2f}, skill {det['skill']:+.2f}) {flag}",
                marker="." if det["frames"] < len(series["frame"]) else None)
    ax.set_xlabel("frame")
    ax.set_ylabel("people")
    pick = f", {report['train_pick']}" if report.get("train_pick") else ""
    ax.set_title(f"crowdwatch eval: {Path(report['source']).name} (calibrated on "
                 f"{report['train_frames']} frames{pick}; recommended: "
                 f"{report.get('recommended')})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # off the data
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
