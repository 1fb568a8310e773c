"""Several generations at once in one llama.cpp context.

Up to N generations (in as many threads) share a context from the same loaded model:
each holds a *sequence* (its own llama.cpp sequence id and KV stream) and keeps
everything else its own (grammar, copy constraint, budgets, closing mode). What they
share:

* the weights and one context, sized for N sequences;
* the prompt cache: a sequence handed back keeps its KV cells, and a new prompt takes
  over the longest prefix cached in any sequence (copied across streams), so a batch over
  one schema evaluates the instruction and schema once in total;
* one decode thread, which runs every ``llama_decode`` call with the GIL released, so
  that one generation's Python work (grammar checks, the copy constraint) overlaps
  another's decoding. Always the same thread: llama.cpp's CPU backend computes with GNU
  OpenMP, which throttles its workers once several threads have started parallel
  regions; decoding from whichever thread submitted ran 3.5x slower per token.

Each call evaluates one sequence's tokens only. Rows of several sequences in one call
gave a sequence other logits than the same tokens evaluated alone, by up to about 1.0
(BENCHMARKS.md, "Several documents at once"), so greedy outputs would depend on which
documents happened to be decoded together. One sequence per call keeps every output
exactly what one-at-a-time decoding gives. A prompt is evaluated in the same steps as
one sequence alone evaluates it (``engine.prompt_steps``).

Sequences live in separate KV streams (``kv_unified`` off): each token attends only to
its own document's cells, not to the others' masked out.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from thinkjson_edge.engine.prompt_steps import (
    STEP_TOKENS,
    Step,
    prompt_steps,
    reusable_prefix,
    steps_before,
)
from thinkjson_edge.errors import GenerationError, ModelLoadError

if TYPE_CHECKING:
    from llama_cpp import Llama

_BATCH_TOKENS = STEP_TOKENS  # the most tokens one llama_decode call takes
_KV_BYTES_PER_VALUE = 2  # the KV cache is f16 (llama.cpp's default type_k and type_v)
_MEMORY_SHARE = 0.8  # of the memory available now that the KV cache of N sequences may take


@dataclass
class _Request:
    """Tokens a sequence submitted, from ``position`` on; the logits after the last one."""

    tokens: list[int]
    position: int
    logits: np.ndarray | None = None
    error: Exception | None = None


@dataclass
class DecodeStats:
    """What the shared context's llama_decode calls did, for measuring."""

    calls: int = 0
    seconds: float = 0.0

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds


@dataclass
class Sequence:
    """One generation's place in the shared context: what the engine's single-sequence
    methods do (feed, logits, rewind), on its own sequence id."""

    pool: ParallelContext
    seq_id: int
    tokens: list[int] = field(default_factory=list)  # in its KV cells, position by position
    steps: list[Step] = field(default_factory=list)  # how they were evaluated
    evaluating: tuple[list[int], list[Step]] | None = None  # the prompt being evaluated
    _logits: np.ndarray | None = None

    def evaluate_prompt(self, tokens: list[int], steps: list[Step] | None = None) -> int:
        """Evaluate the prompt in ``steps`` (by default, cut at no anchor), reusing the
        longest prefix cached here or in another sequence in the same steps; return the
        tokens reused."""
        steps = steps if steps is not None else prompt_steps(len(tokens))
        reused = self.pool.take_prefix(self, tokens, steps)
        try:
            for start, end in steps:
                if start >= reused:
                    self._logits = self.pool.submit(self, tokens[start:end], start)
                    self.tokens[start:] = tokens[start:end]
                    self.steps.append((start, end))
        finally:
            self.pool.prompt_evaluated(self)
        return reused

    def logits(self) -> np.ndarray:
        if self._logits is None:
            raise GenerationError("no token was evaluated in this sequence yet (a bug)")
        return self._logits

    def feed(self, token: int) -> None:
        position = len(self.tokens)
        self._logits = self.pool.submit(self, [token], position)
        self.tokens.append(token)
        self.steps.append((position, position + 1))

    def position(self) -> int:
        return len(self.tokens)

    def rewind(self, position: int) -> None:
        self.pool.forget_after(self, position)

    def refresh_logits(self) -> None:
        last = self.tokens[-1]
        self.rewind(len(self.tokens) - 1)
        self.feed(last)

    def piece(self, token: int) -> bytes:
        return self.pool.pieces[token]

    def is_end(self, token: int) -> bool:
        return bool(self.pool.api.llama_vocab_is_eog(self.pool.vocab, token))


