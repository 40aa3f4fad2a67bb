"""Mutation scores per module from mutmut's results in mutants/ (`make mutate` runs
mutmut first): caught / checked, and the same without the mutants that change only
text meant for people, so that a wrong figure is never hidden behind a reworded message.

A mutant is "message-only" when the only tokens it changes are string literals that are
prose (an f-string, or a literal with a space in it: "duplicate id"), reworded or
replaced by None. Single words such as "on", "off" or "newest" are data, and their
mutants count.

    python -m tests.support.mutation_scores [--survivors] budget/core.py ...
"""

from __future__ import annotations

import io
import sys
import tokenize
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

CAUGHT = {"killed", "timeout", "caught by type check"}
UNCHECKED = {"not checked", "skipped", "check was interrupted by user"}
_IGNORED = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.COMMENT, tokenize.ENDMARKER}


def _tokens(lines: list[str]) -> list[tokenize.TokenInfo]:
    """The tokens of some lines of a diff (a statement may be cut off at either end)."""
    out: list[tokenize.TokenInfo] = []
    source = io.StringIO("\n".join(line.strip() for line in lines) + "\n")
    try:
        for t in tokenize.generate_tokens(source.readline):
            if t.type not in _IGNORED:
                out.append(t)
    except (tokenize.TokenError, IndentationError):
        pass  # an unclosed bracket at the end of the cut: the tokens so far are enough
    return out


def _prose(literal: str) -> bool:
    prefix = literal[:len(literal) - len(literal.lstrip("rRbBuUfF"))]
    return "f" in prefix.lower() or any(c.isspace() for c in literal)


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    lines = diff.splitlines()
    return ([x[1:] for x in lines if x.startswith("-") and not x.startswith("---")],
            [x[1:] for x in lines if x.startswith("+") and not x.startswith("+++")])


def message_only(diff: str) -> bool:
    """Only prose literals change: reworded, or replaced by None."""
    before, after = (_tokens(side) for side in changed_lines(diff))
    changes = [op for op in SequenceMatcher(None, [t.string for t in before],
                                            [t.string for t in after], autojunk=False
                                            ).get_opcodes() if op[0] != "equal"]
    if not changes:
        return False
    for _, i1, i2, j1, j2 in changes:
        old, new = before[i1:i2], after[j1:j2]
        if not old or not all(t.type == tokenize.STRING and _prose(t.string) for t in old):
            return False
        reworded = bool(new) and all(t.type == tokenize.STRING for t in new)
        if not (reworded or [t.string for t in new] == ["None"]):
            return False
    return True


def score(caught: int, checked: int) -> str:
    return f"{100.0 * caught / checked:.1f} %" if checked else "-"


def report(path: Path, survivors: bool) -> None:
    data = SourceFileMutationData(path=path)
    data.load()
    statuses = {name: status_by_exit_code[code] for name, code in data.exit_code_by_key.items()}
    checked = {n: s for n, s in statuses.items() if s not in UNCHECKED}
    messages = {n for n in checked if message_only(get_diff_for_mutant(n, path=path))}
    caught = {n for n, s in checked.items() if s in CAUGHT}
    left = Counter(s for n, s in checked.items() if n not in caught)
    print(f"{path}: {len(caught)} caught / {len(checked)} checked of {len(statuses)} mutants "
          f"= {score(len(caught), len(checked))}; without the {len(messages)} message-only: "
          f"{len(caught - messages)} / {len(checked.keys() - messages)} = "
          f"{score(len(caught - messages), len(checked.keys() - messages))}"
          + (f"; not caught: {dict(left)}" if left else ""))
    if survivors:
        for name in sorted(set(checked) - caught - messages):
            before, after = changed_lines(get_diff_for_mutant(name, path=path))
            print(f"  {checked[name]:<9} {name}")
            print("\n".join([f"      - {x.strip()}" for x in before]
                            + [f"      + {x.strip()}" for x in after]))


def main(argv: list[str]) -> int:
    survivors = "--survivors" in argv
    for arg in (a for a in argv if a != "--survivors"):
        if Path("mutants", f"{arg}.meta").exists():
            report(Path(arg), survivors)
        else:
            print(f"{arg}: no results yet (mutants/{arg}.meta is missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
