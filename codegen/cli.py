"""The mcu-anomaly command line: train, generate, verify, demo.

This is where the engines meet: the C engines (host_sim) are built here and handed to
the stages that compare or measure them; the rest of codegen never imports host_sim.
Each command imports what is heavy to load (scikit-learn, Jinja, the C engines) itself, so
--version and --help start at once (tests/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import os
import sys
from pathlib import Path

from codegen import __version__, bundle, files, resources
from codegen.data import dataset as data
from codegen.data import missing
from codegen.detectors import DEFAULT, DETECTORS, get
from codegen.errors import UserError
from codegen.firmware import OFFLINE_ENVS, memory
from codegen.fleet.device import MIN_ROWS, Settings as FleetSettings
from codegen.fleet.reading import CHUNK_ROWS, DEVICE_COLUMNS, Reading
from codegen.training import thresholds
from codegen.nab.benchmark import CV_GRID
from codegen.verify import battery, compare


def _value(text: str):
    """A --set value: a JSON number or list (3, 0.1, [8,4,8]), otherwise the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


MIN_SAMPLES = 2  # the battery's extreme part is half the samples, and must not be empty


def _count(text: str) -> int:
    """--samples: a count (argparse turns the error into `error:` and exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < MIN_SAMPLES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of samples; give an "
                                         f"integer >= {MIN_SAMPLES}, e.g. --samples 10000")
    return value


# verify --port's samples per kind by default: the battery's 2,500 readings take ~20 s on
# a 115200-baud link (docs/parity.md, "On a real board").
PORT_SAMPLES = 1000
MIN_RUN_ROWS = 1500  # a benchmark run's test part then holds at least one fault


def _bounded(text: str, lower: int, upper: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = lower - 1
    if not lower <= value <= upper:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of {what}; give an integer "
                                         f"from {lower} to {upper}")
    return value


def _runs(text: str) -> int:
    return _bounded(text, 1, 1000, "runs")


def _rows(text: str) -> int:
    return _bounded(text, MIN_RUN_ROWS, 10**7, "rows")


def _baud(text: str) -> int:
    return _bounded(text, 300, 4_000_000, "bits per second")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in (0, 1], e.g. 0.2")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed; give an integer from 0 to "
                                         f"{2**32 - 1}, e.g. --seed 0")
    return value


def parse_sets(items: list[str]) -> dict[str, dict]:
    """--set detector.param=value (repeatable) -> {detector: {param: value}}."""
    params: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        detector, dot, name = key.partition(".")
        if not (sep and dot and detector and name):
            raise UserError(f"--set {item!r} is not detector.param=value, e.g. "
                            f"--set zscore.threshold=value:3")
        params.setdefault(detector, {})[name] = _value(value)
    return params


def parse_renames(items: list[str]) -> dict[str, str]:
    """--rename old=new (repeatable) -> {old: new}; old may hold '=' only before the last."""
    renames = {}
    for item in items:
        old, sep, new = item.rpartition("=")
        if not (sep and old.strip() and new.strip()):
            raise UserError(f"--rename {item!r} is not OLD=NEW, e.g. --rename "
                            f"'Flow rate (l/min)=flow'")
        renames[old.strip()] = new.strip()
    return renames


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option (--columns, --ignore) as names; None when not given."""
    return text.split(",") if text else None


def _dataset(args) -> data.Dataset:
    if not args.csv:
        if args.rename or args.sep or args.ignore:
            raise UserError("--rename, --sep and --ignore apply to a CSV; give one, or leave "
                            "them out")
        return data.builtin(args.builtin)
    columns, ignore = _names(args.columns), _names(args.ignore)
    dataset = data.load_csv(args.csv, columns, args.label_column, args.time_column, args.sep,
                            parse_renames(args.rename), ignore)
    for name in [] if columns else dataset.label_like():
        print(f"warning: column {name!r} holds only 0 and 1, like a label or a marker, and is "
              f"read as a sensor channel: leave it out with --ignore {name!r}, or make it the "
              f"label with --label-column", file=sys.stderr)
    if dataset.renamed and not args.quiet:
        print("columns named for C (--rename OLD=NEW to choose):")
        for column, channel in dataset.renamed:
            print(f"  {column!r:<30} -> {channel}")
    return dataset


def _params(args, detectors: list[str]) -> dict[str, dict]:
    """--set's parameters, with --window as every windowed detector's unless --set gives
    it."""
    params = parse_sets(args.set)
    if args.window is not None:
        for detector in detectors:
            if "window" in get(detector).DEFAULTS:
                params.setdefault(detector, {}).setdefault("window", args.window)
    return params


