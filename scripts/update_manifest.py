"""Recompute the size and sha256 of every entry in data/MANIFEST from the files on disk, and
fail if data/ holds a file the manifest does not list. Run after adding or retraining a
shipped file:  python scripts/update_manifest.py  (add the new row by hand first)."""
from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = DATA / "MANIFEST"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    lines = MANIFEST.read_text(encoding="utf-8").splitlines(keepends=True)
    comments = [line for line in lines if line.startswith("#")]
    rows = list(csv.DictReader([line for line in lines if not line.startswith("#")],
                               delimiter="\t"))
    fields = list(rows[0].keys()) if rows else []
    listed = set()
    for row in rows:
        f = DATA / row["path"]
        if not f.is_file():
            print(f"missing: {row['path']} ({row['name']})", file=sys.stderr)
            return 1
        row["bytes"] = str(f.stat().st_size)
        row["sha256"] = sha256(f)
        listed.add(f.resolve())
    unlisted = [p for p in DATA.rglob("*") if p.is_file() and p != MANIFEST
                and p.resolve() not in listed and p.name != "__init__.py"]
    if unlisted:
        print("not in MANIFEST: " + ", ".join(str(p.relative_to(DATA)) for p in unlisted),
              file=sys.stderr)
        return 1
    with open(MANIFEST, "w", encoding="utf-8", newline="") as fh:
        fh.writelines(comments)
        w = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} entries, {sum(int(r['bytes']) for r in rows)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
