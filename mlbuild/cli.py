"""The ``mlbuild`` command: run a pipeline, explain its state, inspect models.lock."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from mlbuild.errors import ERROR_KINDS, EXIT_INTERRUPTED, EXIT_USAGE, MlbuildError

EXIT_CODES = "\n".join(
    ["exit codes:", "  0  success", f"  {EXIT_USAGE}  bad command line"]
    + [f"  {cls.exit_code}  {cls.kind}" + (" (or an unexpected crash)" if cls is MlbuildError else "")
       for cls in ERROR_KINDS]
    + [f"  {EXIT_INTERRUPTED}  interrupted (Ctrl-C, or 143 for SIGTERM); a Batch job the command submitted is terminated"]
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlbuild",
        description="Continuous integration for machine-learning projects, as Luigi tasks.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    module = argparse.ArgumentParser(add_help=False)
    module.add_argument("--module", default=os.environ.get("MLBUILD_MODULE", "tasks"),
                        help="the project's Python module (default: tasks)")
    # A command that runs the project's tasks: the module option and the exit codes.
    runs_tasks = {"parents": [module], "epilog": EXIT_CODES,
                  "formatter_class": argparse.RawDescriptionHelpFormatter}

    run = sub.add_parser("run", **runs_tasks, add_help=False,
                         help="run a task and everything it needs, with progress")
    run.add_argument("task", nargs="?", help="task family, e.g. FullPipeline")
    run.add_argument("-h", "--help", action="store_true",
                     help="show this help, and the task's options when a task is named")
    run.set_defaults(usage=run)
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("-v", "--verbose", action="store_true", help="show Luigi's own log")

    status = sub.add_parser("status", parents=[module],
                            help="every task of a pipeline: fingerprint, complete or why not")
    status.add_argument("task", nargs="?", default="FullPipeline")

    stage = sub.add_parser(
        "stage", **runs_tasks,
        help="run one CI stage ([stages] in luigi.cfg); JUnit XML in reports/junit/",
        description="Run one stage of the release cycle and nothing else. The stages are "
                    "named in the [stages] section of luigi.cfg (train, image, unit, "
                    "integration, acceptance, fetch-test-data, accuracy, push); deploy and retrain "
                    "are built in.")
    stage.add_argument("name", help="the stage")
    stage.add_argument("--tier", choices=["fast", "full"],
                       help="for the accuracy stage: the tier (default fast)")
    stage.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    stage.add_argument("--in-image", action="store_true",
                       help="run the stage in a container of the test image (`mlbuild stage "
                            "test-image` builds it), the workspace mounted")
    stage.add_argument("--env", choices=["staging", "production"],
                       help="for the deploy stage: the environment (staging from develop, "
                            "production from main)")
    stage.add_argument("--to", metavar="DIGEST",
                       help="for the deploy stage: roll back to a digest the environment held")
    stage.add_argument("--push", action="store_true",
                       help="for the retrain stage: push the proposed retrain/... branch")
    stage.add_argument("--remote", default="origin",
                       help="for the retrain stage: the git remote to push to (default origin)")

    deploy = sub.add_parser("deploy", help="the deployments of the pushed images")
    deploy.add_argument("action", choices=["history"])
    deploy.add_argument("--env", required=True, choices=["staging", "production"])

    ci = sub.add_parser(
        "ci", help="run the release cycle's stages here (configs/ci.toml), or write the "
                   "Jenkinsfile from it",
        description="The release cycle is declared once, in configs/ci.toml. `mlbuild ci` runs "
                    "its stages here, in order, as Jenkins would on --branch; `mlbuild ci "
                    "jenkinsfile` writes the Jenkinsfile from it. A Jenkinsfile that is not the "
                    "generated one is refused: mlbuild never reads Groovy.")
    ci.add_argument("action", nargs="?", choices=["run", "jenkinsfile"], default="run")
    ci.add_argument("--config", default="configs/ci.toml", help="the declaration of the cycle")
    ci.add_argument("--jenkinsfile", help="the Jenkinsfile that must match it (default: "
                                          "Jenkinsfile, when it exists)")
    ci.add_argument("--check", action="store_true",
                    help="with jenkinsfile: write nothing, exit 3 if the file is not current")
    ci.add_argument("--branch", default="main", help="the branch to act as (default main)")
    ci.add_argument("--scheduled", action="store_true",
                    help="act as a timer-triggered run (the full accuracy tier)")
    ci.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")

    gc = sub.add_parser(
        "gc", help="remove results nothing needs: not reached from models.lock or the newest "
                   "runs; and writes that never finished")
    gc.add_argument("--keep-runs", type=int, default=5, metavar="N",
                    help="keep what the newest N runs reached (default 5). A run is a result "
                         "no other result needs (e.g. the last task of a pipeline run), "
                         "with everything it was built from")
    gc.add_argument("--older-than", type=float, default=24.0, metavar="HOURS",
                    help="unfinished writes begun this many hours ago or more (default 24)")
    gc.add_argument("--lock", default="models.lock", help="path of the lock file")
    gc.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")

    accuracy = sub.add_parser("accuracy", help="accuracy test planning")
    accuracy_sub = accuracy.add_subparsers(dest="action", required=True)
    plan = accuracy_sub.add_parser(
        "plan", help="the fast tier's sample size for the configured gates, and their error "
                     "probabilities",
        description="Size the fast tier for the gates that run: the smallest sample from which "
                    "on each accuracy gate passes a model at the expected accuracy with the "
                    "configured power, computed exactly. Reads [accuracy] and [gates] from the "
                    "pipeline config; flags override it, and alone still answer.")
    plan.add_argument("--pipeline-config", metavar="FILE",
                      help="the pipeline config to read (default: configs/pipeline.toml when "
                           "it exists)")
    plan.add_argument("--expected", type=float, help="the accuracy a good model has")
    plan.add_argument("--limit", type=float,
                      help="the accuracy gate's limit (replaces the config's accuracy gates)")
    plan.add_argument("--drop", type=float,
                      help="without an accuracy gate: plan one at expected - drop")
    plan.add_argument("--alpha", type=float, help="one-sided level of every gate")
    plan.add_argument("--power", type=float, help="probability of passing a good model")
    plan.add_argument("--interval", choices=["wilson", "clopper-pearson"])
    plan.add_argument("--margin", type=float,
                      help="the change gate's margin (adds a non-inferiority gate if none)")
    plan.add_argument("--discordance", "--disagreement", type=float, metavar="PSI",
                      help="the share of rows on which candidate and released model disagree")
    plan.add_argument("--classes", type=int,
                      help="classes, for the slice warning (default: [schema] allowed_labels)")

    batch = sub.add_parser("batch", help="run one task as an AWS Batch job ([batch] in luigi.cfg)")
    batch_sub = batch.add_subparsers(dest="action", required=True)
    submit = batch_sub.add_parser(
        "submit", **runs_tasks,
        help="submit a task as a Batch job, follow its log, wait for its result",
        description="Run one task as an AWS Batch job, as a worker does for the tasks in "
                    "[batch] tasks: its upstream results must already be in the (S3) store. "
                    "Task parameters follow the task, as for luigi (--variant 2).")
    submit.add_argument("task", help="task family, e.g. TrainModel")

    models = sub.add_parser("models", help="the models in models.lock, their history, rollback")
    models_sub = models.add_subparsers(dest="action", required=True)
    lock = argparse.ArgumentParser(add_help=False)
    lock.add_argument("--lock", default="models.lock", help="path of the lock file")
    for action, what in (("list", "what models.lock holds"),
                         ("verify", "check the lock against the store, byte for byte"),
                         ("pull", "fetch (and verify) locked models into the local cache")):
        one = models_sub.add_parser(action, parents=[lock], help=what)
        one.add_argument("name", nargs="?", help="one model (default: all)")
    history = models_sub.add_parser(
        "history", parents=[lock], help="every released version of a model, from git's history "
                                        "of the lock, joined with the store")
    history.add_argument("name", help="the model")
    history.add_argument("--json", action="store_true", help="print JSON, one list")
    history.add_argument("--verify", action="store_true",
                         help="hash each version's bytes in the store (default: ask if they exist)")
    diff = models_sub.add_parser(
        "diff", parents=[lock], help="the metric changes between two revisions of the lock, as "
                                     "a Markdown table")
    diff.add_argument("rev_a", nargs="?", default="HEAD", metavar="REV_A",
                      help="git revision (default HEAD)")
    diff.add_argument("rev_b", nargs="?", metavar="REV_B",
                      help="git revision (default: the lock in the working tree)")
    diff.add_argument("--all", action="store_true", help="show unchanged metrics too")
    diff.add_argument("--precision", type=int, default=5, metavar="N",
                      help="round numbers to N decimal places (default 5)")
    rollback = models_sub.add_parser(
        "rollback", parents=[lock], help="write an earlier released version into the lock, after "
                                         "verifying its bytes in the store",
        description="Write the lock entry of an earlier released version of a model, after "
                    "hashing its bytes in the store. A version whose bytes are gone (exit 5) or "
                    "changed (exit 6) is refused and the lock is left as it was. Commit the "
                    "lock afterwards; the change gate then compares candidates with this model.")
    rollback.add_argument("name", help="the model")
    rollback.add_argument("--to", required=True, metavar="SHA256|REVISION",
                          help="a sha256 prefix (7+ hex digits) of a version in `models "
                               "history`, or a git revision whose lock has the model")
    return parser


def _run(args, extra: list[str]) -> int:
    from rich.console import Console

    from mlbuild.ci.runner import import_project, project_task, run_task

    if args.help or not args.task:
        args.usage.print_help()
        if args.task:
            from mlbuild.ci.task_options import options, task_class

            import_project(args.module)
            print(f"\n{args.task}'s options:\n" + "\n".join(options(task_class(args.task, args.module))))
        return 0 if args.help else EXIT_USAGE
    console = Console(stderr=True, highlight=False)
    with project_task(args.module, args.task, extra) as task:
        outcome = run_task(task, workers=args.workers, verbose=args.verbose, console=console)
    for failure in outcome.failures:
        console.print(f"[red]✗ {failure.task}[/] ({failure.kind})", markup=True)
        console.print(failure.traceback or failure.text, markup=False, soft_wrap=True)
    colour = "green" if outcome.exit_code == 0 else "red"
    console.print(f"[{colour}]{outcome.summary}; exit code {outcome.exit_code}[/]", soft_wrap=True)
    return outcome.exit_code


def _status(args, extra: list[str]) -> int:
    from mlbuild.ci.runner import project_task
    from mlbuild.ci.status import pipeline_state

    with project_task(args.module, args.task, extra) as task:
        states = pipeline_state(task)
    width = max(len(str(s.task)) for s in states)
    for state in states:
        mark = "complete" if state.complete else "to run"
        fingerprint = (state.fingerprint or "-")[:12]
        print(f"{state.task!s:<{width}}  {fingerprint:<12}  {mark}")
        for reason in state.reasons:
            print(f"{'':<{width}}  {'':<12}    {reason}")
    todo = sum(not s.complete for s in states)
    print(f"{len(states) - todo} of {len(states)} complete")
    return 0


def _models(args, extra: list[str]) -> int:
    from mlbuild.release.lockfile import LockFile
    from mlbuild.release.registry import pull_models, verify_lock
    from mlbuild.settings import cache_dir, store_uri
    from mlbuild.store import LocalCache, open_store

    if args.action in ("history", "diff", "rollback"):
        return _model_history(args)
    lock = LockFile.read(args.lock)
    if args.name:
        lock = LockFile({args.name: lock.entry(args.name, args.lock)})
    if not lock.models:
        print(f"{args.lock}: no models. Run the pipeline (`make pipeline`) to publish one.")
        return 0
    if args.action == "list":
        for name, entry in sorted(lock.models.items()):
            metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in sorted(entry.metrics.items()))
            print(f"{name}  sha256:{entry.sha256[:12]}  {entry.size} bytes  {entry.created}  "
                  f"{metrics}\n  {entry.uri}")
        return 0
    cache = LocalCache(cache_dir())
    store = open_store(store_uri())
    checks = pull_models(lock, store, cache) if args.action == "pull" else verify_lock(lock, store)
    for check in checks:
        if check.error:
            print(f"✗ {check.name}: {check.error}")
        elif args.action == "pull":
            print(f"✓ {check.name}: {cache.path(check.entry.sha256)}")
        else:
            print(f"✓ {check.name}: sha256 {check.entry.sha256} matches")
    return next((c.error.exit_code for c in checks if c.error), 0)


def _model_history(args) -> int:
    import json

    from mlbuild.release import history
    from mlbuild.settings import store_uri
    from mlbuild.store import open_store

    if args.action == "diff":
        changes = history.metrics_diff(args.lock, args.rev_a, args.rev_b, everything=args.all)
        print(history.markdown_table(changes, args.rev_a, args.rev_b, args.precision))
        return 0
    store = open_store(store_uri())
    if args.action == "rollback":
        print("\n".join(history.rollback_model(args.lock, args.name, args.to, store).lines()))
        return 0
    versions = history.model_history(args.lock, args.name, store, verify=args.verify)
    if args.json:
        print(json.dumps([v.to_json() for v in versions], indent=2))
    else:
        print("\n\n".join("\n".join(v.lines()) for v in versions))
    return 0


def _accuracy(args, extra: list[str]) -> int:
    from mlbuild.accuracy.planning import plan_from_config

    plan = plan_from_config(args.pipeline_config, expected=args.expected, limit=args.limit,
                            drop=args.drop, alpha=args.alpha, power=args.power,
                            interval=args.interval, margin=args.margin,
                            discordance=args.discordance, classes=args.classes)
    print("\n".join(plan.lines()))
    return 0


def _stage(args, extra: list[str]) -> int:
    from mlbuild.ci.stages import definition, run_deploy_stage, run_in_image, run_stage

    if args.in_image:
        passed = [*(["--tier", args.tier] if args.tier else []), *extra]
        result = run_in_image(args.name, args.module, passed)
        print(f"{result.summary}; JUnit: {result.junit}; exit code {result.exit_code}")
        return result.exit_code
    if args.name == "deploy":
        if args.env is None:
            _parser().error("the deploy stage needs --env staging or --env production")
        result = run_deploy_stage(args.module, args.env, args.to)
        print(f"{result.summary}; JUnit: {result.junit}; exit code {result.exit_code}")
        return result.exit_code
    if args.name == "retrain":
        from mlbuild.ci.retrain import run_retrain

        result = run_retrain(args.module, extra, args.push, args.remote, args.workers)
        print(f"{result.summary}\nJUnit: {result.junit}; exit code {result.exit_code}")
        return result.exit_code
    tier = args.tier
    if tier is None and definition(args.name) == "EvaluateAccuracy":
        tier = "fast"
    result = run_stage(args.name, args.module, extra, args.workers, tier)
    print(f"{result.summary}; JUnit: {result.junit}; exit code {result.exit_code}")
    return result.exit_code


def _deploy(args, extra: list[str]) -> int:
    from mlbuild.ci.deploy import history
    from mlbuild.settings import store_uri
    from mlbuild.store import open_store

    records = history(open_store(store_uri()), args.env)
    if not records:
        print(f"{args.env}: no deployments yet (`mlbuild stage deploy --env {args.env}`).")
    for r in records:
        how = "rollback" if r.rollback else "deploy"
        print(f"{r.time}  {how:<8}  {r.image}  model sha256:{(r.model_sha256 or '-')[:12]}  "
              f"commit {(r.commit or '-')[:12]}  by {r.who}"
              f"{f'  (replaced {r.replaced})' if r.replaced else ''}")
    return 0


def _batch(args, extra: list[str]) -> int:
    import luigi.task

    from mlbuild import batch
    from mlbuild.ci.runner import project_task
    from mlbuild.errors import MissingError

    with project_task(args.module, args.task, extra) as task:
        if task.complete():
            print(f"{task} is already complete: {batch.manifest_url(task)}")
            return 0
        needed = luigi.task.flatten(task.requires()) + luigi.task.flatten(task.after())
        missing = [t for t in needed if not t.complete()]
        if missing:
            first = " ".join([missing[0].task_family, *batch.command_line_args(missing[0])])
            raise MissingError(f"{task} needs {', '.join(map(str, missing))}, not in the store "
                               "yet.", hint=f"run them first (`mlbuild run {first}`), or let a "
                               "worker submit it (`[batch] tasks`).")
        batch.run_on_batch(task)
        print(f"{task}: built by AWS Batch job {batch.job_name(task)}: {batch.manifest_url(task)}")
    return 0


def _ci(args, extra: list[str]) -> int:
    import subprocess
    from pathlib import Path

    from mlbuild.ci import jenkinsfile
    from mlbuild.ci.cycle import load_cycle

    cycle = load_cycle(args.config)
    path = Path(args.jenkinsfile or "Jenkinsfile")
    if args.action == "jenkinsfile":
        if args.check:
            jenkinsfile.check(path, cycle, args.config)
            print(f"{path} is the one {args.config} generates")
        else:
            path.write_text(jenkinsfile.generate(cycle, args.config))
            print(f"wrote {path} from {args.config}")
        return 0
    if args.jenkinsfile or path.exists():  # what Jenkins runs must be what runs here
        jenkinsfile.check(path, cycle, args.config)
    for stage, runs in cycle.plan(args.branch, args.scheduled):
        if not runs:
            print(f"== {stage.name}: skipped on {args.branch}"
                  f"{' (scheduled run)' if args.scheduled else ''}")
            continue
        for command in stage.run:
            print(f"== {stage.name}: {command}", flush=True)
            if args.dry_run:
                continue
            # BRANCH_NAME, as Jenkins sets it: the deploy stage checks it (Gitflow).
            code = subprocess.run(["sh", "-e", "-c", command], check=False,
                                  env={**os.environ, "BRANCH_NAME": args.branch}).returncode
            if code != 0:
                print(f"== {stage.name} failed with exit code {code}")
                return code
    return 0


def _gc(args, extra: list[str]) -> int:
    from datetime import timedelta
    from pathlib import Path

    from mlbuild.errors import MissingError
    from mlbuild.release import gc
    from mlbuild.release.lockfile import LockFile
    from mlbuild.settings import store_uri
    from mlbuild.store import open_store

    store = open_store(store_uri())
    if "://" not in store.uri or store.uri.startswith("file://"):
        folder = Path(store.uri.removeprefix("file://"))
        if not folder.is_dir():
            raise MissingError(f"The store {store.uri} does not exist (looked for "
                               f"{folder.resolve()}).", hint="check MLBUILD_STORE or [mlbuild] "
                               "store in luigi.cfg; run from the project's root folder.")
    plan = gc.plan(store, LockFile.read(args.lock), args.keep_runs,
                   timedelta(hours=args.older_than))
    verb = "would remove" if args.dry_run else "removed"
    for folder, files in sorted(plan.drop.items()):
        print(f"{verb} {store.url(folder)}/ ({len(files)} object(s), "
              f"{human_size(plan.sizes.get(folder, 0))})")
    for write in plan.stale:
        print(f"{'would discard' if args.dry_run else 'discarded'} the unfinished write of "
              f"{store.url(write.key)} (begun {write.started:%Y-%m-%d %H:%M:%S})")
    if not args.dry_run:
        gc.collect(store, plan)
    print(f"{len(plan.drop)} result(s), {human_size(plan.drop_bytes)}, {verb}; {len(plan.keep)} kept; "
          f"{len(plan.stale)} unfinished write(s) {'found' if args.dry_run else 'discarded'} "
          f"in {store.uri}")
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job stopped, a container stopped), raised in the main thread so that
    everything unwinds as for Ctrl-C: temporary folders are removed, Batch jobs ended."""