def cmd_train(args) -> None:
    from codegen.evaluate.metrics import shown
    from codegen.training import train as training

    dataset = _dataset(args)
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    params = _params(args, detectors)
    validation = (data.load_csv(args.validation, dataset.columns, args.label_column,
                                args.time_column, args.sep, parse_renames(args.rename))
                  if args.validation else None)
    trained = training.train(dataset, detectors, params, args.seed, args.name,
                             verbose=not args.quiet, threshold=args.threshold,
                             validation=validation, policy=args.missing,
                             max_alarm_share=args.max_alarm_share)
    if args.target:
        memory.check(trained, args.target)
    out = bundle.save(trained, args.out, force=args.force)
    print(f"bundle written to {out}")
    for name, fitted in trained.detectors.items():
        ev = fitted.report.get("evaluation")
        line = f"  {name:<18} threshold {fitted.scalars['threshold']:.6g}"
        if ev:
            line += (f"  P {shown(ev['precision'], '.3f')} R {shown(ev['recall'], '.3f')} "
                     f"F1 {shown(ev['f1'], '.3f')} (TP {ev['tp']} FP {ev['fp']} FN {ev['fn']})")
        print(line)


def _check_generate(args) -> None:
    """Refuse options that contradict each other (--library names its own output)."""
    if args.library and args.firmware:
        raise UserError("--library and --firmware write different outputs; give one of them "
                        "(run generate twice for both)")
    if args.library and args.out:
        raise UserError("--library DIR names the output directory itself; leave out --out")


def cmd_generate(args) -> None:
    _check_generate(args)
    loaded = bundle.load(args.bundle)
    keep = (args.bundle,)  # never replaced, even with --force
    if args.library:
        from codegen.emit import library

        if args.target:
            memory.check(loaded, args.target)
        out = library.write(library.render(loaded), args.library, args.force, keep)
        print(f"library {loaded.name} written to {out}; add it to a PlatformIO project with "
              f"lib_deps = symlink://{Path(out).resolve()} (see {out}/README.md)")
        return
    args.out = args.out or DEFAULT_INCLUDE
    if args.firmware:
        from codegen.firmware import sources as firmware

        _check_firmware(loaded, args.target)
        out = firmware.write(firmware.render(loaded), args.out, args.force, keep)
        print(f"firmware sources written to {out}; build with "
              f"MCUA_GENERATED_DIR={out} pio run -e uno (see docs/firmware.md)")
        return
    from codegen.emit import render as emit

    written = emit.write(emit.render(loaded), args.out, args.force, keep)
    print(f"{len(written)} files written to {args.out}")


def _check_firmware(loaded: bundle.Bundle, target: str | None) -> None:
    """Refuse firmware that cannot fit `target`; without one, warn about each offline board
    it cannot fit and refuse only when it fits none."""
    if target:
        memory.check(loaded, target, app=True)
        return
    misfits = []
    for env in OFFLINE_ENVS:
        try:
            memory.check(loaded, env, app=True)
        except UserError as error:
            misfits.append(str(error))
    if len(misfits) == len(OFFLINE_ENVS):
        raise UserError(misfits[-1])
    for message in misfits:
        print(f"warning: {message}", file=sys.stderr)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _nab(args) -> Path | None:
    """verify's NAB folder: --nab, else the default when there is one; without either the
    battery has no real data, which is said on stderr."""
    if args.nab:
        return Path(args.nab)
    nab = battery.default_nab()
    if nab is None:
        print(f"note: no NAB data (--nab, or {NAB_DEFAULT_HELP}): the battery runs without real "
              f"series", file=sys.stderr)
    return nab


def cmd_verify(args) -> int:
    loaded = bundle.load(args.bundle)
    if args.baud is not None and not args.port:
        raise UserError("--baud is the speed of --port: give --port PATH too, or leave --baud "
                        "out")
    if args.target:
        resources.firmware_project("verify --target")
        memory.check(loaded, args.target, app=True)
    samples = args.samples or (PORT_SAMPLES if args.port else
                               10_000 if args.target else 100_000)
    inputs = battery.battery(loaded, samples, _nab(args))
    if args.port:
        from codegen.verify.serial_port import BAUD, SerialPortEngine

        with SerialPortEngine(loaded, args.port, args.baud or BAUD, args.bundle) as engine:
            result = compare.compare(loaded, engine, inputs, flag_api=False, progress=True)
            untouched = engine.stack_untouched()
        status = _report(f"{args.port}: the board's firmware app against the Python "
                         f"reference (score APIs)", result)
        return _stack_report(untouched) or status
    if not args.target:
        from host_sim.hostlib import HostModel

        result = compare.compare(loaded, HostModel(loaded), inputs)
        print(result.table())
        return 0 if result.ok else 1
    import tempfile

    from host_sim.firmware_target import Target, TargetEngine

    with tempfile.TemporaryDirectory(prefix="mcua-verify-") as tmp:
        engine = TargetEngine(loaded, Target(args.target, tmp))
        result = compare.compare(loaded, engine, inputs, progress=True)
    return _report(f"{args.target}: firmware in the simulator against the Python reference",
                   result)


