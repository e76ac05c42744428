"""Regenerate tests/data/shipped_predictions.json: the predictions of the shipped models that
tests/test_shipped_predictions.py pins (every shipped model but the property ones, which
tests/property/test_shipped.py pins).

The values come from the ``predict_<model>`` functions of that test file, run against whichever
``pmtoolkit`` Python imports. Pin from the commit whose behaviour is to be kept, in an untouched
copy, e.g.::

    git worktree add /tmp/pinbase <commit>
    PYTHONPATH=/tmp/pinbase python scripts/pin_shipped_predictions.py
    git worktree remove --force /tmp/pinbase

Run it only when a prediction is meant to change (a retrained model), never to make a refactor
pass.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = ROOT / "tests" / "test_shipped_predictions.py"


def _test_module():
    spec = importlib.util.spec_from_file_location("_shipped_predictions", TEST_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commit(folder: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + (" (with local changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path,
                        default=ROOT / "tests" / "data" / "shipped_predictions.json")
    parser.add_argument("-m", "--model", action="append",
                        help="re-pin only this model (repeatable); the others are kept")
    args = parser.parse_args(argv)

    import pmtoolkit

    tests = _test_module()
    package = Path(pmtoolkit.__file__).resolve().parent
    names = args.model or sorted(tests.PREDICT)
    unknown = [n for n in names if n not in tests.PREDICT]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {sorted(tests.PREDICT)}")
    pinned = json.loads(args.output.read_text())["models"] if args.model else {}
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        pinned[name] = {k: tests.as_pinned(v) for k, v in tests.PREDICT[name]().items()}
    doc = {"about": "Predictions of the shipped models pinned by "
                    "tests/test_shipped_predictions.py; written by "
                    "scripts/pin_shipped_predictions.py",
           "pinned_with": f"pmtoolkit {pmtoolkit.__version__} at commit {_commit(package)}",
           "models": {name: pinned[name] for name in sorted(pinned)}}
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.output} ({len(names)} model(s) pinned with pmtoolkit from {package})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
