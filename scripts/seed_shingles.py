"""Write the hashes of every 8-word shingle of the source articles to
tests/fixtures/seed_shingles.txt, so the test suite can prove the library shares no 8-word run
with them while the repository holds none of their text.

Usage: python scripts/seed_shingles.py SEEDS_DIR   (the folder of source articles)
Re-run it when the source articles change, and commit the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

from campaigns.originality import SHINGLE_WORDS, shingles

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "seed_shingles.txt"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python scripts/seed_shingles.py SEEDS_DIR", file=sys.stderr)
        return 1
    seeds = Path(argv[1])
    files = sorted(p for p in seeds.glob("*") if p.is_file())
    if not files:
        print(f"no source articles in {seeds}", file=sys.stderr)
        return 1
    hashes: set[str] = set()
    for path in files:
        hashes |= shingles(path.read_text(encoding="utf-8", errors="replace")).keys()
    header = (
        f"# SHA-256 (first 16 hex digits) of every {SHINGLE_WORDS}-word shingle of "
        f"{len(files)} source articles; made by scripts/seed_shingles.py "
        "(campaigns/originality.py normalises). No article text is stored here.\n"
    )
    OUT.write_text(header + "".join(f"{h}\n" for h in sorted(hashes)), encoding="utf-8")
    print(f"{len(hashes)} shingle hashes from {len(files)} articles -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
