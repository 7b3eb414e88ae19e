"""The user-facing files speak of the package and its measurements only.

README, changelog, contributing guide, citation, the documentation pages, data/README.md,
the notebooks, the package's source (docstrings and command help) and the scripts that
write pages of docs/ never refer to work items ("issue 16", "the issue's target"), to
sessions, or to who was lent a machine: a measured figure is stated as a measurement,
with its machine and date, and history goes into CHANGELOG.md and the version log of
lni_geometry/rng.py (CONTRIBUTING.md, "Words in user-facing files").
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The usual slips, case-insensitive.
PATTERNS = [
    r"\bissues?\s*#?\d+",  # "issue 16", "issue #16", "issues 14"
    r"\bthe issue's\b",  # "the target", "the baseline"
    r"\bthis session\b",
    r"\bproject's sessions\b",
    r"\bwas lent\b",
    r"\bnot lent\b",
    r"\blent to\b",
    r"\banother agent\b",
    r"\bagent's jobs\b",
]
WORDS = re.compile("|".join(PATTERNS), re.IGNORECASE)

#: Lines in files that are being rewritten elsewhere, exempt until then: (path, text of
#: the line). Remove an entry when its line is reworded (a stale entry exempts nothing).
PENDING = set()


def user_facing_files():
    """Every file whose words a user reads."""
    files = [ROOT / name for name in ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "CITATION.cff",
                                      "pyproject.toml", "constraints.txt")]
    files.append(ROOT / "data" / "README.md")
    docs = ROOT / "docs"
    for path in sorted(docs.rglob("*")):
        rel = path.relative_to(docs).parts
        if rel[0] in ("_build", "generated", "notebooks") or not path.is_file():
            continue
        if path.suffix in (".md", ".rst", ".py", ".css", ".txt"):
            files.append(path)
    files += sorted((ROOT / "notebooks").glob("*.ipynb"))
    files += sorted((ROOT / "lni_geometry").rglob("*.py"))
    files += sorted((ROOT / "scripts").glob("*.py"))
    return [f for f in files if f.is_file()]


def offending_lines(text, path=""):
    """``(line number, line)`` of every line of ``text`` with one of the words."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if WORDS.search(line) and (path, line.strip().strip('",').strip()) not in PENDING:
            found.append((number, line.strip()))
    return found


def test_user_facing_files_have_none_of_the_words():
    files = user_facing_files()
    assert len(files) > 50 and ROOT / "README.md" in files and ROOT / "lni_geometry" / "rng.py" in files
    bad = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for number, line in offending_lines(path.read_text(encoding="utf-8"), rel):
            bad.append(f"{rel}:{number}: {line[:160]}")
    assert not bad, "words about work items or sessions in user-facing files:\n" + "\n".join(bad)


def test_the_check_finds_the_words():
    """Power check: each pattern catches a line it is meant for, and lets plain words pass."""
    for line in ["Against issue 16's targets: 3.4 cycles per normal.", "see Issue #14",
                 "met against the issue's baseline", "inside the issue's 0.005 target",
                 "measured in this session", "no GPU was lent to this project's sessions",
                 "this task was not lent a GPU", "while another agent's jobs loaded the machine"]:
        assert offending_lines(line), line
    for line in ["3.4 cycles per normal on Zen 4, AVX-512, 2026-12-01",
                 "Apply PAPER_RC to the whole session (for notebooks).",
                 "a known issue of scipy's levy_stable.sf", "the silent issue of overflow"]:
        assert not offending_lines(line), line
