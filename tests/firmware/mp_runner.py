"""Run firmware test modules under MicroPython (no pytest there).

usage: micropython mp_runner.py [test_module ...]   (default: every test_*.py beside this file)
Prints one line per failure with its traceback, then 'N passed, N failed'; exit status 1 on failure.
"""
import os
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def main(names):
    if not names:
        names = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    passed = failed = 0
    for name in names:
        try:
            mod = __import__(name)
        except Exception as exc:  # an import failure fails the whole module, loudly
            failed += 1
            print("FAIL %s (import)" % name)
            sys.print_exception(exc)
            continue
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            fn = getattr(mod, attr)
            if not callable(fn):
                continue
            try:
                fn()
                passed += 1
            except Exception as exc:
                failed += 1
                print("FAIL %s.%s" % (name, attr))
                sys.print_exception(exc)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))
