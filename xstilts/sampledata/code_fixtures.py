"""The project's own execution problems: three small functions in each of the six languages, written in the
HumanEval/MBXP format (prompt ends at the function header, the canonical solution is the body, the test is the
harness). Running the canonical solutions must pass everywhere; tests and `xstilts code-eval --bench` use them."""

from __future__ import annotations


# (name, prompt, canonical_solution, test) per language; the three problems are the same in each language:
# sum_even_squares (sum of the squares of the even numbers), is_palindrome (exact, case-sensitive), longest_run
# (length of the longest run of equal neighbours; 0 for an empty list).
_PYTHON = [
    ("sum_even_squares",
     'def sum_even_squares(xs):\n    """Sum of the squares of the even numbers in xs.\n'
     '    >>> sum_even_squares([1, 2, 3, 4])\n    20\n    """\n',
     "    return sum(x * x for x in xs if x % 2 == 0)\n",
     "def check(candidate):\n    assert candidate([1, 2, 3, 4]) == 20\n    assert candidate([]) == 0\n"
     "    assert candidate([-2, 5, 0]) == 4\n    assert candidate([7, 9]) == 0\n"),
    ("is_palindrome",
     'def is_palindrome(s):\n    """Whether s reads the same backwards (case-sensitive).\n'
     "    >>> is_palindrome('abba')\n    True\n    \"\"\"\n",
     "    return s == s[::-1]\n",
     "def check(candidate):\n    assert candidate('abba') is True\n    assert candidate('') is True\n"
     "    assert candidate('abca') is False\n    assert candidate('Aba') is False\n    assert candidate('racecar')\n"),
    ("longest_run",
     'def longest_run(xs):\n    """Length of the longest run of equal neighbouring elements (0 if xs is empty).\n'
     '    >>> longest_run([1, 1, 2, 2, 2, 1])\n    3\n    """\n',
     "    best = run = 0\n    for i, x in enumerate(xs):\n        run = run + 1 if i and xs[i - 1] == x else 1\n"
     "        best = max(best, run)\n    return best\n",
     "def check(candidate):\n    assert candidate([1, 1, 2, 2, 2, 1]) == 3\n    assert candidate([]) == 0\n"
     "    assert candidate([5]) == 1\n    assert candidate([1, 2, 3]) == 1\n    assert candidate([4, 4, 4, 4]) == 4\n"),
]

_JS_TEST_HEAD = 'const _ = require("lodash");\nfunction check(actual, expected, i) {\n' \
                '    if (!_.isEqual(actual, expected)) throw new Error("test " + i + ": got " + JSON.stringify(actual));\n}\n'
_JAVASCRIPT = [
    ("sumEvenSquares",
     "/**\n * Sum of the squares of the even numbers in xs.\n * > sumEvenSquares([1, 2, 3, 4])\n * 20\n */\n"
     "function sumEvenSquares(xs) {\n",
     "    return xs.filter(x => x % 2 === 0).reduce((acc, x) => acc + x * x, 0);\n}\n",
     _JS_TEST_HEAD + "check(sumEvenSquares([1, 2, 3, 4]), 20, 1);\ncheck(sumEvenSquares([]), 0, 2);\n"
     "check(sumEvenSquares([-2, 5, 0]), 4, 3);\ncheck(sumEvenSquares([7, 9]), 0, 4);\n"),
    ("isPalindrome",
     "/**\n * Whether s reads the same backwards (case-sensitive).\n * > isPalindrome('abba')\n * true\n */\n"
     "function isPalindrome(s) {\n",
     "    return s === s.split('').reverse().join('');\n}\n",
     _JS_TEST_HEAD + "check(isPalindrome('abba'), true, 1);\ncheck(isPalindrome(''), true, 2);\n"
     "check(isPalindrome('abca'), false, 3);\ncheck(isPalindrome('Aba'), false, 4);\n"
     "check(isPalindrome('racecar'), true, 5);\n"),
    ("longestRun",
     "/**\n * Length of the longest run of equal neighbouring elements (0 if xs is empty).\n"
     " * > longestRun([1, 1, 2, 2, 2, 1])\n * 3\n */\nfunction longestRun(xs) {\n",
     "    let best = 0, run = 0;\n    for (let i = 0; i < xs.length; i++) {\n"
     "        run = i > 0 && xs[i - 1] === xs[i] ? run + 1 : 1;\n        best = Math.max(best, run);\n    }\n"
     "    return best;\n}\n",
     _JS_TEST_HEAD + "check(longestRun([1, 1, 2, 2, 2, 1]), 3, 1);\ncheck(longestRun([]), 0, 2);\n"
     "check(longestRun([5]), 1, 3);\ncheck(longestRun([1, 2, 3]), 1, 4);\ncheck(longestRun([4, 4, 4, 4]), 4, 5);\n"),
]

