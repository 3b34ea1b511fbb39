"""The ``fastconv`` command line: ``fastconv COMMAND [options]``.

Commands
--------
demo
    Train a small CNN on handwritten digits with fastconv's layers and compare
    the compiled kernels' speed with the pure-NumPy reference kernels
    (:mod:`fastconv.demo`).
bench
    Run the kernel benchmarks (:func:`fastconv.bench.main`, which parses its
    own options; ``fastconv bench --help``), or with ``--models`` the
    whole-model benchmark (:func:`fastconv.bench_models.main`).
config
    Print :func:`fastconv.show_config`: version, kernels, threads.

Also reachable as ``python -m fastconv``.
"""
import argparse
import importlib
import importlib.util
import sys

import fastconv

from . import demo

__all__ = ["main", "make_parser"]

# Commands whose module parses its own arguments: "fastconv NAME ARGS..." calls
# fastconv.<module>.main(ARGS) and returns its exit status.
PASS_THROUGH = {"bench": "fastconv.bench"}


def make_parser():
    """The top-level parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="fastconv",
        description="Compiled CNN kernels for NumPy: demo, benchmarks, configuration.")
    parser.add_argument("--version", action="version",
                        version=f"fastconv {fastconv.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo_parser = commands.add_parser(
        "demo", help="train a small CNN on handwritten digits; compare speed "
                     "with the NumPy reference kernels",
        description=demo.description())
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(command_parser=demo_parser)
    commands.add_parser(
        "bench", add_help=False,
        help="benchmark the kernels against the NumPy reference (and PyTorch), or "
             "whole models against PyTorch (--models); 'fastconv bench --help' for its "
             "options")
    commands.add_parser("config", help="print version, kernels and threads")
    return parser


def _pass_through(name, argv):
    """Run ``fastconv.<module>.main(argv)`` for a pass-through command."""
    module_name = PASS_THROUGH[name]
    if importlib.util.find_spec(module_name) is None:
        print(f"fastconv {name}: not available: this installation of fastconv "
              f"{fastconv.__version__} has no {module_name} module",
              file=sys.stderr)
        return 2
    module = importlib.import_module(module_name)
    status = module.main(argv)
    return 0 if status is None else int(status)


def main(argv=None):
    """Entry point of the ``fastconv`` console script; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASS_THROUGH:
        # Everything after the command, --help included, belongs to it.
        return _pass_through(argv[0], argv[1:])
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run_checked(args, args.command_parser)
    if args.command == "config":
        fastconv.show_config()
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
