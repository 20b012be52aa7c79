#!/usr/bin/python3
"""The nominal FLOPs of a forward of the official PyTorch ESPNet and ESPNetv2, counted by hooks.

  tools/flops_reference.py [espnet|espnetv2 ...]

Builds the official classes from $OODSEG_ASSETS/reference-pytorch (default ../shared; the same
constructors as its pt_espnet.py, no weights needed) and runs one 1x3x512x1024 forward with a
forward hook on every Conv2d, ConvTranspose2d and Linear. Each adds 2 FLOPs per multiply-add of
the layer as it ran: 2 * C_out * C_in/groups * kh * kw * H_out * W_out for a conv, 2 * C_in *
C_out/groups * kh * kw * H_in * W_in for a transposed conv. Prints one line per model with the
exact total. tests/test_bench_cmd.c holds `oodseg bench`'s op-counted FLOPs (nn/prof.h) to these
numbers. Needs Debian's python3-torch.
"""
import os
import sys
import types
import warnings

warnings.filterwarnings('ignore')
HERE = os.path.join(os.environ.get('OODSEG_ASSETS', '../shared'), 'reference-pytorch')


def build(which):
    if which == 'espnet':
        sys.path.insert(0, os.path.join(HERE, 'espnet'))
        import Model
        return Model.ESPNet(20, 2, 8)
    sys.path.insert(0, os.path.join(HERE, 'edgenets'))
    from model.segmentation.espnetv2 import ESPNetv2Segmentation
    args = types.SimpleNamespace(s=2.0, channels=3, num_classes=1000, classes=20, dataset='city', weights='')
    return ESPNetv2Segmentation(args, classes=20, dataset='city')


def count(model):
    import torch
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.ConvTranspose2d):   # (a subclass of neither Conv2d nor Linear)
            x = inp[0]
            total[0] += 2 * x.shape[1] * (mod.out_channels // mod.groups) * mod.kernel_size[0] * \
                mod.kernel_size[1] * x.shape[0] * x.shape[2] * x.shape[3]
        elif isinstance(mod, torch.nn.Conv2d):
            total[0] += 2 * out.shape[1] * (mod.in_channels // mod.groups) * mod.kernel_size[0] * \
                mod.kernel_size[1] * out.shape[0] * out.shape[2] * out.shape[3]
        elif isinstance(mod, torch.nn.Linear):
            total[0] += 2 * mod.in_features * mod.out_features * (inp[0].numel() // mod.in_features)

    # torch.nn.Module.modules: ESPNet's class has a list attribute of that name
    for m in torch.nn.Module.modules(model):
        m.register_forward_hook(hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 512, 1024))
    return total[0]


def main():
    models = sys.argv[1:] or ['espnet', 'espnetv2']
    for which in models:
        if which not in ('espnet', 'espnetv2'):
            sys.exit(f'flops_reference.py: unknown model {which!r}: espnet or espnetv2')
    if not os.path.isdir(HERE):
        sys.exit(f'flops_reference.py: no {HERE}: set OODSEG_ASSETS to the folder that holds reference-pytorch/')
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit('flops_reference.py: needs PyTorch: apt-get install python3-torch')
    for which in models:
        print(f'{which} 1024x512: {count(build(which))} FLOPs')


if __name__ == '__main__':
    main()
