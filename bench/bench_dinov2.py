#!/usr/bin/python3
"""PyTorch reference for bench/bench_dinov2.c: the official DINOv2 ViT-S/14 (facebookresearch/dinov2,
the copy in $OODSEG_ASSETS/reference-pytorch/dinov2, default ../shared) with img_size 518, layer scale,
block_chunks 0, plus the linear BNHead (BatchNorm2d + 1x1 conv to 150 classes), random weights, eval,
no_grad, on a 512x512 input: CenterPadding to 518, get_intermediate_layers(n=[8, 9, 10, 11],
reshape=True), the head on the last tap, bilinear resize of the logits to 512x512.
PyTorch 1.13 has no F.scaled_dot_product_attention: it gets softmax((q * d^-0.5) k^T) v, the
shim the goldens were made with (docs/dinov2-segformer.md). Also times the 12 attention calls alone.

usage: /usr/bin/python3 bench/bench_dinov2.py THREADS RUNS"""
import math, os, statistics, sys, time

ASSETS = os.environ.get("OODSEG_ASSETS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
sys.path.insert(0, os.path.join(ASSETS, "reference-pytorch"))
os.environ["XFORMERS_DISABLED"] = "1"

import warnings
warnings.filterwarnings("ignore")  # xFormers absent: the plain attention path, as intended

import torch
import torch.nn as nn
import torch.nn.functional as F


def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    s = scale if scale is not None else q.shape[-1] ** -0.5
    return torch.softmax((q * s) @ k.transpose(-2, -1), dim=-1) @ v


if not hasattr(F, "scaled_dot_product_attention"):
    F.scaled_dot_product_attention = sdpa

from dinov2.models.vision_transformer import vit_small  # noqa: E402


def main():
    threads, runs = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    vit = vit_small(patch_size=14, img_size=518, init_values=1.0, block_chunks=0).eval()
    bn, seg = nn.BatchNorm2d(384).eval(), nn.Conv2d(384, 150, 1).eval()
    x = torch.randn(1, 3, 512, 512)

    def forward():
        H, W = x.shape[2:]
        ph, pw = (math.ceil(H / 14) * 14 - H), (math.ceil(W / 14) * 14 - W)
        xp = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        feats = vit.get_intermediate_layers(xp, n=[8, 9, 10, 11], reshape=True)
        logits = seg(bn(feats[3]))
        return F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)

    n = 1 + 37 * 37
    q, k, v = (torch.randn(1, 6, n, 64) for _ in range(3))

    def attention():
        for _ in range(12):
            sdpa(q, k, v)

    with torch.no_grad():
        forward()
        tf, ta = [], []
        for _ in range(runs):
            t0 = time.perf_counter(); forward(); tf.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); attention(); ta.append(time.perf_counter() - t0)
    f, a = statistics.median(tf), statistics.median(ta)
    print(f"| PyTorch {torch.__version__} | {threads} | {f:.3f} | {a:.3f} | {100 * a / f:.0f} % |")


if __name__ == "__main__":
    main()
