"""Offline stand-ins for an umbrella chart's remote dependencies.

`python stand_ins.py CHART_DIR` writes charts/<name>/Chart.yaml (the real
name and version, no templates) for every dependency of CHART_DIR/Chart.yaml
that comes from a repository and is not already in charts/. helm refuses to
lint or render a chart whose declared dependencies are missing, even disabled
ones, and no chart repository is reachable from the machines that validate.
Only ever run on a copy (scripts/validate-deploy.sh does).
"""

import pathlib
import sys

import yaml


def main(chart_dir: str) -> None:
    chart = pathlib.Path(chart_dir)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    for dep in meta.get("dependencies", []):
        if not dep.get("repository"):
            continue  # unpacked in charts/ already
        target = chart / "charts" / dep["name"]
        if target.exists() or list((chart / "charts").glob(f"{dep['name']}-*.tgz")):
            continue
        target.mkdir(parents=True)
        (target / "Chart.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v2",
                    "name": dep["name"],
                    "version": dep["version"],
                    "description": "Offline stand-in for validation: renders nothing.",
                }
            )
        )
        print(f"stand-in: {dep['name']} {dep['version']}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
