"""The official `openai` Python client against the regelkreis gateway, unchanged.

Run by `crates/regelkreis/tests/cli.rs` (module `gateway`) with RK_BASE (server URL),
RK_KEY (an API key with scopes chat and stats) and RK_MOCK (the mock provider's URL).
Prints one line per check and exits non-zero on the first failure.
"""

import json
import os
import urllib.request

import openai

base = os.environ["RK_BASE"] + "/v1"
key = os.environ["RK_KEY"]
mock = os.environ["RK_MOCK"]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
messages = [
    {"role": "system", "content": "You write short product copy."},
    {"role": "user", "content": "Describe the Aurora kettle in one line."},
]


def check(name, cond, detail=""):
    if not cond:
        raise SystemExit(f"FAIL {name}: {detail}")
    print(f"ok {name}")


def mock_fault(model, faults):
    req = urllib.request.Request(
        mock + "/mock/faults",
        data=json.dumps({"model": model, "faults": faults}).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req).read()


# Chat, tagged by header.
r = client.chat.completions.create(
    model="standard", messages=messages, extra_headers={"x-regelkreis-feature": "pyclient"}
)
check("chat", r.choices[0].message.content and r.usage.prompt_tokens > 0, r)

# Streaming with usage, through OpenAI's protocol and through the Anthropic translation.
for model in ["standard", "claude"]:
    text, usage = "", None
    stream = client.chat.completions.create(
        model=model,
        messages=messages + [{"role": "user", "content": f"stream via {model}"}],
        stream=True,
        stream_options={"include_usage": True},
        metadata={"campaign": "pyclient-stream"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    check(f"stream {model}", text and usage and usage.completion_tokens > 0, (text, usage))

# A stream the provider cuts mid-way raises in the client instead of ending quietly.
mock_fault("gpt-a", [{"kind": "cut_stream", "after": 3}])
try:
    got = ""
    for chunk in client.chat.completions.create(
        model="standard",
        messages=[{"role": "user", "content": "this stream breaks"}],
        stream=True,
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            got += chunk.choices[0].delta.content
    check("stream cut raises", False, f"stream ended quietly after {got!r}")
except openai.APIError as e:
    check("stream cut raises", "incomplete" in str(e) and got, str(e))

# Embeddings from the local MiniLM model.
e = client.embeddings.create(model="minilm", input=["Aurora kettle", "Wasserkocher"])
check("embeddings", len(e.data) == 2 and len(e.data[0].embedding) == 384, len(e.data))

# Models.
ids = [m.id for m in client.models.list()]
check("models", "standard" in ids and "minilm" in ids, ids)

# 401.
try:
    openai.OpenAI(base_url=base, api_key="rk_not_a_key", max_retries=0).models.list()
    check("401", False, "no error")
except openai.AuthenticationError as e:
    check("401", e.status_code == 401 and e.code == "invalid_api_key", e)

# 429 from an exhausted budget (a new question: a cache hit would be free and pass).
try:
    client.chat.completions.create(
        model="standard",
        messages=[{"role": "user", "content": "A question the cache has not seen."}],
        metadata={"campaign": "tiny"},
    )
    check("429 budget", False, "no error")
except openai.RateLimitError as e:
    check("429 budget", e.status_code == 429 and e.code == "budget_exceeded" and "tiny" in str(e), e)

# 404 for an unknown model, OpenAI-shaped.
try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    check("404 model", False, "no error")
except openai.NotFoundError as e:
    check("404 model", e.code == "model_not_found", e)
# Grounded answers through the same endpoint: the `kb` extension field.
kb = os.environ.get("RK_KB")
if kb:
    r = client.chat.completions.create(
        model="cheap",
        messages=[{"role": "user", "content": "How long is the warranty of the Aurora kettle?"}],
        extra_body={"kb": kb},
    )
    extra = r.model_extra or {}
    check("kb answer", "two years" in r.choices[0].message.content and extra.get("citations"), r)
    check("kb confidence", 0 < extra.get("confidence", 0) < 1 and "coverage" in extra.get("signals", {}), extra)
    text, cites = "", None
    for chunk in client.chat.completions.create(
        model="cheap",
        messages=[{"role": "user", "content": "How long is the warranty of the Aurora kettle?"}],
        extra_body={"kb": kb},
        stream=True,
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if (chunk.model_extra or {}).get("citations"):
            cites = chunk.model_extra["citations"]
    check("kb stream", "two years" in text and cites and cites[0]["quote"], (text, cites))
print("all ok")