def _stack_report(untouched: int | None) -> int:
    """The board's stack headroom after the battery (the app's M line); 1 when the stack
    reached the static data, whose values then cannot be trusted."""
    if untouched is None:
        return 0
    if untouched == 0:
        print("stack: it reached the static data (detector state, serial buffers) during the "
              "run, so the board may misbehave whatever the table says: make the windows "
              "smaller, or use fewer channels or detectors")
        return 1
    print(f"stack: {untouched:,} B of free RAM never reached during the run")
    return 0


def _report(title: str, result: compare.Comparison) -> int:
    """A firmware comparison's table and first mismatches; the exit status."""
    print(title)
    print(result.table())
    for mismatch in result.mismatches:
        print("  " + mismatch.describe())
    return 0 if result.ok else 1


def cmd_bench(args) -> None:
    from codegen.bench import firmware as bench
    from codegen.bench import peers
    from host_sim.firmware_target import Target

    resources.firmware_project("bench")
    envs = [e.strip() for e in args.targets.split(",") if e.strip()]
    if args.peers and args.bundle:
        raise UserError("--peers measures the peers beside the shapes of ours they are paired "
                        "with, trained by the bench: give no bundle")
    if args.peers and peers.ENV not in envs:
        raise UserError(f"the peers run on the {peers.ENV}: add {peers.ENV} to --targets")
    with_peers = with_emlearn = False
    if args.bundle:
        bundles, judge = [(bundle.load(args.bundle), None, None)], False
    else:
        print("no bundle given: training " + (
            "the detectors of ours paired with the peers" if args.peers else
            "the reference shapes (those of the speed goals, three isolation forests, the "
            "detectors paired with the peers)") + " on synthetic data", file=sys.stderr)
        bundles = bench.peer_bundles() if args.peers else bench.reference_bundles()
        judge = with_peers = True
        with_emlearn = peers.available()
        if not with_emlearn:
            print(peers.INSTALL, file=sys.stderr)
    document = bench.run(bundles, envs, Target, args.json, args.samples, judge,
                         progress=True, with_peers=with_peers, with_emlearn=with_emlearn,
                         profile=args.profile)
    print(bench.table(document["rows"]))
    for extra in (bench.profile_table(document["rows"]),
                  bench.memory_table(document["autoencoder_memory"]),
                  peers.table(document["peers"])):
        if extra:
            print(extra)
    print(f"written to {args.json}")


def cmd_demo(args) -> int:
    out = Path(args.out)
    for step in (["train", "--out", str(out / "model")],
                 ["generate", str(out / "model"), "--out", str(out / "include")],
                 ["verify", str(out / "model")]):
        print(f"$ mcu-anomaly {' '.join(step)}", flush=True)
        code = main(step)
        if code:
            return code
    return 0


BUNDLE_ONLY = ("report", "bench", "label_column", "time_column", "no_baseline", "sep", "columns")
BENCHMARK_ONLY = ("detectors", "set", "json", "runs", "rows", "seed")


def _given(args, names) -> list[str]:
    """The options among names that were given (their defaults are None or False)."""
    return ["--" + n.replace("_", "-") for n in names
            if getattr(args, n) is not None and getattr(args, n) is not False]


def _apply(options: list[str]) -> str:
    return "applies" if len(options) == 1 else "apply"


def _them(options: list[str]) -> str:
    return "it" if len(options) == 1 else "them"


def cmd_evaluate(args) -> None:
    if args.builtin:
        if args.bundle or args.csv:
            raise UserError(f"evaluate --builtin {args.builtin} trains its own detectors on the "
                            f"benchmark's runs: give no bundle or CSV, or leave out --builtin")
        wrong = _given(args, BUNDLE_ONLY)
        if wrong:
            raise UserError(f"{', '.join(wrong)} {_apply(wrong)} to a bundle's evaluation on a "
                            f"CSV, not to --builtin; leave {_them(wrong)} out")
        return _evaluate_benchmark(args)
    if not (args.bundle and args.csv):
        raise UserError("evaluate needs a bundle and a labelled CSV (evaluate BUNDLE DATA.csv), "
                        "or --builtin pump for the benchmark protocol")
    wrong = _given(args, BENCHMARK_ONLY)
    if wrong:
        raise UserError(f"{', '.join(wrong)} {_apply(wrong)} to the benchmark protocol "
                        f"(--builtin pump), not to a bundle's evaluation; leave {_them(wrong)} out")
    from codegen.evaluate import evaluation as evaluate
    from codegen.evaluate import report

    loaded = bundle.load(args.bundle)
    dataset = evaluate.load_labelled(args.csv, loaded, args.label_column, args.time_column,
                                     args.sep, args.missing, _names(args.columns))
    bench = report.load_bench(args.bench) if args.bench else None
    result = evaluate.evaluate(loaded, dataset, baseline=not args.no_baseline, verbose=True)
    print(result.table())
    if args.report:
        print("rendering the report ...", flush=True)
        out = report.write(report.render(result, bench), args.report)
        print(f"report written to {out}")


