"""The `roam6` command line.

Subcommands are plugins: each module named in the `roam6.commands` entry-point group (pyproject.toml)
has `register(subparsers)`, which adds its parser and sets `func=run(args) -> exit code`. Plugins let
hil/ add `roam6 hil ...` without host_tools importing hil (layers: hil -> host_tools -> firmware).
"""
import argparse
import sys
from importlib.metadata import entry_points

from .errors import UserError

GROUP = "roam6.commands"


def _load_plugins(group):
    """Yield (name, register) for each plugin whose module exists; a plugin whose own module is
    missing is an unbuilt command and is left out, any other import failure is a bug and raised."""
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        modname = ep.value.split(":")[0]
        try:
            yield ep.name, ep.load()
        except ModuleNotFoundError as exc:
            if exc.name and modname.startswith(exc.name):
                continue
            raise


class Parser(argparse.ArgumentParser):
    """argparse's own mistakes (invalid choice, unknown option, missing or bad argument) said the
    way roam6's are: `roam6: error: MESSAGE` and a `  -> roam6 COMMAND --help` line, exit 2 (no
    usage line). Subparsers are of the parser's class (add_subparsers' default), so the top
    parser being a Parser makes every (sub)command's one, plugins' included. --help is unchanged."""

    _deepest = None     # the innermost (sub)command the parse reached: the one the hint names

    def parse_known_args(self, args=None, namespace=None):
        # a subcommand's parser is entered from within its parent's parse: the last one entered
        # is the innermost (argparse reports "unrecognized arguments" from the top parser)
        Parser._deepest = self
        return super().parse_known_args(args, namespace)

    def error(self, message):
        cmd = Parser._deepest.prog if isinstance(Parser._deepest, Parser) else self.prog
        if not cmd.startswith(self.prog):
            cmd = self.prog
        self.exit(2, "roam6: error: %s\n  -> %s --help\n" % (" ".join(message.split()), cmd))


def version_text():
    """'roam6 X.Y.Z (firmware from DIR)': an editable install runs (and builds) its checkout's code."""
    import os
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("roam6")
    except PackageNotFoundError:
        v = "(not installed)"
    from .boards import FIRMWARE_DIR
    return "roam6 %s (firmware from %s)" % (v, os.path.abspath(FIRMWARE_DIR))


def build_parser():
    parser = Parser(
        prog="roam6",
        description="Mobile IPv6 for MicroPython boards: codec, home agent, build/flash/deploy, roaming bench.",
        epilog="start with: roam6 demo (as root: the virtual board roams 20 times and the report says what each "
               "roam cost). Each command's options and examples: roam6 COMMAND --help. More: README.md.",
    )
    parser.add_argument("--version", action="version", version=version_text(),
                        help="the installed roam6's version and the source tree its commands use")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for _name, register in _load_plugins(GROUP):
        register(sub)
    return parser


def main(argv=None):
    try:
        parser = build_parser()
        if not (sys.argv[1:] if argv is None else argv):
            parser.print_help(sys.stderr)     # a bare `roam6`: the list of commands, not only "required"
            return 2
        args = parser.parse_args(argv)
        return args.func(args) or 0
    except UserError as exc:
        print("roam6: error: %s" % exc, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("roam6: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