_TS_TEST_HEAD = "import * as assert from 'assert';\n"
_TYPESCRIPT = [
    ("sumEvenSquares",
     "/**\n * Sum of the squares of the even numbers in xs.\n * >>> sumEvenSquares([1, 2, 3, 4])\n * >>> 20\n */\n"
     "const sumEvenSquares = function (xs: Array<number>): number {\n",
     "    return xs.filter(x => x % 2 === 0).reduce((acc, x) => acc + x * x, 0);\n};\n",
     _TS_TEST_HEAD + "assert.deepEqual(sumEvenSquares([1, 2, 3, 4]), 20);\nassert.deepEqual(sumEvenSquares([]), 0);\n"
     "assert.deepEqual(sumEvenSquares([-2, 5, 0]), 4);\nassert.deepEqual(sumEvenSquares([7, 9]), 0);\n"),
    ("isPalindrome",
     "/**\n * Whether s reads the same backwards (case-sensitive).\n * >>> isPalindrome('abba')\n * >>> true\n */\n"
     "const isPalindrome = function (s: string): boolean {\n",
     "    return s === s.split('').reverse().join('');\n};\n",
     _TS_TEST_HEAD + "assert.strictEqual(isPalindrome('abba'), true);\nassert.strictEqual(isPalindrome(''), true);\n"
     "assert.strictEqual(isPalindrome('abca'), false);\nassert.strictEqual(isPalindrome('Aba'), false);\n"
     "assert.strictEqual(isPalindrome('racecar'), true);\n"),
    ("longestRun",
     "/**\n * Length of the longest run of equal neighbouring elements (0 if xs is empty).\n"
     " * >>> longestRun([1, 1, 2, 2, 2, 1])\n * >>> 3\n */\nconst longestRun = function (xs: Array<number>): number {\n",
     "    let best = 0, run = 0;\n    for (let i = 0; i < xs.length; i++) {\n"
     "        run = i > 0 && xs[i - 1] === xs[i] ? run + 1 : 1;\n        best = Math.max(best, run);\n    }\n"
     "    return best;\n};\n",
     _TS_TEST_HEAD + "assert.strictEqual(longestRun([1, 1, 2, 2, 2, 1]), 3);\nassert.strictEqual(longestRun([]), 0);\n"
     "assert.strictEqual(longestRun([5]), 1);\nassert.strictEqual(longestRun([1, 2, 3]), 1);\n"
     "assert.strictEqual(longestRun([4, 4, 4, 4]), 4);\n"),
]

_JAVA_HEAD = "import java.util.*;\n\n"


def _java_main(calls: str) -> str:
    return ("\nclass Main {\n    static void check(boolean ok, int i) {\n"
            '        if (!ok) throw new RuntimeException("test " + i + " failed");\n    }\n\n'
            "    public static void main(String[] args) {\n" + calls + "    }\n}\n")


