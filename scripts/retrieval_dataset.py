#!/usr/bin/env python3
"""Known-item retrieval sets from Debian's package descriptions (English and German).

No BEIR corpus ships in any package reachable here, so this builds the substitute the
knowledge-base issue describes: for each package, the query is its one-line summary
and the one relevant document is its long description. Packages whose summary or long
description is shared with another package are dropped (they have no single right
answer), and so are descriptions shorter than 12 words.

    python3 scripts/retrieval_dataset.py [--docs 10000] [--queries 2000]

Runs `apt-get update` with `Acquire::Languages=en,de` into a private lists folder
(target/retrieval/lists; the system's lists are not touched) and writes
target/retrieval/debian-{en,de}.jsonl (and debian-{en,de}-all.jsonl with every unique
package, for `bench ann --real`): one line per document
`{"id", "text", "query", "split"}`, where `split` is "dev" (fusion parameters are
chosen on it), "test" (reported) or "" (document only, no query). Deterministic.
"""
import argparse, collections, glob, json, os, random, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "retrieval")
LISTS = os.path.join(OUT, "lists")


def update():
    os.makedirs(os.path.join(LISTS, "partial"), exist_ok=True)
    subprocess.run(["apt-get", "update", "-qq", "-o", f"Dir::State::Lists={LISTS}",
                    "-o", "Acquire::Languages=en,de", "-o", "APT::Sandbox::User=root"], check=True)


def records(lang):
    files = sorted(glob.glob(os.path.join(LISTS, f"*dists_bookworm_main_i18n_Translation-{lang}*")))
    if not files:
        raise SystemExit(f"no Translation-{lang} list in {LISTS}")
    text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", files[0]], check=True,
                          capture_output=True).stdout.decode("utf-8", "replace")
    for block in text.split("\n\n"):
        pkg, desc = None, None
        lines = block.split("\n")
        for i, line in enumerate(lines):
            if line.startswith("Package: "):
                pkg = line[9:].strip()
            elif line.startswith(f"Description-{lang}: "):
                summary = line.split(": ", 1)[1].strip()
                body = []
                for l in lines[i + 1:]:
                    if not l.startswith(" "):
                        break
                    l = l[1:]
                    body.append("" if l.strip() == "." else l)
                desc = (summary, "\n".join(body).strip())
        if pkg and desc and desc[1]:
            yield pkg, desc[0], desc[1]


def build(lang, n_docs, n_queries):
    rows = list(records(lang))
    summaries = collections.Counter(s.lower() for _, s, _ in rows)
    bodies = collections.Counter(b for _, _, b in rows)
    seen = set()
    unique = []
    for pkg, s, b in rows:
        if pkg in seen or summaries[s.lower()] > 1 or bodies[b] > 1 or len(b.split()) < 12:
            continue
        seen.add(pkg)
        unique.append((pkg, s, b))
    rng = random.Random(20261128)
    rng.shuffle(unique)
    docs = unique[:n_docs]
    out = os.path.join(OUT, f"debian-{lang}.jsonl")
    with open(out, "w") as f:
        for i, (pkg, s, b) in enumerate(docs):
            split = "dev" if i < n_queries // 2 else "test" if i < n_queries else ""
            f.write(json.dumps({"id": pkg, "text": b, "query": s, "split": split}, ensure_ascii=False) + "\n")
    print(f"{out}: {len(docs)} documents ({len(unique)} unique of {len(rows)}), {min(n_queries, len(docs))} queries")
    # Every unique package, for `bench ann --real` (vectors: descriptions; queries: summaries).
    with open(os.path.join(OUT, f"debian-{lang}-all.jsonl"), "w") as f:
        for pkg, s_, b in unique:
            f.write(json.dumps({"id": pkg, "text": b, "query": s_, "split": ""}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=2000)
    a = ap.parse_args()
    update()
    for lang in ("en", "de"):
        build(lang, a.docs, a.queries)