class ParallelContext:
    """A llama.cpp context with ``n_sequences`` KV streams of ``n_ctx`` tokens each."""

    def __init__(
        self, llm: Llama, api: Any, pieces: list[bytes], *, n_sequences: int, n_ctx: int
    ) -> None:
        from llama_cpp._internals import LlamaContext

        check_memory(api, llm, n_sequences, n_ctx)
        self.api = api
        self.pieces = pieces
        self.vocab = llm._model.vocab
        self.n_vocab = llm.n_vocab()
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx * n_sequences
        params.n_seq_max = n_sequences
        params.kv_unified = False
        params.n_batch = params.n_ubatch = _BATCH_TOKENS
        try:
            self._context = LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(
                f"llama.cpp could not make a context for {n_sequences} sequences of {n_ctx} "
                f"tokens ({exc}); use a smaller --parallel"
            ) from exc
        self._ctx = self._context.ctx
        self._apply_adapter(llm)
        self._memory = api.llama_get_memory(self._ctx)
        self._batch = api.llama_batch_init(_BATCH_TOKENS, 0, 1)
        self.sequences = [Sequence(self, seq_id) for seq_id in range(n_sequences)]
        self._free = list(self.sequences)
        self._requests: dict[int, _Request] = {}
        self._turn = threading.Condition()  # any change: a request, a sequence free, logits
        self._closing = False
        self.stats = DecodeStats()
        self._decoder = threading.Thread(
            target=self._decode_forever, name="llama-decode", daemon=True
        )
        self._decoder.start()

    def _apply_adapter(self, llm: Llama) -> None:
        """Apply the LoRA adapter the model was loaded with: llama.cpp applies an adapter
        per context, and Llama did it for its own context only."""
        adapter = getattr(llm, "_lora_adapter", None)
        if adapter is None:
            return
        adapters = (self.api.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(llm.lora_scale)
        if self.api.llama_set_adapters_lora(self._ctx, adapters, 1, scales):
            self._context.close()
            raise ModelLoadError(f"llama.cpp could not apply the adapter {llm.lora_path}")

    @property
    def n_sequences(self) -> int:
        return len(self.sequences)

    @contextlib.contextmanager
    def sequence(self, prompt: list[int], steps: list[Step]) -> Iterator[Sequence]:
        """A free sequence for one generation (waiting for one if all are busy): the one
        whose cache gives the longest prefix of ``prompt``."""
        with self._turn:
            while not self._free:
                self._turn.wait()
            chosen = max(self._free, key=lambda s: _reusable(s, prompt, steps))
            self._free.remove(chosen)
        try:
            yield chosen
        finally:
            with self._turn:
                self._free.append(chosen)
                self._turn.notify_all()  # the others may have been waiting for this one

    def take_prefix(self, sequence: Sequence, prompt: list[int], steps: list[Step]) -> int:
        """Keep or copy into ``sequence`` the longest cached prefix of ``prompt`` (at least
        one token is left to evaluate, for its logits); return its length.

        When another sequence is evaluating a prompt that shares more, this one waits for
        it and copies then: documents starting together evaluate the instruction and
        schema once, not once each.
        """
        with self._turn:
            while self._longer_prefix_coming(sequence, prompt, steps):
                self._turn.wait()
            sequence.evaluating = (prompt, steps)
            source = max(self.sequences, key=lambda s: _reusable(s, prompt, steps))
            reused = _reusable(source, prompt, steps)
            own = _reusable(sequence, prompt, steps)
            if source is not sequence and reused > own:
                # Across KV streams llama.cpp copies the whole stream (at the next decode,
                # before that decode writes anything); the copy is then cut to the prefix.
                self.api.llama_memory_seq_cp(self._memory, source.seq_id, sequence.seq_id, -1, -1)
                sequence.tokens = list(source.tokens)
                sequence.steps = list(source.steps)
            else:
                reused = own
            self._forget_after(sequence, reused)
            return reused

    def _longer_prefix_coming(
        self, sequence: Sequence, prompt: list[int], steps: list[Step]
    ) -> bool:
        cached = max(_reusable(s, prompt, steps) for s in self.sequences)
        coming = max(
            (
                reusable_prefix(*s.evaluating, prompt, steps)
                for s in self.sequences
                if s.evaluating is not None
            ),
            default=0,
        )
        return coming > cached and sequence.evaluating is None

    def prompt_evaluated(self, sequence: Sequence) -> None:
        with self._turn:
            sequence.evaluating = None
            self._turn.notify_all()

    def forget_after(self, sequence: Sequence, position: int) -> None:
        with self._turn:
            self._forget_after(sequence, position)

    def _forget_after(self, sequence: Sequence, position: int) -> None:
        self.api.llama_memory_seq_rm(self._memory, sequence.seq_id, position, -1)
        del sequence.tokens[position:]
        sequence.steps = steps_before(sequence.steps, position)

    def forget_all(self) -> None:
        """Drop every free sequence's cache, so the next prompts are evaluated in full."""
        with self._turn:
            for sequence in self._free:
                self._forget_after(sequence, 0)

    def submit(self, sequence: Sequence, tokens: list[int], position: int) -> np.ndarray:
        """Evaluate ``tokens`` (one token, or one step of a prompt) at ``position`` of
        ``sequence`` on the decode thread; return the logits after the last one."""
        if not 0 < len(tokens) <= _BATCH_TOKENS:
            raise GenerationError(f"{len(tokens)} tokens cannot be one step (a bug)")
        request = _Request(list(tokens), position)
        with self._turn:
            self._requests[sequence.seq_id] = request
            self._turn.notify_all()
            while request.logits is None and request.error is None:
                self._turn.wait()
        if request.error is not None:
            raise request.error
        assert request.logits is not None
        return request.logits

    def _decode_forever(self) -> None:
        """The decode thread: evaluate each request in a call of its own, oldest first."""
        with self._turn:
            while True:
                while not self._closing and not self._requests:
                    self._turn.wait()
                if self._closing:
                    return
                seq_id = next(iter(self._requests))
                request = self._requests.pop(seq_id)
                try:
                    self._decode(seq_id, request)
                except Exception as error:  # the waiting generation hears of it
                    request.error = (
                        error
                        if isinstance(error, GenerationError)
                        else GenerationError(f"decoding failed: {error}")
                    )
                self._turn.notify_all()

    def _decode(self, seq_id: int, request: _Request) -> None:
        """One llama_decode call of the request's tokens; the logits after the last."""
        batch = self._batch
        count = len(request.tokens)
        for offset, token in enumerate(request.tokens):
            batch.token[offset] = token
            batch.pos[offset] = request.position + offset
            batch.n_seq_id[offset] = 1
            batch.seq_id[offset][0] = seq_id
            batch.logits[offset] = offset == count - 1
        batch.n_tokens = count
        began = time.perf_counter()
        status = self.api.llama_decode(self._ctx, batch)
        self.stats.add(time.perf_counter() - began)
        if status != 0:
            raise GenerationError(
                f"llama.cpp could not decode {count} tokens (status {status}; 1 means the KV "
                "cache is full)"
            )
        pointer = self.api.llama_get_logits_ith(self._ctx, count - 1)
        request.logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def close(self) -> None:
        with self._turn:
            self._closing = True
            self._turn.notify_all()
        self._decoder.join()
        if self._batch is not None:
            self.api.llama_batch_free(self._batch)
            self._batch = None
        self._context.close()


def kv_bytes_per_sequence(api: Any, llm: Llama, n_ctx: int) -> int:
    """Bytes of f16 KV cache one sequence of ``n_ctx`` tokens takes."""
    model = llm._model.model
    heads = api.llama_model_n_head(model)
    per_head = api.llama_model_n_embd(model) // max(heads, 1)
    values = 2 * api.llama_model_n_layer(model) * per_head * api.llama_model_n_head_kv(model)
    return n_ctx * values * _KV_BYTES_PER_VALUE


def check_memory(api: Any, llm: Llama, n_sequences: int, n_ctx: int) -> None:
    """Refuse a parallelism whose KV cache would not fit in the memory available now,
    naming the largest that does (on a CPU; a GPU's memory is llama.cpp's to refuse)."""
    available = _available_memory()
    if available is None:
        return
    per_sequence = kv_bytes_per_sequence(api, llm, n_ctx)
    fitting = int(available * _MEMORY_SHARE // per_sequence)
    if n_sequences > fitting:
        raise ModelLoadError(
            f"--parallel {n_sequences}: the KV cache needs {per_sequence / 2**20:.0f} MiB per "
            f"sequence of {n_ctx} tokens and {available / 2**20:.0f} MiB are available; "
            f"the largest that fits is --parallel {max(fitting, 1)}"
            + (" (or a smaller --context)" if fitting < 1 else "")
        )


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes; None where there is none (not Linux)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _reusable(sequence: Sequence, prompt: list[int], steps: list[Step]) -> int:
    return reusable_prefix(sequence.tokens, sequence.steps, prompt, steps)