_JAVA = [
    ("sumEvenSquares",
     _JAVA_HEAD + "class SumEvenSquares {\n    /**\n     * Sum of the squares of the even numbers in xs.\n"
     "     * > sumEvenSquares([1, 2, 3, 4])\n     * 20\n     */\n"
     "    public static int sumEvenSquares(List<Integer> xs) {\n",
     "        int total = 0;\n        for (int x : xs) if (x % 2 == 0) total += x * x;\n        return total;\n    }\n}\n",
     _java_main("        check(SumEvenSquares.sumEvenSquares(Arrays.asList(1, 2, 3, 4)) == 20, 1);\n"
                "        check(SumEvenSquares.sumEvenSquares(Arrays.asList()) == 0, 2);\n"
                "        check(SumEvenSquares.sumEvenSquares(Arrays.asList(-2, 5, 0)) == 4, 3);\n"
                "        check(SumEvenSquares.sumEvenSquares(Arrays.asList(7, 9)) == 0, 4);\n")),
    ("isPalindrome",
     _JAVA_HEAD + "class IsPalindrome {\n    /**\n     * Whether s reads the same backwards (case-sensitive).\n"
     "     * > isPalindrome(\"abba\")\n     * true\n     */\n    public static boolean isPalindrome(String s) {\n",
     "        return new StringBuilder(s).reverse().toString().equals(s);\n    }\n}\n",
     _java_main('        check(IsPalindrome.isPalindrome("abba"), 1);\n        check(IsPalindrome.isPalindrome(""), 2);\n'
                '        check(!IsPalindrome.isPalindrome("abca"), 3);\n        check(!IsPalindrome.isPalindrome("Aba"), 4);\n'
                '        check(IsPalindrome.isPalindrome("racecar"), 5);\n')),
    ("longestRun",
     _JAVA_HEAD + "class LongestRun {\n    /**\n     * Length of the longest run of equal neighbouring elements "
     "(0 if xs is empty).\n     * > longestRun([1, 1, 2, 2, 2, 1])\n     * 3\n     */\n"
     "    public static int longestRun(List<Integer> xs) {\n",
     "        int best = 0, run = 0;\n        for (int i = 0; i < xs.size(); i++) {\n"
     "            run = i > 0 && xs.get(i - 1).equals(xs.get(i)) ? run + 1 : 1;\n"
     "            best = Math.max(best, run);\n        }\n        return best;\n    }\n}\n",
     _java_main("        check(LongestRun.longestRun(Arrays.asList(1, 1, 2, 2, 2, 1)) == 3, 1);\n"
                "        check(LongestRun.longestRun(Arrays.asList()) == 0, 2);\n"
                "        check(LongestRun.longestRun(Arrays.asList(5)) == 1, 3);\n"
                "        check(LongestRun.longestRun(Arrays.asList(1, 2, 3)) == 1, 4);\n"
                "        check(LongestRun.longestRun(Arrays.asList(4, 4, 4, 4)) == 4, 5);\n")),
]

_CPP_HEAD = "#include <bits/stdc++.h>\nusing namespace std;\n\n"


def _cpp_main(calls: str) -> str:
    return ("\nvoid check(bool ok, int i) {\n    if (!ok) throw runtime_error(\"test \" + to_string(i) + \" failed\");\n}\n\n"
            "int main() {\n" + calls + "    return 0;\n}\n")


_CPP = [
    ("sumEvenSquares",
     _CPP_HEAD + "/**\n * Sum of the squares of the even numbers in xs.\n * > sumEvenSquares({1, 2, 3, 4})\n * 20\n */\n"
     "int sumEvenSquares(vector<int> xs) {\n",
     "    int total = 0;\n    for (int x : xs) if (x % 2 == 0) total += x * x;\n    return total;\n}\n",
     _cpp_main("    check(sumEvenSquares({1, 2, 3, 4}) == 20, 1);\n    check(sumEvenSquares({}) == 0, 2);\n"
               "    check(sumEvenSquares({-2, 5, 0}) == 4, 3);\n    check(sumEvenSquares({7, 9}) == 0, 4);\n")),
    ("isPalindrome",
     _CPP_HEAD + "/**\n * Whether s reads the same backwards (case-sensitive).\n * > isPalindrome(\"abba\")\n * true\n */\n"
     "bool isPalindrome(string s) {\n",
     "    return string(s.rbegin(), s.rend()) == s;\n}\n",
     _cpp_main('    check(isPalindrome("abba"), 1);\n    check(isPalindrome(""), 2);\n'
               '    check(!isPalindrome("abca"), 3);\n    check(!isPalindrome("Aba"), 4);\n'
               '    check(isPalindrome("racecar"), 5);\n')),
    ("longestRun",
     _CPP_HEAD + "/**\n * Length of the longest run of equal neighbouring elements (0 if xs is empty).\n"
     " * > longestRun({1, 1, 2, 2, 2, 1})\n * 3\n */\nint longestRun(vector<int> xs) {\n",
     "    int best = 0, run = 0;\n    for (size_t i = 0; i < xs.size(); i++) {\n"
     "        run = i > 0 && xs[i - 1] == xs[i] ? run + 1 : 1;\n        best = max(best, run);\n    }\n"
     "    return best;\n}\n",
     _cpp_main("    check(longestRun({1, 1, 2, 2, 2, 1}) == 3, 1);\n    check(longestRun({}) == 0, 2);\n"
               "    check(longestRun({5}) == 1, 3);\n    check(longestRun({1, 2, 3}) == 1, 4);\n"
               "    check(longestRun({4, 4, 4, 4}) == 4, 5);\n")),
]


