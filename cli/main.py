"""``optrun``: the command-line entry point.

TensorFlow is imported only inside the commands that run something, so
``optrun --help``, ``optrun validate --help`` and ``optrun schema`` answer at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from optrun.errors import Terminated

from .errors import EXIT_FAILED, command_is_the_process, command_signals, ending, error_boundary
from .options import (
    ConfigArg,
    FlagCommand,
    FlagGroup,
    ForceOpt,
    JsonOpt,
    OutOpt,
    QuietOpt,
    ResumeOpt,
    SeedOpt,
    SetOpt,
    StrategyOpt,
    VerboseOpt,
    seed_override,
    strategy_override,
)
from .progress import PipeSafeConsole, tolerant
from .schema import schema
from .show import runs, show
from .startup import end_process, ignore_signals, import_tensorflow, setup_logging, stdout_to_stderr
from .sweep import sweep

app = typer.Typer(
    name="optrun",
    cls=FlagGroup,
    help="tf.contrib.opt for TensorFlow 2: scipy optimizers over TF variables, moving averages, "
    "variable clipping, and YAML-driven runs.",
    no_args_is_help=True,
    add_completion=True,  # optrun --install-completion / --show-completion (Typer's)
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from optrun.version import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Print optrun's version and exit."),
    ] = False,
) -> None:
    """tf.contrib.opt for TensorFlow 2: scipy optimizers over TF variables, moving averages,
    variable clipping, and YAML-driven runs."""


def _run(
    kind: str,
    config: Path | None,
    overrides: list[str],
    out: Path | None,
    resume: bool,
    force: bool,
    quiet: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    setup_logging(verbose, quiet)
    with command_signals():
        console = PipeSafeConsole(stderr=as_json)  # with --json, stdout carries the JSON only
        reporter: Any = None
        with error_boundary(verbose, as_json):
            from optrun.runner.interrupts import raise_deferred
            from optrun.spec.load import load_spec

            loaded = load_spec(config, overrides, default=kind, sweep=False)  # train and minimize ignore it
            import_tensorflow(verbose)
            raise_deferred()  # a signal put off while an import (of user code's) swallowed the first
            from optrun.runner import RunOptions, run_minimize, run_train
            from optrun.runner.reporting import NullReporter

            from .progress import RichReporter
            from .summary import summary

            reporter = NullReporter() if quiet else RichReporter(console)
            try:
                run = run_train if kind == "train" else run_minimize
                with stdout_to_stderr(as_json):
                    outcome = run(loaded, RunOptions(out=out, resume=resume, force=force, reporter=reporter))
                ending()  # the run is written: a signal now would only cut the summary short
            finally:
                if isinstance(reporter, RichReporter):
                    reporter.close()
        with tolerant(console.file):  # the run is done and its files written, whoever reads stdout
            if as_json:
                from optrun.runner.reporting import jsonable

                # Not a success (diverged, infeasible, ...): the exit code too, as for any failure.
                answer = outcome.result if outcome.success else {**outcome.result, "exit_code": EXIT_FAILED}
                typer.echo(json.dumps(jsonable(answer), indent=2, allow_nan=False))
            elif not quiet:
                summary(console, f"optrun {kind}: {loaded.spec.name} -> {outcome.out_dir}", outcome.result)
        if not outcome.success:
            raise typer.Exit(EXIT_FAILED)


def _common(overrides: list[str] | None, seed: int | None) -> list[str]:
    return [*(overrides or []), *seed_override(seed)]


@app.command(cls=FlagCommand)
def train(
    config: ConfigArg = None,
    overrides: SetOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    seed: SeedOpt = None,
    strategy: StrategyOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train with a Keras optimizer and optrun's wrappers (moving average, variable clipping)."""
    extra = [*strategy_override(strategy), *_common(overrides, seed)]
    _run("train", config, extra, out, resume, force, quiet, verbose, as_json)