def _terminate(signum, frame):
    raise Terminated


def human_size(size: float) -> str:
    """Bytes as people read them: 0 B, 812 B, 4.2 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def project_root(start: str) -> str | None:
    """The nearest folder at or above ``start`` that holds a luigi.cfg: the project's root,
    found as git finds its repository, so that commands work from any subfolder."""
    folder = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(folder, "luigi.cfg")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _enter_project() -> None:
    root = project_root(os.getcwd())
    if root and root != os.getcwd():
        import luigi.configuration

        os.chdir(root)  # relative paths in luigi.cfg and the configs are the root's
        luigi.configuration.get_config().reload()


def main(argv: list[str] | None = None) -> int:
    _enter_project()
    # The project's module is found in the folder mlbuild runs in, as `python -m` finds it.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    args, extra = _parser().parse_known_args(argv)
    if extra and args.command in ("models", "gc", "accuracy", "ci", "deploy"):
        _parser().error(f"unrecognized arguments: {' '.join(extra)}")
    handler = {"run": _run, "status": _status, "models": _models, "gc": _gc,
               "accuracy": _accuracy, "stage": _stage, "ci": _ci, "batch": _batch,
               "deploy": _deploy}[args.command]
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return handler(args, extra)
    except MlbuildError as exc:
        print(f"mlbuild: {exc.kind}: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"Hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("mlbuild: terminated (SIGTERM). Finished tasks are kept in the store; run the "
              "command again to resume.", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("mlbuild: interrupted. Finished tasks are kept in the store; run the command "
              "again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mlbuild … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
