"""The sampler study's table and cost / FID curve, from `benchmarks/sampler_study.sh`'s sweeps and one
`benchmarks/cpu_inpaint.py --no-quality` run of the same settings (its speed).

    python benchmarks/plot_sampler_study.py --study runs/study --speed runs/study/speed.json \\
        --png docs/images/sampler_study.png --markdown runs/study/table.md
    python benchmarks/plot_sampler_study.py --speed-paths   # the cpu_inpaint.py --paths of every setting

Each point: a setting's mean FID over its seeds (bars: the standard deviation) against its CPU seconds
per image (the inverse of the harness's images/s); the line joins the settings no cheaper one beats.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# Study folder name -> the cpu_inpaint.py path of its options (the sweet spot is added per row).
PATHS = {
    "T8": "int8+steps-8", "T12": "int8+steps-12", "T16": "int8+steps-16", "T24": "int8+steps-24",
    "T32": "int8+steps-32", "halton": "int8+steps-12+halton", "remask": "int8+steps-12+remask-0.1",
    "remask-T32": "int8+steps-32+remask-0.1",
    **{f"best{n}-{critic}": f"int8+steps-12+best-{n}-{critic}" for n in (2, 4, 8)
       for critic in ("likelihood", "agreement", "cycle")},
}
DEFAULT = ("T12", 7)  # the shipped defaults: T 12, sweet spot 7
SEED_NOISE = 0.133  # the shipped model's seed-to-seed FID std (docs/evaluation.md)


def label(group: str, sweet_spot) -> str:
    base = {"halton": "T12, Halton order", "remask": "T12, re-mask 0.1", "remask-T32": "T32, re-mask 0.1"}.get(group, group)
    if group.startswith("best"):
        n, critic = group[4:].split("-", 1)
        base = f"T12, best of {n} ({critic})"
    return f"{base}, sweet spot {sweet_spot}" if sweet_spot else f"{base}, all steps"


def speed_path(group: str, sweet_spot) -> str:
    return f"{PATHS[group]}+sweet-spot-{sweet_spot or 0}"


def collect(study: Path) -> list[dict]:
    """One entry per (study folder, sweet spot): mean and std over seeds of FID, LPIPS and hole PSNR."""
    groups: dict[tuple[str, object], list[dict]] = {}
    for path in sorted(study.glob("*/results/*.json")):
        row = json.loads(path.read_text())
        groups.setdefault((path.parts[-3], row["sweet_spot"] or None), []).append(row)
    entries = []
    for (group, sweet_spot), rows in groups.items():
        fids = [r["fid"] for r in rows]
        entries.append({"group": group, "sweet_spot": sweet_spot, "label": label(group, sweet_spot),
                        "seeds": sorted(r["seed"] for r in rows), "fid": statistics.fmean(fids),
                        "fid_std": statistics.stdev(fids) if len(fids) > 1 else None,
                        "lpips": statistics.fmean(r["lpips"] for r in rows),
                        "psnr_hole": statistics.fmean(r["psnr_hole"] for r in rows),
                        "path": speed_path(group, sweet_spot)})
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="runs/study")
    parser.add_argument("--speed", help="cpu_inpaint.py --json output of the same settings")
    parser.add_argument("--png", help="write the cost / FID curve here")
    parser.add_argument("--markdown", help="write the table here (else printed)")
    parser.add_argument("--speed-paths", action="store_true", help="print the cpu_inpaint.py --paths of the study's settings")
    args = parser.parse_args()
    entries = collect(Path(args.study))
    if args.speed_paths:
        print(",".join(sorted({e["path"] for e in entries})))
        return
    speed = {}
    if args.speed:
        speed = {r["path"]: r["images_per_s"] for r in json.loads(Path(args.speed).read_text())["results"]}
    for e in entries:
        e["seconds"] = 1 / speed[e["path"]] if e["path"] in speed else None
    entries.sort(key=lambda e: (e["seconds"] or 1e9, e["fid"]))
    base = next((e for e in entries if (e["group"], e["sweet_spot"]) == DEFAULT), None)
    lines = ["| setting | seeds | FID (± std over seeds) | LPIPS | hole PSNR | CPU s / image | × the default's time |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for e in entries:
        std = f" ± {e['fid_std']:.3f}" if e["fid_std"] is not None else ""
        ratio = f"{e['seconds'] / base['seconds']:.2f}" if base and base["seconds"] and e["seconds"] else "–"
        name = f"**{e['label']}** (the defaults)" if e is base else e["label"]
        lines.append(f"| {name} | {','.join(map(str, e['seeds']))} | {e['fid']:.3f}{std} | {e['lpips']:.4f} | "
                     f"{e['psnr_hole']:.2f} dB | {e['seconds']:.3f} | {ratio} |" if e["seconds"] else
                     f"| {name} | {','.join(map(str, e['seeds']))} | {e['fid']:.3f}{std} | {e['lpips']:.4f} | "
                     f"{e['psnr_hole']:.2f} dB | – | – |")
    table = "\n".join(lines) + "\n"
    if args.markdown:
        Path(args.markdown).write_text(table)
    print(table)
    if args.png:
        plot([e for e in entries if e["seconds"]], Path(args.png))


def plot(entries: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.2, 4.6), dpi=120)
    base = next((e for e in entries if (e["group"], e["sweet_spot"]) == DEFAULT), None)
    if base is not None:  # what the project's rule needs a setting to beat: 2 x the seed noise
        axis.axhspan(base["fid"] - 2 * SEED_NOISE, base["fid"] + 2 * SEED_NOISE, color="gray", alpha=0.12,
                     label=f"the defaults ± 2 × seed noise ({SEED_NOISE})")
    kinds = {"T": ("steps (confidence order)", "o"), "h": ("Halton order", "s"), "r": ("re-masking corrector", "^"),
             "b": ("best-of-N", "D")}
    for key, (name, marker) in kinds.items():
        members = [e for e in entries if e["group"][0] == key]
        if members:
            axis.errorbar([e["seconds"] for e in members], [e["fid"] for e in members],
                          yerr=[e["fid_std"] or 0 for e in members], fmt=marker, capsize=3, label=name)
    frontier, best = [], float("inf")
    for e in sorted(entries, key=lambda e: e["seconds"]):
        if e["fid"] < best:
            frontier.append(e)
            best = e["fid"]
    axis.plot([e["seconds"] for e in frontier], [e["fid"] for e in frontier], color="gray", lw=1, zorder=0,
              label="no cheaper setting beats it")
    for e in entries:
        axis.annotate(e["label"].replace(", sweet spot", " S").replace(", all steps", ""), (e["seconds"], e["fid"]),
                      fontsize=6, xytext=(3, 3), textcoords="offset points")
    axis.set_xscale("log")
    axis.set_xlabel("CPU seconds per image (2 cores, int8; log scale)")
    axis.set_ylabel("FID on select-cases (lower is better)")
    axis.set_title("What more decoding compute buys: catface64 on select-cases")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    main()