@app.command(cls=FlagCommand)
def minimize(
    config: ConfigArg = None,
    method: Annotated[
        str | None,
        typer.Option(help="scipy.optimize.minimize method, or ipopt (IPOPT: the ipopt extra)."),
    ] = None,
    maxiter: Annotated[
        int | None, typer.Option(min=1, help="Iteration limit (options.maxiter; IPOPT's max_iter).")
    ] = None,
    overrides: SetOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    seed: SeedOpt = None,
    strategy: StrategyOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Minimize with scipy (or IPOPT) over the model's variables, with the spec's constraints and bounds."""
    extra = [*strategy_override(strategy), *_common(overrides, seed)]
    from optrun.spec.overrides import FlagOverride

    if method is not None:
        extra.append(FlagOverride(f"minimize.method={method}", "--method", method))
    if maxiter is not None:
        extra.append(FlagOverride(f"minimize.options.maxiter={maxiter}", "--maxiter", maxiter))
    _run("minimize", config, extra, out, resume, force, quiet, verbose, as_json)


@app.command(cls=FlagCommand)
def validate(
    configs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Experiment specs (YAML). Omitted: the built-in train and minimize experiments.",
            show_default=False,
        ),
    ] = None,
    overrides: SetOpt = None,
    strategy: StrategyOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check specs in one pass: schema, references, arguments, variable names, shapes. Writes nothing.

    Every problem of every file is reported, sorted by line; --json prints a list of
    {file, path, line, from_set, severity, message} objects. Exit code 2 if any spec has a problem.
    """
    from .validate import run_validate

    setup_logging(verbose, quiet)
    run_validate(configs or [], [*strategy_override(strategy), *(overrides or [])], quiet, verbose, as_json)


app.command(cls=FlagCommand)(schema)
app.command(cls=FlagCommand)(show)
app.command(cls=FlagCommand)(runs)
app.command(cls=FlagCommand)(sweep)


@app.command(cls=FlagCommand)
def version(quiet: QuietOpt = False, verbose: VerboseOpt = False, as_json: JsonOpt = False) -> None:
    """Print optrun's version (--json: {"version": ...})."""
    from optrun.version import __version__

    typer.echo(json.dumps({"version": __version__}) if as_json else __version__)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    With ``--json``, a usage error that Click reports before any command runs
    (an unknown flag, ``--maxiter 0``) also prints a JSON error object on
    stdout, as every other failure does.

    Args:
        argv: the arguments; None for the process's own (``sys.argv``). Only
            then, once a command that ran TensorFlow is done, the process ends
            without the interpreter's teardown (see :func:`.startup.end_process`),
            unless it is a worker of a multi-worker cluster.
    """
    import sys

    if argv is None:
        command_is_the_process()
    try:
        try:
            _dispatch(sys.argv[1:] if argv is None else argv)
        except (KeyboardInterrupt, Terminated) as error:  # before Typer or a command took charge of it
            if argv is not None:
                raise
            ignore_signals()
            word, code = ("terminated", 143) if isinstance(error, Terminated) else ("interrupted", 130)
            sys.stderr.write(f"{word}: {word} before the run started\n")
            sys.exit(code)
    except SystemExit as done:
        if argv is None:
            ignore_signals()
        # A worker of a multi-worker cluster (TF_CONFIG) keeps its teardown: TensorFlow's
        # shutdown barrier with the other workers is in it.
        ran_tensorflow = "tensorflow" in sys.modules and not os.environ.get("TF_CONFIG")
        if argv is None and ran_tensorflow and isinstance(done.code, int | None):
            end_process(done.code or 0)
        raise


def _dispatch(args: list[str]) -> None:
    import sys

    if "--json" not in args:
        app(args=args, prog_name="optrun")
        return
    from typer import rich_utils
    from typer.exceptions import Abort, TyperException

    try:
        code = app(args=args, prog_name="optrun", standalone_mode=False)
    except TyperException as error:  # Click's usage errors, found before any command runs
        rich_utils.rich_format_error(error)  # type: ignore[arg-type]  # the same box as without --json
        message, code = error.format_message(), error.exit_code
        typer.echo(json.dumps({"success": False, "error": message, "exit_code": code}))
        sys.exit(code)
    except Abort:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