def _evaluate_benchmark(args) -> None:
    from codegen.evaluate import protocol

    given = args.detectors if args.detectors is not None else ",".join(DETECTORS)
    detectors = [d.strip() for d in given.split(",") if d.strip()]
    if not detectors:
        raise UserError(f"--detectors names no detector; choose from {', '.join(DETECTORS)}")
    for name in detectors:
        get(name)
    seed = args.seed or 0
    runs = data.BENCHMARKS[args.builtin](seed, args.runs, args.rows)
    outcomes = protocol.evaluate(runs, list(runs[0].channels), detectors,
                                 parse_sets(args.set or []), seed, progress=_progress)
    print(protocol.table(outcomes, runs))
    if args.json:
        document = {"benchmark": args.builtin, "seed": seed, "runs": len(runs),
                    "rows": len(runs[0].values), "train_rows": runs[0].train_rows,
                    "detectors": {o.name: o.to_json() for o in outcomes}}
        files.write_file(args.json, json.dumps(document, indent=1) + "\n")
        print(f"written to {args.json}")


def cmd_score(args) -> None:
    from codegen.evaluate import scores

    loaded = bundle.load(args.bundle)
    detectors = scores.detector_names(loaded, args.detectors)
    if args.engine == "c":
        from host_sim.hostlib import HostModel as engine
    else:
        from codegen.verify.engines import PythonEngine as engine
    rows = scores.score_csv(loaded, args.csv, args.out, engine(loaded), detectors,
                            args.label_column, args.time_column, args.sep, args.missing,
                            progress=_progress if sys.stderr.isatty() else None,
                            columns=_names(args.columns))
    print(f"{rows:,} rows scored by {', '.join(detectors)} "
          f"({'the generated C' if args.engine == 'c' else 'the Python reference'}): "
          f"written to {args.out}")


def cmd_nab(args) -> None:
    from codegen.nab import benchmark as nab

    if args.engine == "c":
        from host_sim.hostlib import HostModel as engine
    else:
        from codegen.verify.engines import PythonEngine as engine
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    print(nab.main(args.folder, detectors, engine=engine, cross_validation=args.cross_validate,
                   given=parse_sets(args.set)))


def cmd_fleet_train(args) -> int:
    from codegen.fleet import train as fleet

    if args.workers is not None and args.scheduler:
        raise UserError("--workers counts joblib's processes here; with --scheduler the Dask "
                        "cluster's workers run the jobs: leave --workers out")
    detectors = tuple(d.strip() for d in args.detectors.split(",") if d.strip())
    if not detectors:
        raise UserError(f"--detectors names no detector; choose from {', '.join(DETECTORS)}")
    for name in detectors:
        get(name)
    params = _params(args, list(detectors))
    unknown = sorted(set(params) - set(detectors))
    if unknown:
        raise UserError(f"parameters given for {', '.join(unknown)}, which is not among the "
                        f"detectors trained ({', '.join(detectors)}); add it to --detectors or "
                        f"leave its --set out")
    if args.threshold is not None:
        thresholds.parse(args.threshold, "--threshold")
    if args.scheduler:
        from codegen.fleet.execution import check_scheduler

        check_scheduler(args.scheduler)
    settings = FleetSettings(detectors, params, args.seed, args.threshold,
                             args.max_alarm_share, args.missing, args.min_rows)
    read = Reading(args.device_column, _names(args.columns), args.label_column,
                   args.time_column, args.sep, parse_renames(args.rename),
                   _names(args.ignore) or [], args.chunk_rows)
    doc, skipped = fleet.train(args.data, args.out, settings, read, args.workers or 1,
                               args.scheduler)
    print(f"fleet written to {args.out}: {fleet.summary_line(doc, skipped)}")
    failed = [r for r in doc["devices"] if r["status"] != "ok"]
    for record in failed:
        print(f"  failed: {record['id']!r}: {record['reason']}", file=sys.stderr)
    return 1 if failed else 0


def cmd_fleet_generate(args) -> None:
    from codegen.fleet import generate

    mapping = generate.generate(args.fleet, args.out)
    print(f"{len(mapping)} header sets written to {args.out}, one directory per device "
          f"named by its C identifier; the mapping of device ids: "
          f"{Path(args.out) / generate.MAPPING}")


def cmd_fleet_report(args) -> None:
    from codegen.fleet import report

    summary = report.write(args.fleet, args.report, args.json)
    counts = summary["counts"]
    print(f"{counts['trained']} of {counts['devices']} devices trained, {counts['failed']} "
          f"failed, {len(summary['outliers'])} outlier(s): report written to {args.report}, "
          f"summary to {args.json}")


def cmd_fleet_bench(args) -> None:
    from codegen.fleet import bench

    parse_sets(args.set)  # refused here rather than in every run
    print(bench.main(args.devices, args.rows, args.channels, args.detectors, args.set,
                     _bench_workers(args.workers), args.engines.split(","), args.work))


