"""From a pretraining checkpoint to a table of transfer results, in one command.

    python tools/benchmarks/transfer.py CHECKPOINT --protocol NAME [--trials N] [--gpus G]
        [--work-dir DIR] [--method M] [--data-root DIR] [--port P]
    python tools/benchmarks/transfer.py --list

NAME is a protocol of configs/benchmarks/protocols/ (``--list`` shows them) or
the path of a protocol file. The checkpoint's layout is recognised
(the converter's readers), the protocol's leaf config for its method chosen
(or ``--method``), and the checkpoint converted into the work dir as that
leaf loads it. Each trial i (seed i) runs ``tools/dist_train.sh CONFIG G
--work-dir DIR/trial<i>``, where CONFIG is the leaf with the converted
checkpoint, the data root and the seed filled in, written beside the trial's
logs: the config a user would run by hand. A trial whose final metrics are
there is skipped; an interrupted one resumes from its last checkpoint. The
table (mean ± sample std over the trials, each trial's value, and the
numbers the protocol's sources publish for the method) is written to
DIR/results.md and DIR/results.json and printed.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from crosscl_mm.benchmarks import protocols as P  # noqa: E402
from crosscl_mm.benchmarks.leaf_config import write_run_config  # noqa: E402
from crosscl_mm.benchmarks.results import (final_metrics, published_for, summarise,  # noqa: E402
                                           write_results)
from crosscl_mm.utils.files import open_atomically, save_atomically  # noqa: E402

METRICS_FILE = 'final_metrics.json'


class Refused(Exception):
    """Stop before anything is written, with this message."""


def list_protocols(directory=P.PROTOCOL_DIR) -> str:
    lines = []
    for name, path in P.protocol_paths(directory).items():
        try:
            protocol = P.load_protocol(path)
        except P.ProtocolError as err:
            lines += [name, f'    malformed: {err}']
            continue
        lines += [name, f'    {protocol.title}',
                  f'    dataset: {protocol.dataset} ({protocol.data_root}), '
                  f'ResNet-{protocol.depth}, '
                  f'{protocol.trials} trial(s), metrics: {", ".join(protocol.metrics)}',
                  f'    leaves: {", ".join(protocol.leaves)}',
                  f'    source: {protocol.source}']
    return '\n'.join(lines)


def load(name: str) -> 'P.Protocol':
    if name.endswith('.yml') and osp.isfile(name):
        protocol = P.load_protocol(name)
    else:
        protocol = P.find_protocol(name)
    return P.check_protocol(protocol)


def choose_leaf(protocol, identity, method):
    if method is not None:
        if method not in protocol.leaves:
            raise Refused(f'--method {method}: protocol {protocol.name} has leaves for '
                          f'{", ".join(protocol.leaves)}')
        return protocol.leaves[method]
    fitting = [m for m in identity.methods if m in protocol.leaves]
    if not fitting:
        raise Refused(f'the checkpoint ({identity.describe()}) is a checkpoint of '
                      f'{" or ".join(identity.methods)}; protocol {protocol.name} has leaves for '
                      f'{", ".join(protocol.leaves)} (pass --method to use one of them anyway)')
    if not identity.exact and len(fitting) > 1:
        raise Refused(f'the checkpoint ({identity.describe()}) is a plain ResNet that any of '
                      f'{", ".join(fitting)} may have written: say which with --method')
    return protocol.leaves[fitting[0]]


def check_fits(protocol, leaf, identity, path):
    if identity.depth != protocol.depth:
        raise Refused(f'{path}: a ResNet-{identity.depth or "?"} ({identity.describe()}); '
                      f'protocol {protocol.name} fine-tunes a ResNet-{protocol.depth}')
    kwargs = leaf.convert_kwargs()
    if kwargs['with_fpn'] and not identity.has_fpn:
        raise Refused(f'{path}: the {leaf.method} leaf ({leaf.config}) loads a pretrained FPN, '
                      f'which this checkpoint ({identity.describe()}) does not have')
    if kwargs['with_box_head'] and not identity.has_box_head:
        raise Refused(f'{path}: the {leaf.method} leaf ({leaf.config}) loads a pretrained box '
                      f'head, which this checkpoint ({identity.describe()}) does not have')


def check_dataset(protocol, data_root):
    if not osp.isdir(data_root):
        raise Refused(f'dataset {protocol.dataset}: the folder {data_root} does not exist '
                      f'(protocol {protocol.name} reads it; pass --data-root)')
    missing = [f for f in protocol.required_files if not osp.exists(osp.join(data_root, f))]
    if missing:
        raise Refused(f'dataset {protocol.dataset}: in the folder {data_root}, missing '
                      f'{", ".join(missing)} (protocol {protocol.name} needs '
                      f'{", ".join(protocol.required_files)})')


def run_trial(config, gpus, work_dir, port):
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, str(gpus),
           '--work-dir', work_dir]
    if osp.exists(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')  # mmengine's last checkpoint of an interrupted run
    env = dict(os.environ, PORT=str(port))
    env.setdefault('PYTHON', sys.executable)
    print('+ ' + shlex.join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        sys.exit(f'error: the trial in {work_dir} failed (exit {proc.returncode}); its log is '
                 f'under {work_dir}/<timestamp>/; rerun the same command to resume it')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--protocol', help='a protocol name (see --list) or a protocol file')
    parser.add_argument('--list', action='store_true', help='list the protocols and exit')
    parser.add_argument('--trials', type=int, help="default: the protocol's")
    parser.add_argument('--gpus', type=int, default=8,
                        help='processes per trial (the protocols assume 8 GPUs x 2 images)')
    parser.add_argument('--work-dir', help='default: work_dirs/transfer/<protocol>/<checkpoint>')
    parser.add_argument('--method', choices=P.METHODS,
                        help='the leaf to use (default: the one the checkpoint layout tells)')
    parser.add_argument('--data-root', help="the dataset folder (default: the protocol's)")
    parser.add_argument('--port', type=int, default=29500, help='trial i uses PORT + i')
    args = parser.parse_args(argv)
    if not args.list and (args.checkpoint is None or args.protocol is None):
        parser.error('CHECKPOINT and --protocol are required (or --list)')
    if args.trials is not None and args.trials < 1:
        parser.error('--trials must be at least 1')
    return args


def prepare(args):
    """Everything that can refuse, before anything is written."""
    from crosscl_mm.converters import CheckpointError, load_checkpoint_safely
    from crosscl_mm.converters.encoder_weights import identify_checkpoint
    protocol = load(args.protocol)
    if not osp.isfile(args.checkpoint):
        raise Refused(f'{args.checkpoint}: no such file')
    try:
        ckpt = load_checkpoint_safely(args.checkpoint)
        identity = identify_checkpoint(args.checkpoint, ckpt)
    except CheckpointError as err:
        raise Refused(str(err)) from None
    leaf = choose_leaf(protocol, identity, args.method)
    check_fits(protocol, leaf, identity, args.checkpoint)
    data_root = args.data_root or protocol.data_root
    check_dataset(protocol, data_root)
    return protocol, ckpt, identity, leaf


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print(list_protocols())
        return
    from crosscl_mm.converters.encoder_weights import convert, serialise
    try:
        protocol, ckpt, identity, leaf = prepare(args)
    except (Refused, P.ProtocolError) as err:
        sys.exit(f'error: {err}')
    stem = osp.splitext(osp.basename(args.checkpoint))[0]
    work_dir = osp.abspath(args.work_dir or osp.join('work_dirs', 'transfer', protocol.name, stem))
    trials = args.trials or protocol.trials
    print(f'{args.checkpoint}: {identity.describe()} -> {leaf.method} leaf {leaf.config}',
          flush=True)

    converted = osp.join(work_dir, f'{leaf.method}_{stem}_mmdet.pth')
    conversion = convert(ckpt, path=args.checkpoint, **leaf.convert_kwargs())
    save_atomically(converted, lambda f: serialise(conversion, 'mmdet', args.checkpoint, f))
    data_root = osp.abspath(args.data_root) if args.data_root else None
    keys = protocol.result_keys()
    results = []
    for seed in range(trials):
        trial_dir = osp.join(work_dir, f'trial{seed}')
        done = osp.join(trial_dir, METRICS_FILE)
        if osp.exists(done):
            print(f'trial {seed}: finished already ({done})', flush=True)
        else:
            config = write_run_config(leaf.config_path, converted, trial_dir, seed, data_root)
            run_trial(config, args.gpus, trial_dir, args.port + seed)
            metrics = final_metrics(trial_dir, protocol.dataset, keys)
            if metrics is None:
                sys.exit(f'error: the trial in {trial_dir} logged no {", ".join(keys)}')
            with open_atomically(done, 'w') as f:
                json.dump(metrics, f, indent=2)
        with open(done) as f:
            results.append(dict(seed=seed, work_dir=trial_dir, metrics=json.load(f)))

    report = dict(
        protocol=protocol.name, title=protocol.title, source=protocol.source,
        dataset=protocol.dataset, checkpoint=args.checkpoint, layout=identity.describe(),
        method=leaf.method, leaf_config=leaf.config,
        command=shlex.join(['python', 'tools/benchmarks/transfer.py',
                            *(sys.argv[1:] if argv is None else argv)]),
        trials=results, summary=summarise([r['metrics'] for r in results], keys),
        published=published_for(protocol.published, leaf.method))
    print(write_results(report, osp.join(work_dir, 'results.md'),
                        osp.join(work_dir, 'results.json')))


if __name__ == '__main__':
    main()
