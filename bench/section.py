"""Writes a benchmark's results into BENCHMARKS.md between its markers, in one place for every
bench script: `<!-- NAME:start -->` ... `<!-- NAME:end -->` replaced, or, the first time,
appended under HEADING.

    python3 bench/section.py NAME HEADING TEXT     (from a shell script)
    section.write(name, heading, text)             (from Python)
"""

import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def write(name: str, heading: str, text: str) -> None:
    current = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text}\n{end}"
    if start in current and end in current:
        current = current[: current.index(start)] + block + current[current.index(end) + len(end):]
    else:
        current = current.rstrip() + f"\n\n## {heading}\n\n" + block + "\n"
    BENCHMARKS.write_text(current)


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2], sys.argv[3])
    print("BENCHMARKS.md updated")
