"""SegFormer-B0 + SegformerHead (150 classes) forward time in PyTorch, the reference for
bench_segformer: the rewrite of mmseg's mit.py + segformer_head.py that made the golden
($OODSEG_ASSETS/reference-pytorch/segformer/segformer.py), random weights, eval, no_grad, one
warm-up, then the median of RUNS forwards (encode_decode: logits resized to the input).

    OODSEG_ASSETS=../shared python3 bench/bench_segformer.py WxH THREADS RUNS
"""
import os, sys, time, statistics

assets = os.environ.get("OODSEG_ASSETS", "../shared")
sys.path.insert(0, os.path.join(assets, "reference-pytorch", "segformer"))
import torch  # noqa: E402
import segformer  # noqa: E402

w, h = (int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "512x512").split("x"))
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
torch.set_num_threads(threads)
torch.manual_seed(0)
b0 = dict(embed_dims=32, num_layers=(2, 2, 2, 2), num_heads=(1, 2, 5, 8))
model = segformer.EncoderDecoder(b0, 256, 150).eval()
params = sum(p.numel() for p in model.parameters())
x = torch.randn(1, 3, h, w)
times = []
with torch.no_grad():
    model.encode_decode(x)
    for _ in range(runs):
        t0 = time.perf_counter()
        model.encode_decode(x)
        times.append(time.perf_counter() - t0)
print(f"| PyTorch {torch.__version__} | {threads} | {1e3 * statistics.median(times):.1f} ms | {params} parameters |")
