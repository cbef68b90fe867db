"""tools/benchmarks/transfer.py and crosscl_mm.benchmarks: the protocol files
and their checker, a trial's run config, the results table, the refusals,
and the command end to end on generated data (2 trials of the tiny COCO
protocol on 1 process; a rerun trains nothing)."""
import copy
import glob
import importlib.util
import json
import os
import os.path as osp
import statistics
from collections import OrderedDict

import pytest
import torch
import yaml

from conftest import REPO, free_port, python_cmd, run
from crosscl_mm.benchmarks import protocols as P
from crosscl_mm.benchmarks.results import final_metrics, markdown, summarise, write_results

TINY = osp.join(REPO, 'tests', 'configs', 'protocols', 'tiny_mask-rcnn_r50-fpn_coco.yml')
LEAVES = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
ENV = dict(PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')


def transfer_module():
    spec = importlib.util.spec_from_file_location(
        'transfer_tool', osp.join(REPO, 'tools', 'benchmarks', 'transfer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- protocol files

def all_protocol_files():
    return sorted(glob.glob(osp.join(P.PROTOCOL_DIR, '*.yml'))) + [TINY]


@pytest.mark.parametrize('path', all_protocol_files(), ids=osp.basename)
def test_every_protocol_file_passes_the_checker(path):
    """Every protocol in configs/benchmarks/protocols/ (whoever wrote it)
    and the test-only one: well formed, and each leaf config loads and fits
    (depth, what the converted checkpoint holds, metrics, data root)."""
    protocol = P.check_protocol(P.load_protocol(path))
    assert protocol.name == osp.splitext(osp.basename(path))[0]
    for entry in protocol.published:
        assert entry['method'] in protocol.leaves


def tiny_data():
    with open(TINY) as f:
        return yaml.safe_load(f)


def _set(data, path, value):
    *parents, last = path
    for key in parents:
        data = data[key]
    if value is DELETE:
        del data[last]
    else:
        data[last] = value


DELETE = object()
LEAF = ('leaves', 'crosscl-fpn')
# case -> (edits, the field the refusal names, words of the message)
MALFORMED = {
    'name is not the file name': ([(('name',), 'other')], 'name', 'must equal the file name'),
    'title missing': ([(('title',), DELETE)], 'title', 'missing'),
    'unknown dataset': ([(('dataset',), 'cityscapes')], 'dataset', 'cityscapes'),
    'VOC metric on COCO': ([(('metrics',), ['bbox', 'voc_bbox'])], 'metrics', 'coco takes'),
    'no metric': ([(('metrics',), [])], 'metrics', 'coco takes'),
    'depth not a ResNet depth': ([(('depth',), 49)], 'depth', 'no ResNet depth'),
    'depth a string': ([(('depth',), '50')], 'depth', 'must be an integer'),
    'zero trials': ([(('trials',), 0)], 'trials', 'positive'),
    'absolute required file': ([(('required_files',), ['/data/val.json'])], 'required_files',
                               'relative'),
    'unknown field': ([(('notes',), 'x')], 'notes', 'unknown field'),
    'no leaves': ([(('leaves',), {})], 'leaves', 'at least one'),
    'unknown method': ([(('leaves', 'simclr'), {'config': 'x.py', 'convert': {}})],
                       'leaves.simclr', 'unknown method'),
    'leaf without config': ([(LEAF + ('config',), DELETE)], 'leaves.crosscl-fpn.config',
                            'must be the path'),
    'unknown convert key': ([(LEAF + ('convert', 'fpn'), True)],
                            'leaves.crosscl-fpn.convert.fpn', 'unknown'),
    'convert to detectron2': ([(LEAF + ('convert', 'to'), 'detectron2')],
                              'leaves.crosscl-fpn.convert.to', 'must be mmdet'),
    'convert flag not a bool': ([(LEAF + ('convert', 'with_fpn'), 'yes')],
                                'leaves.crosscl-fpn.convert.with_fpn', 'true or false'),
    'c4 with an FPN': ([(LEAF + ('convert', 'c4'), True)], 'leaves.crosscl-fpn.convert',
                       'c4 excludes'),
    'published key unknown': ([(('published', 0, 'mAP'), 40.0)], 'published[0].mAP',
                              'not a result key'),
    'published LVIS key on COCO': ([(('published', 0, 'bbox_APr'), 20.0)],
                                   'published[0].bbox_APr', 'not a result key'),
    'published method not a leaf': ([(('published', 0, 'method'), 'detco')],
                                    'published[0].method', 'not one of the leaves'),
    'published without source': ([(('published', 0, 'source'), DELETE)], 'published[0].source',
                                 'names its source'),
    'published value out of range': ([(('published', 0, 'bbox_AP'), 120)],
                                     'published[0].bbox_AP', 'in [0, 100]'),
}


@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_malformed_protocol_is_refused_naming_file_and_field(tmp_path, case):
    edits, field_name, words = MALFORMED[case]
    data = copy.deepcopy(tiny_data())
    for path, value in edits:
        _set(data, path, value)
    path = str(tmp_path / 'tiny_mask-rcnn_r50-fpn_coco.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(data, f)
    with pytest.raises(P.ProtocolError) as err:
        P.load_protocol(path)
    assert str(err.value).startswith(f'{path}: field "{field_name}": '), str(err.value)
    assert words in str(err.value)


def test_protocol_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    path = str(tmp_path / 'x.yml')
    for text, words in (('- a\n- b\n', 'expected a mapping'), ('name: [a\n', 'not valid YAML')):
        with open(path, 'w') as f:
            f.write(text)
        with pytest.raises(P.ProtocolError, match=words) as err:
            P.load_protocol(path)
        assert str(err.value).startswith(path)


def _leaf_protocol(tmp_path, config, convert, **fields):
    data = dict(tiny_data(), published=[], data_root='data/coco/')
    data.update(fields)
    data['leaves'] = {'crosscl-fpn': {'config': config, 'convert': convert}}
    data['name'] = 'p'
    path = str(tmp_path / 'p.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(data, f)
    return P.load_protocol(path)


FPN_LEAF = 'configs/benchmarks/mmdetection/mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-90k_coco.py'
BACKBONE_LEAF = 'configs/benchmarks/mmdetection/mask-rcnn_r50-fpn_syncbn-all_crosscl_ms-90k_coco.py'
SOCO_LEAF = ('configs/benchmarks/mmdetection/'
             'mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco_ms-90k_coco.py')
VOC_LEAF = 'configs/benchmarks/mmdetection/faster-rcnn_r50-c4_syncbn_crosscl_24k_voc0712.py'
INCONSISTENT = {
    'FPN leaf converted without the FPN': (FPN_LEAF, {'to': 'mmdet'}, {},
                                           'leaves.crosscl-fpn.convert.with_fpn',
                                           'loads model.neck'),
    'backbone leaf converted with the FPN': (BACKBONE_LEAF, {'with_fpn': True}, {},
                                             'leaves.crosscl-fpn.convert.with_fpn',
                                             'does not load model.neck'),
    'FPN leaf converted as C4': (BACKBONE_LEAF, {'c4': True}, {}, 'leaves.crosscl-fpn.convert.c4',
                                 'roi_head.shared_head'),
    'SoCo leaf without its box head': (SOCO_LEAF, {'with_fpn': True}, {},
                                       'leaves.crosscl-fpn.convert.with_box_head',
                                       'roi_head.bbox_head'),
    'depth of another ResNet': (FPN_LEAF, {'with_fpn': True}, {'depth': 101}, 'depth',
                                'model.backbone.depth 50'),
    'segm without a mask head': (VOC_LEAF, {}, {}, 'metrics', 'no mask head'),
    'res5 read from backbone keys, file in the C4 layout': (
        VOC_LEAF, {'c4': True}, {}, 'leaves.crosscl-fpn.convert.c4', "prefixes ['backbone.']"),
    'res5 read from the C4 layout, plain file': (
        'configs/benchmarks/mmdetection/mask-rcnn_r50-c4_syncbn_soco-c4_soco-ms-90k_coco.py', {},
        {}, 'leaves.crosscl-fpn.convert.c4', "prefixes ['roi_head.shared_head.']"),
    'data root not the config\'s': (FPN_LEAF, {'with_fpn': True}, {'data_root': 'data/c/'},
                                    'data_root', "data_root 'data/coco/'"),
    'leaf config missing': ('configs/nope.py', {}, {}, 'leaves.crosscl-fpn.config',
                            'does not exist'),
}


@pytest.mark.parametrize('case', sorted(INCONSISTENT))
def test_protocol_that_does_not_fit_its_leaf_is_refused(tmp_path, case):
    config, convert, fields, field_name, words = INCONSISTENT[case]
    protocol = _leaf_protocol(tmp_path, config, convert, **fields)
    with pytest.raises(P.ProtocolError) as err:
        P.check_protocol(protocol)
    assert str(err.value).startswith(f'{protocol.path}: field "{field_name}": '), str(err.value)
    assert words in str(err.value)


# ---------------------------------------------------------------- run config

def _diff(a, b, where=''):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(key, '<absent>'), b.get(key, '<absent>'), f'{where}.{key}')
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f'{where}.{i}')]
    return [] if a == b else [where]


def test_run_config_replaces_every_pretrained_checkpoint_and_nothing_else(tmp_path):
    """The SoCo leaf loads its checkpoint into the backbone, the FPN and the
    box head: all three load the converted file; the data root moves
    (datasets and the evaluator's annotation file); work_dir and the seed are
    the trial's; every other value is the leaf's."""
    from mmengine.config import Config
    from crosscl_mm.benchmarks.leaf_config import write_run_config
    leaf = osp.join(REPO, SOCO_LEAF)
    work_dir = str(tmp_path / 'trial3')
    path = write_run_config(leaf, '/ckpt/converted.pth', work_dir, 3, '/datasets/coco')
    assert path == osp.join(work_dir, osp.basename(leaf))
    original, ran = P.load_config(leaf).to_dict(), Config.fromfile(path).to_dict()
    assert original['pretrained'] == 'soco_mmdet.pth'
    checkpoints = ['.model.backbone.init_cfg.checkpoint', '.model.neck.init_cfg.0.checkpoint',
                   '.model.roi_head.bbox_head.init_cfg.2.checkpoint']
    roots = ['.data_root', '.train_dataloader.dataset.data_root',
             '.val_dataloader.dataset.data_root', '.test_dataloader.dataset.data_root',
             '.val_evaluator.ann_file', '.test_evaluator.ann_file']
    assert sorted(_diff(original, ran)) == sorted(
        checkpoints + roots + ['.pretrained', '.work_dir', '.randomness'])
    assert ran['model']['backbone']['init_cfg']['checkpoint'] == '/ckpt/converted.pth'
    assert ran['model']['neck']['init_cfg'][0]['checkpoint'] == '/ckpt/converted.pth'
    assert ran['model']['roi_head']['bbox_head']['init_cfg'][2]['checkpoint'] == \
        '/ckpt/converted.pth'
    assert ran['val_evaluator']['ann_file'] == '/datasets/coco/annotations/instances_val2017.json'
    assert ran['train_dataloader']['dataset']['data_root'] == '/datasets/coco/'
    assert ran['work_dir'] == work_dir and ran['randomness'] == dict(seed=3)
    assert os.listdir(work_dir) == [osp.basename(leaf)]  # no temporary file left


# ---------------------------------------------------------------- results

def write_scalars(work_dir, records, stamp='20260101_000000'):
    folder = osp.join(work_dir, stamp, 'vis_data')
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        f.write(''.join(json.dumps(r) + '\n' for r in records))


def test_results_are_the_last_validation_in_percent_with_mean_and_sample_std(tmp_path):
    """Three VOC trials: AP = pascal_voc/mAP of each trial's last validation
    (a resumed run's later folder counts), in percent; the mean and the
    sample standard deviation are checked against numbers worked out by hand."""
    values = [(0.401, 0.801, 0.451), (0.405, 0.806, 0.449), (0.399, 0.799, 0.458)]
    trials = []
    for i, (ap, ap50, ap75) in enumerate(values):
        work_dir = str(tmp_path / f'trial{i}')
        write_scalars(work_dir, [{'loss': 1.0, 'step': 10},
                                 {'pascal_voc/mAP': 0.1, 'pascal_voc/AP50': 0.2,
                                  'pascal_voc/AP75': 0.3, 'step': 1}])
        write_scalars(work_dir, [{'pascal_voc/mAP': ap, 'pascal_voc/AP50': ap50,
                                  'pascal_voc/AP75': ap75, 'step': 1}], '20260102_000000')
        trials.append(final_metrics(work_dir, 'voc0712', ['AP', 'AP50', 'AP75']))
    assert trials[0] == pytest.approx({'AP': 40.1, 'AP50': 80.1, 'AP75': 45.1})
    summary = summarise(trials, ['AP', 'AP50', 'AP75'])
    # AP: 40.1, 40.5, 39.9 -> mean 40.1667; deviations -0.0667, 0.3333, -0.2667;
    # squares 0.004444 + 0.111111 + 0.071111 = 0.186667, / (3 - 1) = 0.093333, sqrt 0.305505
    assert summary['AP']['mean'] == pytest.approx(40.166667, abs=1e-5)
    assert summary['AP']['std'] == pytest.approx(0.305505, abs=1e-5)
    assert summary['AP']['n'] == 3 and summary['AP']['values'] == pytest.approx([40.1, 40.5, 39.9])
    # AP75: 45.1, 44.9, 45.8 -> mean 45.2667; squares 0.02778 + 0.13444 + 0.28444 = 0.44667
    assert summary['AP75']['mean'] == pytest.approx(45.266667, abs=1e-5)
    assert summary['AP75']['std'] == pytest.approx((0.446667 / 2) ** 0.5, abs=1e-5)
    one = summarise(trials[:1], ['AP'])
    assert one['AP']['std'] is None and one['AP']['mean'] == pytest.approx(40.1)
    assert final_metrics(str(tmp_path / 'trial0'), 'voc0712', ['AP'], step=2) is None
    assert final_metrics(str(tmp_path / 'none'), 'voc0712', ['AP']) is None

    report = dict(title='T', protocol='p', source='s', checkpoint='c.pth', layout='l',
                  method='densecl', leaf_config='leaf.py', command='python x',
                  trials=[dict(seed=i, work_dir='w', metrics=t) for i, t in enumerate(trials)],
                  summary=summary, published=[dict(method='densecl', AP50=83.57, source='README')])
    text = write_results(report, str(tmp_path / 'results.md'), str(tmp_path / 'results.json'))
    assert '| AP | 40.17 | 0.31 | 3 | 40.10, 40.50, 39.90 | – |' in text
    assert '| AP50 | 80.20 | 0.36 | 3 | 80.10, 80.60, 79.90 | 83.57 |' in text
    assert '[1] README' in text
    assert open(str(tmp_path / 'results.md')).read() == text == markdown(report)
    assert json.load(open(str(tmp_path / 'results.json')))['summary']['AP']['std'] == \
        pytest.approx(0.305505, abs=1e-5)
    assert not [f for f in os.listdir(str(tmp_path)) if f.endswith('.partial')]


# ---------------------------------------------------------------- checkpoints

def test_identify_checkpoint_names_the_method_its_layout_tells():
    import torchvision
    from crosscl_mm.converters import CheckpointError
    from crosscl_mm.converters.encoder_weights import identify_checkpoint
    resnet = torchvision.models.resnet18().state_dict()
    plain = identify_checkpoint('r18.pth', {'state_dict': resnet})
    assert (plain.depth, plain.exact, plain.has_fpn) == (18, False, False)
    assert 'densecl' in plain.methods and 'detco' in plain.methods
    moco = identify_checkpoint('moco.pth', {'state_dict': OrderedDict(
        [('module.encoder_q.' + k, v) for k, v in resnet.items()]
        + [('module.queue', torch.zeros(2, 2))])})
    assert moco.methods[0] == 'mocov2' and not moco.exact
    detco = identify_checkpoint('detco.pth', {'state_dict': OrderedDict(
        [('backbone.' + k, v) for k, v in resnet.items()]
        + [('local_necks.0.fc.weight', torch.zeros(2, 2))])})
    assert (detco.methods, detco.exact, detco.depth) == (('detco',), True, 18)
    with pytest.raises(CheckpointError, match='unknown layout'):
        identify_checkpoint('junk.pth', {'state_dict': {'weights.0': torch.zeros(1)}})


@pytest.fixture(scope='module')
def crosscl_checkpoint(module_tmp_path):
    """A crosscl_mm CrossCL checkpoint (mmdet ResNet-50 and TopDownFPN,
    random weights, with its queue), as pretraining writes it."""
    from crosscl_mm.registry import MODELS
    torch.manual_seed(7)  # not a trial's seed: the detector's own init differs from these
    state = OrderedDict()
    for prefix, cfg in (('backbone.', dict(type='mmdet.ResNet', depth=50, out_indices=(1, 2, 3))),
                        ('fpn.', dict(type='crosscl_mm.TopDownFPN',
                                      in_channels=(512, 1024, 2048)))):
        module = MODELS.build(cfg)
        module.init_weights()
        state.update((prefix + k, v) for k, v in module.state_dict().items())
    state['queue.ptr'] = torch.zeros(1, dtype=torch.long)
    path = str(module_tmp_path / 'crosscl_epoch_1.pth')
    torch.save({'state_dict': state}, path)
    return path


# ---------------------------------------------------------------- the command

def test_list_shows_every_protocol_with_title_dataset_leaves_and_source(capsys):
    transfer_module().main(['--list'])
    out = capsys.readouterr().out
    for name, path in P.protocol_paths().items():
        protocol = P.load_protocol(path)
        block = out[out.index(name + '\n'):]
        assert protocol.title in block and protocol.source in block
        assert f'leaves: {", ".join(protocol.leaves)}' in block
        assert f'dataset: {protocol.dataset} ({protocol.data_root})' in block
    assert 'tiny_mask-rcnn' not in out  # the test-only protocol is not one of them


def refused(tmp_path, argv, words):
    work_dir = str(tmp_path / 'work')
    with pytest.raises(SystemExit) as err:
        transfer_module().main(argv + ['--work-dir', work_dir])
    assert str(err.value).startswith('error: ') and words in str(err.value), str(err.value)
    assert not osp.exists(work_dir)  # nothing written
    return str(err.value)


def test_refusals_write_nothing(tmp_path, shapes_data, crosscl_checkpoint):
    root = shapes_data['coco']
    message = refused(tmp_path, [crosscl_checkpoint, '--protocol', 'nope'],
                      "unknown protocol 'nope'")
    assert all(name in message for name in P.protocol_paths())
    # a dataset folder without the validation annotations
    partial = tmp_path / 'partial'
    partial.mkdir()
    os.symlink(osp.join(root, 'images'), str(partial / 'images'))
    os.symlink(osp.join(root, 'train.json'), str(partial / 'train.json'))
    refused(tmp_path, [crosscl_checkpoint, '--protocol', TINY, '--data-root', str(partial)],
            f'dataset coco: in the folder {partial}, missing val.json')
    refused(tmp_path, [crosscl_checkpoint, '--protocol', TINY, '--data-root',
                       str(tmp_path / 'nowhere')], f'the folder {tmp_path / "nowhere"} does not')
    # an R50 checkpoint for the R101 protocol
    refused(tmp_path, [crosscl_checkpoint, '--protocol', 'densecl_faster-rcnn_r101-c4_24k_voc0712',
                       '--method', 'densecl', '--data-root', root],
            'a ResNet-50 (crosscl_mm, ResNet-50 with FPN); protocol '
            'densecl_faster-rcnn_r101-c4_24k_voc0712 fine-tunes a ResNet-101')
    refused(tmp_path, [crosscl_checkpoint, '--protocol', 'densecl_faster-rcnn_r101-c4_24k_voc0712',
                       '--data-root', root], 'has leaves for densecl, regioncl-d')
    junk = str(tmp_path / 'junk.pth')
    torch.save({'state_dict': {'weights.0': torch.zeros(1)}}, junk)
    refused(tmp_path, [junk, '--protocol', TINY, '--data-root', root], 'unknown layout')
    text = str(tmp_path / 'text.pth')
    with open(text, 'w') as f:
        f.write('not a checkpoint')
    refused(tmp_path, [text, '--protocol', TINY, '--data-root', root], text)
    # a backbone without the FPN that the leaf loads
    backbone = str(tmp_path / 'moco.pth')
    state = torch.load(crosscl_checkpoint, weights_only=True)['state_dict']
    torch.save({'state_dict': {'module.encoder_q.' + k[9:]: v for k, v in state.items()
                               if k.startswith('backbone.')}}, backbone)
    refused(tmp_path, [backbone, '--protocol', TINY, '--data-root', root, '--method',
                       'crosscl-fpn'], 'loads a pretrained FPN, which this checkpoint')


def scalars_of(trial_dir):
    """The final validation, read straight from the trial's scalars.json."""
    paths = glob.glob(osp.join(trial_dir, '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for p in sorted(paths) for line in open(p) if line.strip()]
    return [r for r in records if 'coco/bbox_mAP' in r][-1]


def transfer_cmd(checkpoint, work_dir, root, port):
    return python_cmd('tools/benchmarks/transfer.py', checkpoint, '--protocol', TINY,
                      '--gpus', '1', '--work-dir', work_dir, '--data-root', root,
                      '--port', str(port))


def test_transfer_end_to_end_then_a_rerun_skips_the_finished_trials(
        tmp_path, shapes_data, crosscl_checkpoint, capsys):
    """The tiny COCO protocol (2 trials, 2 iterations each) from a raw CrossCL
    checkpoint: recognised as crosscl-fpn, converted with its FPN, each trial
    run by dist_train.sh on the written config; the table's numbers are each
    trial's logged metrics in percent, with their mean and sample std."""
    work_dir, root = str(tmp_path / 'work'), shapes_data['coco']
    proc = run(transfer_cmd(crosscl_checkpoint, work_dir, root, free_port()), env=ENV,
               timeout=1500)
    assert 'crosscl_mm, ResNet-50 with FPN -> crosscl-fpn leaf' in proc.stdout
    converted = osp.join(work_dir, 'crosscl-fpn_crosscl_epoch_1_mmdet.pth')
    report = json.load(open(osp.join(work_dir, 'results.json')))
    assert report['method'] == 'crosscl-fpn' and len(report['trials']) == 2
    names = {'bbox_AP': 'coco/bbox_mAP', 'bbox_AP50': 'coco/bbox_mAP_50',
             'bbox_AP75': 'coco/bbox_mAP_75', 'segm_AP': 'coco/segm_mAP',
             'segm_AP50': 'coco/segm_mAP_50', 'segm_AP75': 'coco/segm_mAP_75'}
    logged = []
    for seed in (0, 1):
        trial_dir = osp.join(work_dir, f'trial{seed}')
        config = osp.join(trial_dir, 'transfer_tiny_mask-rcnn_r50-fpn_coco.py')
        text = open(config).read()
        assert f'randomness = dict(seed={seed})' in text and converted in text
        log = open(glob.glob(osp.join(trial_dir, '*', '*.log'))[0]).read()
        for tensor in ('backbone.layer4.2.conv3.weight', 'neck.lateral_convs.3.conv.weight'):
            block = log[log.index(tensor + ' - torch.Size'):][:400]
            assert f'PretrainedInit: load from {converted}' in block
        final = scalars_of(trial_dir)
        logged.append({key: 100 * final[name] for key, name in names.items()})
        assert report['trials'][seed]['metrics'] == pytest.approx(logged[-1])
    table = open(osp.join(work_dir, 'results.md')).read()
    assert table in proc.stdout
    for key in names:
        values = [t[key] for t in logged]
        row = report['summary'][key]
        assert row['mean'] == pytest.approx(sum(values) / 2)
        assert row['std'] == pytest.approx(statistics.stdev(values))
        assert (f'| {key} | {sum(values) / 2:.2f} | {statistics.stdev(values):.2f} | 2 | '
                f'{values[0]:.2f}, {values[1]:.2f} | ') in table
    assert '| bbox_AP |' in table and table.split('| bbox_AP |')[1].split('\n')[0].endswith(
        '| 1.50 |')  # the published number beside the row
    assert '[1] not a publication' in table
    assert f'--work-dir {work_dir}' in report['command']

    # The same command again (in this process: it starts no training).
    stamps = sorted(glob.glob(osp.join(work_dir, 'trial*', '2*')))
    transfer_module().main(transfer_cmd(crosscl_checkpoint, work_dir, root, free_port())[2:])
    out = capsys.readouterr().out
    assert out.count('finished already') == 2 and 'dist_train.sh' not in out
    assert sorted(glob.glob(osp.join(work_dir, 'trial*', '2*'))) == stamps  # nothing trained
    assert json.load(open(osp.join(work_dir, 'results.json')))['summary'] == report['summary']


@pytest.mark.slow
def test_an_interrupted_trial_resumes_from_its_last_checkpoint(
        tmp_path, shapes_data, crosscl_checkpoint):
    """The tiny leaf with 3 iterations and a checkpoint after each: the
    command is killed once the first checkpoint is written; the same command
    again resumes that trial (dist_train.sh --resume) and finishes it."""
    import signal
    import subprocess
    import time
    leaf = str(tmp_path / 'tiny_resume_leaf.py')
    with open(leaf, 'w') as f:
        f.write(f"_base_ = '{REPO}/tests/configs/transfer_tiny_mask-rcnn_r50-fpn_coco.py'\n"
                "train_cfg = dict(max_iters=3, val_interval=3)\n"
                "default_hooks = dict(checkpoint=dict(interval=1, save_last=True, "
                "max_keep_ckpts=1))\n")
    data = dict(tiny_data(), name='tiny_resume', trials=1, published=[])
    data['leaves'] = {'crosscl-fpn': {'config': leaf, 'convert': {'to': 'mmdet',
                                                                   'with_fpn': True}}}
    protocol = str(tmp_path / 'tiny_resume.yml')
    with open(protocol, 'w') as f:
        yaml.safe_dump(data, f)
    work_dir, root = str(tmp_path / 'work'), shapes_data['coco']
    cmd = transfer_cmd(crosscl_checkpoint, work_dir, root, free_port())
    cmd[cmd.index(TINY)] = protocol
    trial = osp.join(work_dir, 'trial0')
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, **ENV), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 1200
    while not osp.exists(osp.join(trial, 'last_checkpoint')) and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before its first checkpoint'
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not osp.exists(osp.join(trial, 'final_metrics.json'))
    cmd[-1] = str(free_port())
    again = run(cmd, env=ENV, timeout=1500)
    assert '--resume' in again.stdout
    logs = sorted(glob.glob(osp.join(trial, '2*', '*.log')))
    assert len(logs) == 2 and 'resumed epoch: 0, iter: ' in open(logs[-1]).read()
    final = scalars_of(trial)
    report = json.load(open(osp.join(work_dir, 'results.json')))
    assert report['trials'][0]['metrics']['bbox_AP50'] == \
        pytest.approx(100 * final['coco/bbox_mAP_50'])