def _go_main(calls: str) -> str:
    return ('\nfunc check(ok bool, i int) {\n\tif !ok {\n\t\tpanic(fmt.Sprintf("test %d failed", i))\n\t}\n}\n\n'
            "func main() {\n" + calls + "}\n")


_GO_HEAD = 'package main\n\nimport "fmt"\n\n'
_GO = [
    ("sum_even_squares",
     _GO_HEAD + "// Sum of the squares of the even numbers in xs.\n// >>> sum_even_squares([]int{1, 2, 3, 4})\n// >>> 20\n"
     "func sum_even_squares(xs []int) int {\n",
     "\ttotal := 0\n\tfor _, x := range xs {\n\t\tif x%2 == 0 {\n\t\t\ttotal += x * x\n\t\t}\n\t}\n\treturn total\n}\n",
     _go_main("\tcheck(sum_even_squares([]int{1, 2, 3, 4}) == 20, 1)\n\tcheck(sum_even_squares([]int{}) == 0, 2)\n"
              "\tcheck(sum_even_squares([]int{-2, 5, 0}) == 4, 3)\n\tcheck(sum_even_squares([]int{7, 9}) == 0, 4)\n")),
    ("is_palindrome",
     _GO_HEAD + "// Whether s reads the same backwards (case-sensitive).\n// >>> is_palindrome(\"abba\")\n// >>> true\n"
     "func is_palindrome(s string) bool {\n",
     "\tfor i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {\n\t\tif s[i] != s[j] {\n\t\t\treturn false\n\t\t}\n\t}\n"
     "\treturn true\n}\n",
     _go_main('\tcheck(is_palindrome("abba"), 1)\n\tcheck(is_palindrome(""), 2)\n\tcheck(!is_palindrome("abca"), 3)\n'
              '\tcheck(!is_palindrome("Aba"), 4)\n\tcheck(is_palindrome("racecar"), 5)\n')),
    ("longest_run",
     _GO_HEAD + "// Length of the longest run of equal neighbouring elements (0 if xs is empty).\n"
     "// >>> longest_run([]int{1, 1, 2, 2, 2, 1})\n// >>> 3\nfunc longest_run(xs []int) int {\n",
     "\tbest, run := 0, 0\n\tfor i, x := range xs {\n\t\tif i > 0 && xs[i-1] == x {\n\t\t\trun++\n\t\t} else {\n"
     "\t\t\trun = 1\n\t\t}\n\t\tif run > best {\n\t\t\tbest = run\n\t\t}\n\t}\n\treturn best\n}\n",
     _go_main("\tcheck(longest_run([]int{1, 1, 2, 2, 2, 1}) == 3, 1)\n\tcheck(longest_run([]int{}) == 0, 2)\n"
              "\tcheck(longest_run([]int{5}) == 1, 3)\n\tcheck(longest_run([]int{1, 2, 3}) == 1, 4)\n"
              "\tcheck(longest_run([]int{4, 4, 4, 4}) == 4, 5)\n")),
]

_BY_LANGUAGE = {"python": _PYTHON, "javascript": _JAVASCRIPT, "typescript": _TYPESCRIPT, "java": _JAVA,
                "cpp": _CPP, "go": _GO}


def fixture_problems(languages: tuple[str, ...] | None = None) -> list[dict]:
    """The fixture problems (HumanEval/MBXP rows with canonical solutions), optionally of some languages only."""
    rows = []
    for language, problems in _BY_LANGUAGE.items():
        if languages is not None and language not in languages:
            continue
        for number, (entry_point, prompt, solution, test) in enumerate(problems):
            rows.append({"task_id": f"xstilts-{language}/{number}", "language": language, "prompt": prompt,
                         "canonical_solution": solution, "test": test, "entry_point": entry_point})
    return rows


def canonical_samples(problems: list[dict], copies: int = 1) -> list[dict]:
    """Each problem's canonical solution as `copies` samples."""
    return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems for _ in range(copies)]