def _bench_workers(text: str) -> list[int]:
    try:
        counts = [int(w) for w in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--workers {text!r} is not a list of worker counts; give e.g. 1,2")
    return counts


LABEL_HELP = f"0/1 label column (default: the first named {'/'.join(data.LABEL_COLUMNS)})"
TIME_HELP = f"time column (default: the first named {'/'.join(data.TIME_COLUMNS)})"
DEFAULT_INCLUDE = "build/include"  # generate --out
DESCRIPTION = ("Train anomaly detectors for sensor streams and generate bit-exact C for "
               "microcontrollers. A command's options: COMMAND --help.")
NAB_DEFAULT_HELP = (f"the first folder with a data/ among {' and '.join(battery.NAB_SEARCH)} "
                    f"from the working directory, then the source checkout's "
                    f"../shared/data/nab")
BUNDLE_HELP = "bundle directory, written by train"
COLUMNS_HELP = ("comma-separated CSV columns that hold the bundle's channels, in the bundle's "
                "order, when the CSV names them otherwise (default: the columns named as the "
                "bundle's; other columns are left out)")
FORCE_HELP = ("replace --out even when mcu-anomaly did not write it: everything in it is "
              "deleted; never the root, home or working directory, nor one holding them or "
              "the bundle generate reads")


class DefaultsFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help that does not state its default, unless it has
    none (None, False, an empty list)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The options of train that fleet train shares: the detectors, their settings and how
    the table is read."""
    parser.add_argument("--detectors", default=",".join(DEFAULT),
                        help=f"comma-separated, from: {', '.join(DETECTORS)}")
    parser.add_argument("--seed", type=_seed, default=0, help="0 to 2**32-1 (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="DET.PARAM=VALUE",
                        help="detector parameter, e.g. zscore.threshold=percentile:99.5")
    parser.add_argument("--window", type=int,
                        help="window length of every windowed detector chosen (streaming_zscore, "
                             "moving_average, autoencoder, isolation_forest with rolling "
                             "features); --set overrides it per detector")
    parser.add_argument("--columns", help="comma-separated sensor columns (default: all)")
    parser.add_argument("--ignore", metavar="COLUMNS",
                        help="comma-separated columns that are neither channels nor the label "
                             "or time (e.g. a marker column)")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="the C identifier of a column (default: its name with every run of "
                             "other characters an '_', e.g. 'Flow rate (l/min)' -> "
                             "Flow_rate_l_min)")
    parser.add_argument("--sep", choices=list(data.SEPARATORS), metavar="SEP",
                        help="field separator: ',', ';' or tab (default: the one the file's "
                             "first lines use, else ',')")
    parser.add_argument("--label-column", help=LABEL_HELP)
    parser.add_argument("--time-column", help=TIME_HELP)
    parser.add_argument("--missing", choices=missing.POLICIES, default=missing.DEFAULT,
                        help=missing.HELP)
    parser.add_argument("--threshold", metavar="STRATEGY",
                        help="threshold strategy for every detector without --set "
                             "DET.threshold: percentile:P, sigma:K, value:K, max-f1, recall:R, "
                             "precision:P (the last three on labelled data)")
    parser.add_argument("--max-alarm-share", type=_share, default=thresholds.MAX_ALARM_SHARE,
                        metavar="SHARE", help=thresholds.ALARM_SHARE_HELP)


def _fleet_parser(sub) -> None:
    fleet = sub.add_parser("fleet", help="one model per device of a fleet, trained in parallel "
                                         "(joblib here, or a Dask cluster): train, generate, "
                                         "report, bench (docs/fleet.md)")
    commands = fleet.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND",
                                    help="train, then generate or report; bench measures",
                                    parser_class=functools.partial(
                                        argparse.ArgumentParser,
                                        formatter_class=DefaultsFormatter))
    train = commands.add_parser("train", help="train one bundle per device")
    train.add_argument("data", help="a long table (.csv or .parquet) with a device column, or "
                                    "a folder of one .csv or .parquet file per device (its id "
                                    "the file's name without the suffix)")
    train.add_argument("--out", default="build/fleet",
                       help="fleet directory: fleet.json and devices/<name>/, each device's "
                            "bundle; kept up to date by later runs (a device whose input and "
                            "settings are unchanged is not trained again)")
    train.add_argument("--device-column",
                       help=f"the long table's column of device ids (default: the first named "
                            f"{'/'.join(DEVICE_COLUMNS)})")
    train.add_argument("--workers", type=functools.partial(_bounded, lower=1, upper=1024,
                                                           what="workers"),
                       help="joblib processes training devices side by side (default 1)")
    train.add_argument("--scheduler", metavar="ADDRESS",
                       help="a Dask distributed scheduler (e.g. tcp://host:8786): its workers "
                            "train the devices instead (each needs mcu-anomaly[fleet] and, for "
                            "a folder, the folder's files)")
    train.add_argument("--min-rows", type=functools.partial(_bounded, lower=2, upper=10**9,
                                                            what="rows"), default=MIN_ROWS,
                       help="a device with fewer normal rows (every reading present) fails")
    train.add_argument("--chunk-rows", type=functools.partial(_bounded, lower=1, upper=10**8,
                                                              what="rows"), default=CHUNK_ROWS,
                       help="rows read at a time")
    _training_options(train)
    train.set_defaults(func=cmd_fleet_train)

    generate = commands.add_parser("generate", help="one header set per trained device")
    generate.add_argument("fleet", help="fleet directory, written by fleet train")
    generate.add_argument("--out", default="build/fleet-include",
                          help="directory of one header directory per device, named by its C "
                               "identifier, and devices.json, the mapping of device ids")
    generate.set_defaults(func=cmd_fleet_generate)

    report = commands.add_parser("report", help="per-device thresholds and metrics, failures "
                                                "and outliers among devices, as HTML and JSON")
    report.add_argument("fleet", help="fleet directory, written by fleet train")
    report.add_argument("--report", default="build/fleet.html", metavar="HTML",
                        help="the HTML page")
    report.add_argument("--json", default="build/fleet-summary.json", metavar="JSON",
                        help="the summary as JSON")
    report.set_defaults(func=cmd_fleet_report)

    bench = commands.add_parser("bench", help="fleet train on a synthetic fleet, per engine and "
                                              "worker count: wall time, devices/s, peak RSS, "
                                              "scaling; a table")
    bench.add_argument("--devices", type=functools.partial(_bounded, lower=1, upper=10**6,
                                                           what="devices"), default=1000,
                       help="synthetic devices")
    bench.add_argument("--rows", type=functools.partial(_bounded, lower=MIN_ROWS, upper=10**7,
                                                        what="rows"), default=10_000,
                       help="rows per device")
    bench.add_argument("--channels", type=functools.partial(_bounded, lower=1, upper=64,
                                                            what="channels"), default=4,
                       help="channels per device")
    bench.add_argument("--detectors", default="zscore,kmeans", help="comma-separated")
    bench.add_argument("--set", action="append", default=[], metavar="DET.PARAM=VALUE",
                       help="a detector parameter of every run, as for fleet train (e.g. "
                            "kmeans.k=3: a fixed K instead of kmeans's choice among 2..8)")
    bench.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    bench.add_argument("--engines", default="joblib,dask",
                       help="comma-separated, from: joblib, dask (a local Dask cluster)")
    bench.add_argument("--work", default="build/fleet-bench",
                       help="directory for the synthetic table and the fleets (replaced)")
    bench.set_defaults(func=cmd_fleet_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcu-anomaly", description=DESCRIPTION,
                                     formatter_class=DefaultsFormatter)
    parser.add_argument("--version", action="version", version=f"mcu-anomaly {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=functools.partial(
        argparse.ArgumentParser, formatter_class=DefaultsFormatter))

    train = sub.add_parser("train", help="train detectors on the normal rows of a CSV")
    train.add_argument("csv", nargs="?", help="CSV with a header row; omit for built-in data")
    train.add_argument("--builtin", default="iot", choices=sorted(data.BUILTIN),
                       help="built-in data when no CSV is given (default: iot)")
    train.add_argument("--out", default="build/model",
                       help="bundle directory, replaced whole; one that is neither empty nor a "
                            "bundle is refused")
    train.add_argument("--force", action="store_true", help=FORCE_HELP)
    train.add_argument("--name", default="model", help="model name, a C identifier")
    _training_options(train)
    train.add_argument("--quiet", action="store_true",
                       help="print only the bundle written and its detectors' thresholds")
    train.add_argument("--validation", metavar="CSV",
                       help="labelled CSV for max-f1/recall/precision (default: the training CSV)")
    train.add_argument("--target", choices=OFFLINE_ENVS,
                       help="refuse a bundle whose detectors cannot fit this board's RAM and "
                            "flash")
    train.set_defaults(func=cmd_train)

    generate = sub.add_parser("generate", help="write C headers and runtime for a bundle")
    generate.add_argument("bundle", help=BUNDLE_HELP)
    generate.add_argument("--out",
                          help="directory replaced whole by the headers and runtime (with a "
                               "marker file, .mcu-anomaly-generated); one that is neither empty "
                               f"nor written by generate is refused (default: {DEFAULT_INCLUDE})")
    generate.add_argument("--firmware", action="store_true",
                          help="write the firmware app's sources instead (replaces --out; one "
                               "that is neither empty nor generated firmware sources is "
                               "refused), e.g. --out firmware_targets/generated for `pio run`, "
                               "which builds them in the source checkout")
    generate.add_argument("--library", metavar="DIR",
                          help="write an Arduino / PlatformIO library into DIR instead (replaced "
                               "whole; one that is neither empty nor such a library is refused): "
                               "library.json, library.properties, src/ and an example sketch "
                               "(docs/library.md)")
    generate.add_argument("--force", action="store_true", help=FORCE_HELP)
    generate.add_argument("--target", choices=OFFLINE_ENVS,
                          help="with --firmware: refuse when the firmware cannot fit this board "
                               "(default: warn for each offline board it cannot fit); with "
                               "--library: refuse when the detectors cannot fit it")
    generate.set_defaults(func=cmd_generate)

    verify = sub.add_parser("verify", help="the generated C against the Python reference, bit "
                                           "for bit: built for this machine, in a simulator "
                                           "(--target) or on a board (--port)")
    verify.add_argument("bundle", help=BUNDLE_HELP)
    verify.add_argument("--samples", type=_count,
                        help="random and real inputs per detector (extreme: half as many); "
                             f"default 100000, with --target 10000, with --port {PORT_SAMPLES}")
    verify.add_argument("--nab", help=f"NAB folder for real data (default: {NAB_DEFAULT_HELP}; "
                                      f"without one, no real data)")
    board = verify.add_mutually_exclusive_group()
    board.add_argument("--target", choices=OFFLINE_ENVS,
                       help="build the firmware with PlatformIO and compare in simavr / qemu "
                            "(needs the source checkout: platformio.ini, firmware_targets/)")
    board.add_argument("--port", metavar="PATH",
                       help="compare a real board over its serial port (e.g. /dev/ttyACM0), "
                            "running the firmware app built from this bundle and flashed "
                            "(docs/firmware.md): the same battery, through the app's serial "
                            "protocol")
    verify.add_argument("--baud", type=_baud,
                        help="with --port: the serial speed (default 115200, the app's)")
    verify.set_defaults(func=cmd_verify)

    bench_help = ("cycles, instructions, flash and RAM per detector per firmware target "
                  "(needs the source checkout: platformio.ini, firmware_targets/)")
    bench_cmd = sub.add_parser("bench", help=bench_help, description=bench_help)
    bench_cmd.add_argument("bundle", nargs="?",
                           help="bundle to measure (default: the reference shapes, those the "
                                "speed goals are set for and more, trained here)")
    bench_cmd.add_argument("--targets", default=",".join(OFFLINE_ENVS),
                           help=f"comma-separated firmware targets, from: "
                                f"{', '.join(OFFLINE_ENVS)}")
    bench_cmd.add_argument("--samples", type=_count, default=200, help="measured samples per detector")
    bench_cmd.add_argument("--json", default="build/bench.json", help="where to write the table")
    bench_cmd.add_argument("--profile", action="store_true",
                           help="on the Uno, where each call's cycles go: the costliest "
                                "functions (soft-float routines included) with their cycles "
                                "and calls per call")
    bench_cmd.add_argument("--peers", action="store_true",
                           help="only the peers (the lab's Arduino Z-score; emlearn's models "
                                "with the [peers] extra) and the detectors of ours paired with "
                                "them, on the Uno (without a bundle, the bench measures these "
                                "too, after the reference shapes)")
    bench_cmd.set_defaults(func=cmd_bench)

    demo = sub.add_parser("demo", help="train, generate and verify on built-in data")
    demo.add_argument("--out", default="build",
                      help="directory for the bundle (model/) and the headers (include/)")
    demo.set_defaults(func=cmd_demo)

    evaluate = sub.add_parser("evaluate", help="metrics of a bundle on labelled data, and a "
                                               "report; or the protocol of a built-in benchmark")
    evaluate.add_argument("bundle", nargs="?", help="bundle directory (none with --builtin)")
    evaluate.add_argument("csv", nargs="?", help="labelled CSV with the bundle's sensor columns")
    evaluate.add_argument("--builtin", choices=sorted(data.BENCHMARKS),
                          help="no bundle: run the benchmark protocol (train each detector on "
                               "each run's normal head, test on the rest, pooled metrics)")
    evaluate.add_argument("--detectors",
                          help="with --builtin: comma-separated (default: every one)")
    evaluate.add_argument("--set", action="append", metavar="DET.PARAM=VALUE",
                          help="with --builtin: a detector parameter, as for train")
    evaluate.add_argument("--json", metavar="JSON", help="with --builtin: write the results")
    evaluate.add_argument("--runs", type=_runs, help="with --builtin: runs (default: all)")
    evaluate.add_argument("--rows", type=_rows, help="with --builtin: rows per run, the first "
                                                     "third normal (default: the benchmark's)")
    evaluate.add_argument("--seed", type=_seed,
                          help="with --builtin: the data's and the training's seed (default 0)")
    evaluate.add_argument("--report", metavar="HTML", help="write a self-contained HTML report")
    evaluate.add_argument("--bench", metavar="JSON", help="firmware bench JSON to add to the report")
    evaluate.add_argument("--label-column", help=LABEL_HELP)
    evaluate.add_argument("--sep", choices=list(data.SEPARATORS), metavar="SEP",
                          help="field separator: ',', ';' or tab (default: as for train)")
    evaluate.add_argument("--time-column", help=TIME_HELP)
    evaluate.add_argument("--missing", choices=missing.POLICIES, default=missing.DEFAULT,
                          help=missing.HELP)
    evaluate.add_argument("--columns", help=COLUMNS_HELP)
    evaluate.add_argument("--no-baseline", action="store_true",
                          help="leave out scikit-learn's IsolationForest baseline")
    evaluate.set_defaults(func=cmd_evaluate)

    score = sub.add_parser("score", help="per-row scores and flags of a bundle's detectors "
                                         "on a CSV, as the device computes them")
    score.add_argument("bundle", help=BUNDLE_HELP)
    score.add_argument("csv", help="CSV with the bundle's sensor columns (by the names it was "
                                   "trained on); a label and a time column are copied over")
    score.add_argument("--out", default="build/scores.csv",
                       help="CSV written whole: the time and label columns if any, then "
                            "<detector>_score and <detector>_flag per detector")
    score.add_argument("--detectors", help="comma-separated (default: every one of the bundle)")
    score.add_argument("--engine", choices=("c", "python"), default="c",
                       help="the generated C built for this machine (default) or the Python "
                            "reference: the same output, bit for bit")
    score.add_argument("--label-column", help=LABEL_HELP)
    score.add_argument("--time-column", help=TIME_HELP)
    score.add_argument("--missing", choices=missing.POLICIES, default=missing.DEFAULT,
                       help=missing.HELP)
    score.add_argument("--sep", choices=list(data.SEPARATORS), metavar="SEP",
                       help="field separator: ',', ';' or tab (default: as for train)")
    score.add_argument("--columns", help=COLUMNS_HELP)
    score.set_defaults(func=cmd_score)

    nab_cmd = sub.add_parser("nab", help="the Numenta Anomaly Benchmark: scorer check and our "
                                         "streaming detectors ranked among NAB's published "
                                         "results (results/final_results.json)")
    nab_cmd.add_argument("folder", help="NAB folder (data/, labels/, config/, results/)")
    nab_cmd.add_argument("--detectors", default="streaming_zscore,moving_average",
                         help="comma-separated streaming detectors")
    nab_cmd.add_argument("--engine", choices=("c", "python"), default="c",
                         help="run the generated C on the host (default) or the Python reference")
    nab_cmd.add_argument("--cross-validate", action="store_true",
                         help="also score each half of the files with the setting that does "
                              "best on the other half, among "
                              + ", ".join(f"{k} {'/'.join(f'{v:g}' for v in values)}"
                                          for k, values in CV_GRID.items())
                              + ": an out-of-sample figure, which "
                              "then ranks ours; with --engine c, most of the first run is "
                              "building a C library per file and setting (about 1,300, cached "
                              "in $MCUA_CACHE, default /tmp/mcu-anomaly-host)")
    nab_cmd.add_argument("--set", action="append", default=[], metavar="DET.PARAM=VALUE",
                         help="a setting of every NAB run of the detector, e.g. "
                              "streaming_zscore.mode=frozen (calibrates on each file's "
                              "probation rows unless DET.calibration is set)")
    nab_cmd.set_defaults(func=cmd_nab)
    _fleet_parser(sub)
    return parser


# What to do when writing an output fails, by errno (other errors: check the path).
_OUTPUT_FIXES = {
    errno.EACCES: "give {flag} a directory you may write to",
    errno.EPERM: "give {flag} a directory you may write to",
    errno.EROFS: "give {flag} a directory on a file system you may write to",
    errno.ENOTDIR: "a file is in the way: give {flag} a path that is not under a regular file",
    errno.EEXIST: "a file is in the way: give {flag} a path that is not under a regular file",
    errno.ENOSPC: "free some space there or give {flag} another path",
    errno.EDQUOT: "free some space there or give {flag} another path",
}
OUTPUTS = ("out", "library", "json", "report")  # the arguments that name what a command writes


def _touches(path: str, output: str) -> bool:
    """Whether a failing path is output, above it, inside it or its temporary sibling
    (.<name>.*, codegen/files.py)."""
    path, output = os.path.abspath(path), os.path.abspath(output)
    head, name = os.path.split(output)
    return (path == output or output.startswith(path + os.sep) or path.startswith(output + os.sep)
            or (os.path.dirname(path) == head and os.path.basename(path).startswith(f".{name}.")))


def os_error_message(error: OSError, args) -> str:
    """An OSError (permissions, a file in the way, a full disk) as `<problem>; <fix>`."""
    path = error.filename
    problem = f"{path}: {error.strerror}" if path and error.strerror else str(error)
    for dest in OUTPUTS:
        given = getattr(args, dest, None)
        if path and given and _touches(str(path), str(given)):
            fix = _OUTPUT_FIXES.get(error.errno, "give {flag} another path")
            return f"cannot write --{dest} {given} ({problem}); {fix.format(flag='--' + dest)}"
    return f"{problem}; check that the path exists and that you may read and write it"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {os_error_message(error, args)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
