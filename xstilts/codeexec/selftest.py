"""Toolchain self-test: before a language's samples are scored, a few known programs run in the same sandbox, with
the same limits and toolchain, and must end as expected: a correct program passes, one that fails its test is
`failed`, one with a compile (or type) error is `compile_error` where the language compiles. A language whose
toolchain misses any of them is unavailable: its samples are `toolchain_error` and it gets no pass@k (a broken
toolchain must never read as a model scoring 0).

The JavaScript and TypeScript programs also use an ES2021 API (String.prototype.replaceAll), so a tsc --lib or a node
older than the programs need shows here. Separately, each module the supported benchmarks' tests import (MBJSP:
lodash; MBTSP and HumanEval-TS: mathjs, heap-js) is imported once: a missing one is reported as a note (only the
problems that import it fail), not as an unavailable toolchain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from xstilts.codeexec.languages import Execution, Toolchain


@dataclass(frozen=True)
class Check:
    language: str
    name: str
    prompt: str
    completion: str
    test: str
    expect: Callable[[Toolchain], str]  # the status a working toolchain gives
    entry_point: str = "add"
    # Test dependencies (modules) this check imports: failing it is a note naming them, not unavailability.
    dependencies: tuple[str, ...] = ()

    def problem(self) -> dict:
        return {"task_id": f"xstilts-selftest/{self.language}/{self.name}", "language": self.language,
                "prompt": self.prompt, "test": self.test, "entry_point": self.entry_point}


def _always(status: str) -> Callable[[Toolchain], str]:
    return lambda tc: status


PASSED, FAILED, COMPILE_ERROR = _always("passed"), _always("failed"), _always("compile_error")


def _checks(language: str, prompt: str, test: str, good: str, wrong: str, compile_error: str | None,
            compile_expect: Callable[[Toolchain], str] = COMPILE_ERROR) -> list[Check]:
    checks = [Check(language, "passes", prompt, good, test, PASSED),
              Check(language, "fails-its-test", prompt, wrong, test, FAILED)]
    if compile_error is not None:
        checks.append(Check(language, "compile-error", prompt, compile_error, test, compile_expect))
    return checks


_JS_TEST = ('const assert = require("assert");\nassert.strictEqual(add(2, 3), 5);\nassert.strictEqual(add(-1, 1), 0);\n'
            'assert.strictEqual("a-b-c".replaceAll("-", ""), "abc");\n')
_TS_TEST = ("import * as assert from 'assert'\nassert.strictEqual(add(2, 3), 5);\nassert.strictEqual(add(-1, 1), 0);\n"
            'assert.strictEqual("a-b-c".replaceAll("-", ""), "abc");\n')
_TS_PROMPT = "const add = function (a: number, b: number): number {\n"

CHECKS: dict[str, list[Check]] = {
    "python": _checks("python", "def add(a, b):\n", "def check(candidate):\n    assert candidate(2, 3) == 5\n"
                      "    assert candidate(-1, 1) == 0\n", "    return a + b\n", "    return a - b\n", None),
    "javascript": _checks("javascript", "function add(a, b) {\n", _JS_TEST, "    return a + b;\n}\n",
                          "    return a - b;\n}\n", None) + [
        Check("javascript", "imports-lodash", "const _ = require('lodash');\nfunction add(a, b) {\n",
              "    return _.add(a, b);\n}\n", _JS_TEST, PASSED, dependencies=("lodash",))],
    # A type error whose program passes when run: a compile error in strict mode, a pass in mxeval-compatible mode.
    "typescript": _checks("typescript", _TS_PROMPT, _TS_TEST, "    return a + b;\n};\n", "    return a - b;\n};\n",
                          "    const sum: string = a + b;\n    return sum as any;\n};\n",
                          lambda tc: "passed" if tc.typescript_mode == "mxeval-compatible" else "compile_error") + [
        Check("typescript", "imports-mathjs-heap-js",
              "import * as math from 'mathjs'\nimport {Heap} from 'heap-js'\n\n" + _TS_PROMPT,
              "    const heap = new Heap<number>();\n    heap.push(math.add(a, b) as number);\n"
              "    return heap.pop() as number;\n};\n", _TS_TEST, PASSED, dependencies=("mathjs", "heap-js"))],
    "java": _checks("java", "import java.util.*;\n\nclass Add {\n    public static int add(int a, int b) {\n",
                    "\nclass Main {\n    public static void main(String[] args) {\n"
                    '        if (Add.add(2, 3) != 5 || Add.add(-1, 1) != 0) throw new AssertionError("add");\n    }\n}\n',
                    "        return a + b;\n    }\n}\n", "        return a - b;\n    }\n}\n",
                    '        return "5";\n    }\n}\n'),
    "cpp": _checks("cpp", "#include <bits/stdc++.h>\nusing namespace std;\n\nint add(int a, int b) {\n",
                   "\nint main() {\n    assert(add(2, 3) == 5);\n    assert(add(-1, 1) == 0);\n    return 0;\n}\n",
                   "    return a + b;\n}\n", "    return a - b;\n}\n", '    return "5";\n}\n'),
    "go": _checks("go", 'package main\n\nimport "fmt"\n\nfunc add(a int, b int) int {\n',
                  '\nfunc main() {\n\tif add(2, 3) != 5 || add(-1, 1) != 0 {\n\t\tpanic(fmt.Sprintf("add(2, 3) = %d", '
                  "add(2, 3)))\n\t}\n}\n", "\treturn a + b\n}\n", "\treturn a - b\n}\n", '\treturn "5"\n}\n'),
}


def checks_for(language: str) -> list[Check]:
    return CHECKS.get(language, [])


def _first_lines(text: str, limit: int = 400) -> str:
    text = " | ".join(line.strip() for line in text.strip().splitlines()[:4] if line.strip())
    return text if len(text) <= limit else text[:limit] + "…"


def verdict(language: str, toolchain: Toolchain, results: list[tuple[Check, Execution]]) -> dict:
    """The self-test's record for one language: `available`, the reason when not, each check's outcome, and the test
    dependencies that did not import."""
    rows, problems, missing = [], [], []
    for check, result in results:
        expected = check.expect(toolchain)
        ok = result.status == expected
        rows.append({"check": check.name, "expected": expected, "status": result.status, "ok": ok,
                     **({} if ok else {"stderr": _first_lines(result.stderr)})})
        if ok:
            continue
        if check.dependencies:  # tsc and node name the module they cannot find; else blame them all
            named = [m for m in check.dependencies if f"'{m}'" in result.stderr]
            missing += named or list(check.dependencies)
        else:
            problems.append(f"`{check.name}` expected {expected}, got {result.status}"
                            + (f" ({_first_lines(result.stderr, 240)})" if result.stderr.strip() else ""))
    record = {"available": not problems, "checks": rows, "missing_dependencies": missing,
              "seconds": round(sum(r.compile_s + r.duration_s for _, r in results), 3)}
    if problems:
        record["reason"] = f"{language} toolchain failed its self-test: " + "; ".join(problems)
    return record
