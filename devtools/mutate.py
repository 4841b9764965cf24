"""`make mutate`: mutation testing of the product code with mutmut, and what survived.

mutmut (settings in pyproject.toml, [tool.mutmut]) copies the code into
`mutants/`, where each function carries every mutant of itself: a flipped
comparison, `and` for `or`, a constant ±1, a dropped argument, a changed
string, None for a value... It runs the in-process tests listed there once,
to learn which tests call each function, and then, for each mutant, only
those tests, fastest first, until one fails (the mutant is killed) or all
pass (it survived: no test notices the change).

A mutant that changes nothing anyone can observe is equivalent, not a gap in
the tests: each is listed in devtools/equivalent_mutants.toml with the line
it makes and one line on why. The score counts the other, meaningful,
mutants; a mutant with no test calling its function counts as a survivor.

    python -m devtools.mutate                 # a fresh run of every mutant, then the report
    python -m devtools.mutate --report        # the report of the last run only
    python -m devtools.mutate 'payments.state.*'   # rerun some mutants (after a fresh run), then report
    python -m devtools.mutate --again         # after adding tests: retest what the last run did not kill

Exit status 1 when a meaningful mutant survived, or when an equivalence no
longer matches its mutant (the code changed: look again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENTS = ROOT / "devtools" / "equivalent_mutants.toml"

# mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code), grouped for the score.
# A run killed for taking too long (SIGXCPU, or SIGKILL past its wall-clock limit) or that crashed counts as killed.
KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
KILLED |= {-9: "timeout", -11: "crashed"}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}


@dataclass
class Mutant:
    name: str  # module.x_function__mutmut_N, as mutmut names it
    path: str  # the source file, relative to the repository
    exit_code: int | None

    @property
    def status(self) -> str:
        if self.exit_code is None:
            return "not checked"
        return KILLED.get(self.exit_code) or SURVIVED.get(self.exit_code) or f"suspicious (exit {self.exit_code})"

    @property
    def detected(self) -> bool:
        return self.exit_code in KILLED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to rerun (mutmut's names; * matches anything)")
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument("--again", action="store_true", help="retest every mutant the last run did not kill")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--as-toml", action="store_true", help="also print the survivors as equivalence entries")
    args = parser.parse_args(argv)

    os.chdir(ROOT)  # mutmut reads its settings and writes mutants/ relative to the working directory
    if args.again:
        args.names = [mutant.name for mutant in load_mutants() if not mutant.detected]
        args.report = args.report or not args.names  # nothing left to retest
    if not args.report:
        if not args.names:
            shutil.rmtree(MUTANTS, ignore_errors=True)  # a fresh run: no result from older code or tests is kept
        status = run_mutmut(args.names, args.jobs)
        if status:
            return status
        print()
    return report(load_mutants(), load_equivalents(), args.as_toml)


def tests_by_module() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutate"]["tests"]


def run_mutmut(names: list[str], jobs: int) -> int:
    """`mutmut run`, in this process, each mutant tested only by its own module's tests.

    mutmut learns which tests call each function; those are narrowed here
    to the test files pyproject.toml's [tool.mutate.tests] names for the
    function's module, before any mutant runs. A change deep in a helper is
    then judged by the tests that specify it, not by every test that
    happens to pass through it: a run takes minutes, not hours.
    """
    import mutmut.__main__ as mutmut_cli
    from mutmut.state import state

    allowed = {path.removesuffix(".py").replace("/", "."): set(files) for path, files in tests_by_module().items()}
    collect = mutmut_cli.collect_or_load_stats

    def collect_then_narrow(*args, **kwargs) -> None:
        collect(*args, **kwargs)
        tests = state().tests_by_mangled_function_name
        for function in tests:
            files = allowed.get(function.rsplit(".", 1)[0], set())
            tests[function] = {test for test in tests[function] if test.split("::")[0] in files}

    mutmut_cli.collect_or_load_stats = collect_then_narrow
    try:
        mutmut_cli.cli.main(["run", "--max-children", str(jobs), *names], standalone_mode=False)
    except SystemExit as exit:  # mutmut stops with exit() when its clean run fails
        return exit.code if isinstance(exit.code, int) else 1
    return 0


def load_mutants() -> list[Mutant]:
    mutants = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        path = str(meta.relative_to(MUTANTS)).removesuffix(".meta")
        for name, exit_code in json.loads(meta.read_text())["exit_code_by_key"].items():
            mutants.append(Mutant(name, path, exit_code))
    return mutants


def load_equivalents() -> dict[str, tuple[str, str]]:
    """Each equivalent mutant's name: (the line(s) it makes, why no test can tell it from the code)."""
    groups = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", [])
    return {name: (mutated, group["why"]) for group in groups for name, mutated in group["mutants"].items()}


def diff_of(mutant: Mutant) -> str:
    """The lines the mutant changes: `-` the original, `+` what it puts in their place."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(mutant.name, path=mutant.path)  # read from mutants/, in the working directory
    return "\n".join(line for line in diff.splitlines()[2:] if line.startswith(("+", "-")))


def mutated_lines(mutant: Mutant) -> str:
    """What the mutant puts in place of the original lines, each stripped: how an equivalence names it."""
    return "\n".join(line[1:].strip() for line in diff_of(mutant).splitlines() if line.startswith("+"))


def report(mutants: list[Mutant], equivalents: dict[str, tuple[str, str]], as_toml: bool = False) -> int:
    if not mutants:
        print("No results in mutants/: run `make mutate` first.")
        return 1
    by_name = {m.name: m for m in mutants}
    stale = []
    for name, (mutated, _why) in equivalents.items():
        mutant = by_name.get(name)
        if mutant is None or mutated_lines(mutant) != mutated.strip():
            stale.append((name, mutated, mutant))
    equivalent = set(equivalents) - {name for name, _, _ in stale}

    survivors = [m for m in mutants if not m.detected and m.name not in equivalent]
    for mutant in survivors:
        print(f"{mutant.status}: {mutant.name}")
        print("    " + diff_of(mutant).replace("\n", "\n    "))
    for name, mutated, mutant in stale:
        found = "no such mutant" if mutant is None else f"it now makes: {mutated_lines(mutant)!r}"
        print(f"stale equivalence: {name} was {mutated!r}; {found}")
    if as_toml and survivors:
        print("\n# The survivors in devtools/equivalent_mutants.toml's form, for those that are equivalent:")
        print('[[equivalent]]\nwhy = ""\n[equivalent.mutants]')
        for mutant in survivors:
            name, mutated = (json.dumps(text, ensure_ascii=False) for text in (mutant.name, mutated_lines(mutant)))
            print(f"{name} = {mutated}")

    counts: dict[str, Counter] = defaultdict(Counter)
    for mutant in mutants:
        kind = "equivalent" if mutant.name in equivalent else "killed" if mutant.detected else "survived"
        counts[mutant.path][kind] += 1
    print()
    print(f"{'module':<32} {'mutants':>8} {'equivalent':>11} {'killed':>7} {'survived':>9} {'score':>7}")
    total: Counter = Counter()
    for path in sorted(counts):
        total.update(counts[path])
        print(row(path, counts[path]))
    print(row("all", total))
    return 1 if survivors or stale else 0


def row(what: str, count: Counter) -> str:
    meaningful = count["killed"] + count["survived"]
    score = f"{100 * count['killed'] / meaningful:.1f}%" if meaningful else "-"
    mutants = meaningful + count["equivalent"]
    return f"{what:<32} {mutants:>8} {count['equivalent']:>11} {count['killed']:>7} {count['survived']:>9} {score:>7}"


if __name__ == "__main__":
    sys.exit(main())
