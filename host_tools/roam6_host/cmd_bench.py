"""`roam6 bench NAME`: performance figures, printed as JSON.

Benchmarks are plugins in the `roam6.benchmarks` entry-point group, each a `register(subparsers)`
that sets `func=run(args) -> dict`; this command prints the dict as one JSON document.
"""
import json
import sys

from .cli import _load_plugins
from .heapsize import HELP as HEAP_HELP, heap_size

GROUP = "roam6.benchmarks"


def register(sub):
    p = sub.add_parser("bench", help="measure performance figures (JSON)",
                       description="Measure one of roam6's performance figures and print it as JSON "
                                   "(README, Performance). Example: roam6 bench hotpaths --out hot.json")
    bsub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    bsub.required = True
    for _name, reg in _load_plugins(GROUP):
        reg(bsub)
    p.set_defaults(func=None)
    # sub-benchmarks set their own func; wrap it so every result is printed the same way
    for name, choice in bsub.choices.items():
        inner = choice.get_default("func")
        choice.add_argument("--out", metavar="FILE", help="also write the JSON to this file")
        choice.set_defaults(func=_printer(inner))
        _same_heap_option(choice)


def _same_heap_option(parser):
    """A benchmark's --heap that does not parse itself is parsed like every other --heap of the CLI
    (roam6_host.heapsize: the text as `micropython -X heapsize=` takes it, checked up front)."""
    for a in parser._actions:
        if "--heap" in a.option_strings and a.type is None:
            a.type, a.metavar = heap_size, "SIZE"
            a.help = "%s; %s" % (a.help, HEAP_HELP) if a.help else HEAP_HELP


def _printer(inner):
    def run(args):
        result = inner(args)
        text = json.dumps(result, indent=2, sort_keys=True)
        print(text)
        if getattr(args, "out", None):
            with open(args.out, "w") as f:
                f.write(text + "\n")
        sys.stdout.flush()
        return 0

    return run
