"""Reference side of `regelkreis bench ann`: hnswlib and faiss-cpu on the same vectors,
queries and ground truth the Rust side wrote. Prints one JSON result per line.

Usage: bench_ann.py DIR   (DIR holds base.f32, queries.f32, truth.u32, meta.json)
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

d = Path(sys.argv[1])
meta = json.loads((d / "meta.json").read_text())
n, dim, nq, k = meta["n"], meta["dim"], meta["queries"], 10
base = np.fromfile(d / "base.f32", dtype=np.float32).reshape(n, dim)
queries = np.fromfile(d / "queries.f32", dtype=np.float32).reshape(nq, dim)
truth = np.fromfile(d / "truth.u32", dtype=np.uint32).reshape(nq, k)


def recall(found):
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def emit(engine, params, rec, qps, build_s, bpv):
    print(json.dumps({"engine": engine, "params": params, "recall_at_10": rec, "qps": qps, "build_s": build_s, "bytes_per_vector": bpv}), flush=True)


PASSES = 3  # as the Rust side: the fastest of three passes over the queries counts


def best_pass(run):
    best, found = 0.0, None
    for _ in range(PASSES):
        t0 = time.perf_counter()
        answer = run()
        qps = nq / (time.perf_counter() - t0)
        if qps > best:
            best, found = qps, answer
    return found, best


import hnswlib  # noqa: E402

index = hnswlib.Index(space="ip", dim=dim)
index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
index.set_num_threads(2)
t0 = time.perf_counter()
index.add_items(base, np.arange(n))
build = time.perf_counter() - t0
path = d / "hnswlib.bin"
index.save_index(str(path))
bpv = path.stat().st_size / n
index.set_num_threads(1)
for ef in meta["ef"]:
    index.set_ef(max(ef, k))
    found, qps = best_pass(lambda: [index.knn_query(q, k=k)[0][0] for q in queries])
    emit("hnswlib", f"M=16,efC=200,ef={ef}", recall(found), qps, build, bpv)

import faiss  # noqa: E402

faiss.omp_set_num_threads(2)
fi = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
fi.hnsw.efConstruction = 200
t0 = time.perf_counter()
fi.add(base)
build = time.perf_counter() - t0
faiss.write_index(fi, str(d / "faiss.bin"))
bpv = (d / "faiss.bin").stat().st_size / n
faiss.omp_set_num_threads(1)
for ef in meta["ef"]:
    fi.hnsw.efSearch = max(ef, k)
    found, qps = best_pass(lambda: [fi.search(q.reshape(1, -1), k)[1][0] for q in queries])
    emit("faiss-hnsw", f"M=16,efC=200,ef={ef}", recall(found), qps, build, bpv)
