# The grpo unit-test harness. Runs a candidate program and its tests in one process and prints
# the verdict, prefixed with a nonce it read from fd 3 before any candidate code ran, only after
# every test ran. The candidate never sees the nonce on a descriptor, so exiting early or
# printing a fake verdict cannot score.
import ast, json, os, sys

_write = os.write


def _say(nonce, *words):
    _write(1, ("\n" + nonce + " " + " ".join(str(w) for w in words) + "\n").encode())


def _main():
    nonce = os.read(3, 64).decode()
    os.close(3)
    with open("spec.json") as f:
        spec = json.load(f)
    namespace = {"__name__": "solution"}
    try:
        code = compile(spec["program"], "solution.py", "exec")
    except (SyntaxError, ValueError) as e:
        _say(nonce, "compile_error", repr(e).replace("\n", " ")[:200])
        return
    try:
        exec(code, namespace)
    except MemoryError:
        _say(nonce, "memory_error")
        return
    except BaseException as e:  # SystemExit too: leaving before the tests is not a pass
        _say(nonce, "runtime_error", repr(e).replace("\n", " ")[:200])
        return
    if spec["kind"] == "humaneval":
        tests = _humaneval_tests(spec, namespace)
    else:
        tests = [compile(a, "test_%d" % i, "exec") for i, a in enumerate(spec["asserts"])]
    passed, memory = 0, False
    for test in tests:
        try:
            if callable(test):
                test()
            else:
                exec(test, namespace)
            passed += 1
        except MemoryError:
            memory = True
        except BaseException:
            pass
    if memory and passed < len(tests):
        _say(nonce, "memory_error")
    else:
        _say(nonce, "result", passed, len(tests))


def _humaneval_tests(spec, namespace):
    """One test per top-level statement of check(candidate) that holds an assert (run in order,
    with the statements before it), so the verdict can give partial credit."""
    test_source = spec["test"]
    exec(compile(test_source, "test.py", "exec"), namespace)
    candidate = namespace[spec["entry_point"]]
    check = next(
        node for node in ast.parse(test_source).body
        if isinstance(node, ast.FunctionDef) and node.name == "check"
    )
    param = check.args.args[0].arg
    scope = dict(namespace)
    scope[param] = candidate
    statements = [compile(ast.Module(body=[s], type_ignores=[]), "check", "exec") for s in check.body]
    has_assert = [any(isinstance(n, ast.Assert) for n in ast.walk(s)) for s in check.body]
    if not any(has_assert):
        return [lambda: namespace["check"](candidate)]
    tests, pending = [], []
    for statement, asserting in zip(statements, has_assert):
        pending.append(statement)
        if asserting:
            group = pending
            pending = []
            tests.append(lambda group=group: [exec(s, scope) for s in group])
    return tests


_main()
