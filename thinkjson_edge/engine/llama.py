"""One llama.cpp session: load a GGUF, format chats, and decode under a grammar.

Decoding is our own loop over llama.cpp's low-level API, because extraction
needs what a plain completion call does not give:

* the reasoning block gets a token budget; when it runs out (or the model
  repeats itself), the closing tag is forced and the JSON begins;
* the JSON can never be cut off: near the end of its budget decoding switches
  to *closing mode*, where tokens that close strings, arrays and objects are
  preferred wherever the grammar allows them, so the object is finished in a
  few tokens; when the model loops, the value holding the loop is closed the
  same way and decoding then goes on normally;
* each step samples first and checks only the chosen token against the
  grammar; when it is refused, the next few candidates are checked one by one,
  and the whole vocabulary is masked only when none of them passes. Greedy
  decoding picks exactly what full masking picks, and sampling follows the
  masked distribution exactly (rejection sampling).
* string values the schema says are copied may only be spans of the document: a
  second constraint beside the grammar (``copy_guard``), checked on the same fast
  path; each scalar value gets a confidence from the model's own probabilities;
* a later array item whose first value the document does not support is taken back,
  and the array closed before it (``item_check``);
* the prompt's KV state is kept, and a later prompt that shares its prefix
  (a second attempt, the next document of a batch) evaluates only what differs, cut
  into the same calls as when nothing is cached (``engine.prompt_steps``);
* with ``parallel`` above 1, up to that many generations (in as many threads) share
  one context, its prompt cache and its decode thread (``engine.parallel``).

``llama_cpp`` is imported here only, lazily, so that importing the package stays light.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from thinkjson_edge.engine.confidence import ConfidenceParts
from thinkjson_edge.engine.copy_guard import CopyGuard, SavedCopy, SortedVocabulary
from thinkjson_edge.engine.generation import (
    STOP_COMPLETE,
    STOP_TIME_LIMIT,
    STOP_TOKEN_LIMIT,
    CopyRequest,
    DecodeLimits,
    Generation,
    PieceListener,
    ValueTrace,
)
from thinkjson_edge.engine.item_check import ITEM_MIN_CONFIDENCE, PendingItem, later_item_begun
from thinkjson_edge.engine.json_values import JsonValues
from thinkjson_edge.engine.output import Output
from thinkjson_edge.engine.parallel import ParallelContext
from thinkjson_edge.engine.prompt_steps import Step, prompt_steps, reusable_prefix, steps_before
from thinkjson_edge.engine.span_search import BranchingModel, PlannedToken, SpanSearch
from thinkjson_edge.environment import bound_openmp_spinning
from thinkjson_edge.errors import DocumentTooLongError, GenerationError, ModelLoadError
from thinkjson_edge.grammar.compiler import THINK_OPEN

if TYPE_CHECKING:
    from llama_cpp import Llama

DEVICES = ("auto", "cpu", "cuda", "metal")
DEFAULT_CONTEXT = 8192
# Generations in flight when the caller leaves it to the engine: on a CPU llama.cpp's
# matrix products already use every core (BENCHMARKS.md, "Several documents at once"); on
# a GPU a token's evaluation is short beside the Python work the others can fill.
DEFAULT_PARALLEL_CPU = 1
DEFAULT_PARALLEL_GPU = 8
# The high-level Llama's own context when generations go through a ParallelContext: only
# its vocabulary and chat template are used then, so its KV cache is kept small.
_IDLE_CONTEXT = 256
_CLOSING_BIAS = 1000.0  # far above any logit: a closer wins wherever the grammar allows it
_LOOP_MAX_PERIOD = 256  # bytes, see loop_span
_LOOP_MIN_COPIES = 4
_LOOP_MIN_BYTES = 32
# Candidates checked one by one before the whole vocabulary is masked (see first_allowed):
# one check costs microseconds, a mask of a 49K vocabulary milliseconds. Forced literals
# (a property name the model would tokenise differently) often sit near rank 40.
_FAST_CANDIDATES = 256
_FAST_SAMPLES = 16
_SPAN_MAX_TOKENS = 48  # a searched value that has not closed by then is dropped
_CLOSING_TIME_SHARE = 0.9  # of max_seconds: when closing mode starts on a time budget
_HARD_STOP_FACTOR = 4  # JSON tokens, in budgets plus reserves, after which decoding stops
_CLOSERS = frozenset(b'"]}')
_CLOSERS_WITH_COMMA = frozenset(b'"]},')


class DecodingContext(BranchingModel, Protocol):
    """Where one generation's tokens are evaluated: the engine's own context, or one
    sequence of a shared one (``engine.parallel.Sequence``)."""

    def evaluate_prompt(self, tokens: list[int], steps: list[Step] | None = None) -> int: ...
    def refresh_logits(self) -> None: ...


class Engine:
    """A loaded model and its context, reused across many generations.

    ``adapter``: a LoRA adapter GGUF that llama.cpp applies to the model as it loads.
    ``parallel``: generations that may run at once (from as many threads), each with a
    context of ``n_ctx`` tokens, in one shared llama.cpp context. None: the
    device's default.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        adapter: str | Path | None = None,
        device: str = "auto",
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        parallel: int | None = 1,
    ) -> None:
        if device not in DEVICES:
            raise ModelLoadError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        bound_openmp_spinning()
        import llama_cpp
        from llama_cpp._internals import LlamaTokenDataArray

        gpu_layers = _gpu_layers(llama_cpp, device)
        if parallel is None:
            parallel = DEFAULT_PARALLEL_GPU if gpu_layers else DEFAULT_PARALLEL_CPU
        if parallel < 1:
            raise ModelLoadError(f"parallel must be at least 1, not {parallel}")

        self._api = llama_cpp
        self.model_path = Path(model_path)
        self.adapter_path = Path(adapter) if adapter is not None else None  # LoRA, unmerged
        self.device = device
        started = time.perf_counter()
        threads = n_threads or _available_cores()
        try:
            with plain_weight_buffers(llama_cpp):
                self._llm: Llama = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    lora_path=str(self.adapter_path) if self.adapter_path else None,
                    n_ctx=n_ctx if parallel == 1 else _IDLE_CONTEXT,
                    n_gpu_layers=gpu_layers,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            loaded = f"{self.model_path}" + (f" with {self.adapter_path}" if adapter else "")
            raise ModelLoadError(f"llama.cpp could not load {loaded}: {exc}") from exc
        self.n_ctx = self._llm.n_ctx() if parallel == 1 else n_ctx
        self.n_vocab = self._llm.n_vocab()
        model = self._llm._model
        self._vocab = model.vocab
        self._pieces = _token_pieces(llama_cpp, self._vocab, self.n_vocab)
        self._closing_bias = _closing_bias(self._pieces)
        self._steps: list[Step] = []  # how the cached tokens were evaluated (prompt_steps)
        self._token_data = LlamaTokenDataArray
        self._per_thread = threading.local()  # each thread's candidate array for masking
        self._formatter = _chat_formatter(self._llm)
        self._sorted_vocabulary: SortedVocabulary | None = None  # built on first copy
        self._parallel: ParallelContext | None = None
        if parallel > 1:
            try:
                self._parallel = ParallelContext(
                    self._llm, llama_cpp, self._pieces, n_sequences=parallel, n_ctx=n_ctx
                )
            except BaseException:
                self._llm.close()
                raise
        self.load_seconds = time.perf_counter() - started

    @property
    def parallel(self) -> int:
        """How many generations may decode at once."""
        return self._parallel.n_sequences if self._parallel is not None else 1

    def candidates(self) -> Any:
        """The calling thread's candidate array for masking the whole vocabulary."""
        array = getattr(self._per_thread, "candidates", None)
        if array is None:
            array = self._per_thread.candidates = self._token_data(n_vocab=self.n_vocab)
        return array

    # -- prompts -----------------------------------------------------------

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt text for a conversation, by the model's own chat template."""
        return self._formatter(messages=list(messages)).prompt

    def tokenize(self, text: str) -> list[int]:
        model = self._llm._model
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        bos = model.token_bos()
        if model.add_bos_token() and bos >= 0 and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return tokens

    # -- generation --------------------------------------------------------

    def generate(
        self,
        prompt_tokens: list[int],
        grammar: str,
        *,
        think: bool,
        limits: DecodeLimits,
        on_piece: PieceListener | None = None,
        copy: CopyRequest | None = None,
        anchors: Sequence[int] = (),
    ) -> Generation:
        """Generate the output for a prompt under a GBNF grammar (see the module docstring).

        ``on_piece`` sees each token's bytes as it is written, and whether it is reasoning;
        an exception it raises (a cancellation) stops the generation and propagates.
        ``copy`` names the string values that must be spans of a document. ``anchors``:
        positions where the prompt's evaluation is cut, so that a later prompt sharing
        the tokens before one reuses them (``engine.prompt_steps``). With
        ``parallel`` above 1 this may be called from that many threads at once.
        """
        if not self.fits(len(prompt_tokens), limits, think=think):
            raise DocumentTooLongError(
                f"the prompt is {len(prompt_tokens)} tokens and the model's context holds "
                f"{self.n_ctx}; shorten the document or use a model with a longer context"
            )
        steps = prompt_steps(len(prompt_tokens), anchors)
        with self._context_for(prompt_tokens, steps) as context:
            started = time.perf_counter()
            cached = context.evaluate_prompt(prompt_tokens, steps)
            prompt_seconds = time.perf_counter() - started
            run = _Decoding(
                self,
                context,
                grammar,
                think=think,
                limits=limits,
                room=self.n_ctx - len(prompt_tokens),
                on_piece=on_piece,
                copy=copy,
                started=started,
            )
            try:
                run.decode()
            finally:
                run.close()
        finished = time.perf_counter()
        first = run.first_token_at or finished
        return Generation(
            text=run.output.text(),
            reasoning=run.output.reasoning() if think else None,
            json_text=run.output.json_text(),
            stop_reason=run.stop_reason,
            think_stop_reason=run.think_stop_reason,
            prompt_tokens=len(prompt_tokens),
            cached_prompt_tokens=cached,
            generated_tokens=len(run.tokens),
            think_tokens=run.think_tokens,
            prompt_seconds=prompt_seconds,
            first_token_seconds=first - started,
            decode_seconds=finished - started - prompt_seconds,
            values=run.value_traces(),
            dropped_items=run.items_dropped,
        )

    @contextlib.contextmanager
    def _context_for(
        self, prompt_tokens: list[int], steps: list[Step]
    ) -> Iterator[DecodingContext]:
        """This engine's own context, or a sequence of the shared one (waiting for a free
        one when every sequence is busy)."""
        if self._parallel is None:
            yield self
            return
        with self._parallel.sequence(prompt_tokens, steps) as sequence:
            yield sequence

    def fits(self, prompt_tokens: int, limits: DecodeLimits, *, think: bool) -> bool:
        """Whether a prompt this long leaves room for the reasoning budget and the closing."""
        reasoning = limits.max_think_tokens if think else 0
        return prompt_tokens + limits.closing_reserve + reasoning <= self.n_ctx

    def grammar_accepts(self, grammar: str, text: str) -> bool:
        """Whether llama.cpp's grammar engine, as used in generation, accepts ``text`` whole.

        The text's tokens are fed through a fresh grammar sampler one by one; the text is
        accepted when every token is allowed and the grammar may end after the last one.
        No model evaluation happens, so this is fast enough for measuring a compiler.
        A text the model's vocabulary cannot spell (a byte no token writes) is not accepted:
        the model could never write it.
        """
        tokens = self.encode_plain(text)
        if b"".join(self._pieces[t] for t in tokens) != text.encode("utf-8"):
            return False
        sampler = self.new_grammar(grammar)
        try:
            for token in tokens:
                if not sampler.allows(token):
                    return False
                sampler.accept(token)
            return sampler.allows(self._llm._model.token_eos())
        finally:
            sampler.close()

    def forget_prompt(self) -> None:
        """Drop the cached prompt state, so the next prompt is evaluated in full."""
        self.rewind(0)
        if self._parallel is not None:
            self._parallel.forget_all()

    def evaluate_prompt(self, tokens: list[int], steps: list[Step] | None = None) -> int:
        """Evaluate the prompt in ``steps`` (by default, cut at no anchor), reusing the
        longest cached prefix evaluated in the same steps; return the tokens reused."""
        llm = self._llm
        steps = steps if steps is not None else prompt_steps(len(tokens))
        reused = reusable_prefix(llm.input_ids[: llm.n_tokens], self._steps, tokens, steps)
        self.rewind(reused)
        for start, end in steps:
            if start >= reused:
                llm.eval(tokens[start:end])  # one llama_decode call: a step fits n_batch
                self._steps.append((start, end))
        return reused

    # -- low-level steps used by _Decoding ------------------------------------

    def logits(self) -> np.ndarray:
        pointer = self._api.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def feed(self, token: int) -> None:
        position = self.position()
        self._llm.eval([token])
        self._steps.append((position, position + 1))

    def position(self) -> int:
        """Tokens in the context now (the prompt and what was fed since)."""
        return int(self._llm.n_tokens)

    def rewind(self, position: int) -> None:
        """Forget every token after ``position``; the next ``feed`` overwrites them."""
        self._llm.n_tokens = position
        self._steps = steps_before(self._steps, position)

    def refresh_logits(self) -> None:
        """Decode the last token in the context again, so that ``logits`` is that of the
        current position (after a ``rewind`` they are those of whatever was decoded last)."""
        position = self.position()
        last = int(self._llm.input_ids[position - 1])
        self.rewind(position - 1)
        self.feed(last)

    def is_end(self, token: int) -> bool:
        return bool(self._api.llama_vocab_is_eog(self._vocab, token))

    def piece(self, token: int) -> bytes:
        return self._pieces[token]

    def encode_plain(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def new_grammar(self, text: str) -> _GrammarSampler:
        return _GrammarSampler(self, text)

    def sorted_vocabulary(self) -> SortedVocabulary:
        if self._sorted_vocabulary is None:
            self._sorted_vocabulary = SortedVocabulary.build(self._pieces)
        return self._sorted_vocabulary

    def close(self) -> None:
        if self._parallel is not None:
            self._parallel.close()
            self._parallel = None
        self._llm.close()


class _GrammarSampler:
    """llama.cpp's grammar sampler: check one token, mask all, accept."""

    def __init__(self, engine: Engine, text: str | None, pointer: Any = None) -> None:
        self._engine = engine
        self._api = engine._api
        if text is not None:
            pointer = self._api.llama_sampler_init_grammar(
                engine._vocab, text.encode("utf-8"), b"root"
            )
        self._pointer = pointer
        if not self._pointer:
            raise GenerationError(
                "llama.cpp rejected the generated grammar (a bug: please report it)"
            )
        self._one = (self._api.llama_token_data * 1)()
        self._one_array = self._api.llama_token_data_array(
            data=ctypes.cast(self._one, self._api.llama_token_data_p),
            size=1,
            selected=-1,
            sorted=False,
        )

    def allows(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next (it sets a refused token's logit to -inf)."""
        self._one[0].id = token
        self._one[0].logit = 0.0
        self._one_array.size = 1
        self._one_array.selected = -1
        self._api.llama_sampler_apply(self._pointer, ctypes.byref(self._one_array))
        return self._one[0].logit != -np.inf

    def mask(self, scores: np.ndarray) -> np.ndarray:
        candidates = self._engine.candidates()
        candidates.copy_logits(scores)
        self._api.llama_sampler_apply(self._pointer, ctypes.byref(candidates.candidates))
        return np.array(candidates.candidates_data.logit)

    def accept(self, token: int) -> None:
        self._api.llama_sampler_accept(self._pointer, token)

    def clone(self) -> _GrammarSampler:
        """An independent sampler in the same state (its own parse stacks)."""
        return _GrammarSampler(self._engine, None, self._api.llama_sampler_clone(self._pointer))

    def close(self) -> None:
        if self._pointer:
            self._api.llama_sampler_free(self._pointer)
            self._pointer = None


class _Decoding:
    """The state of one generation (see the module docstring for the rules)."""

    def __init__(
        self,
        engine: Engine,
        context: DecodingContext,
        grammar: str,
        *,
        think: bool,
        limits: DecodeLimits,
        room: int,
        on_piece: PieceListener | None = None,
        copy: CopyRequest | None = None,
        started: float | None = None,
    ) -> None:
        self.engine = engine
        self.context = context  # where the tokens are evaluated
        self.on_piece = on_piece
        self.limits = limits
        self.room = room
        self.budget = _Budget(limits, time.perf_counter() if started is None else started)
        self.grammar = engine.new_grammar(grammar)
        self.output = Output(think)
        self.tokens: list[int] = []
        self.think_tokens = 0
        self.json_tokens = 0
        # Closing mode: why it is on, and for a loop, the nesting level whose end stops it.
        self.closing_reason: str | None = None
        self.closing_floor: int | None = None
        self.loops_cut = 0
        self.stop_reason = "truncated"
        self.think_stop_reason: str | None = None
        self.first_token_at: float | None = None
        self._rng = np.random.default_rng(limits.seed)
        self.values = JsonValues()
        self.copy = CopyGuard(copy, self.values, engine.sorted_vocabulary()) if copy else None
        self.search = (
            SpanSearch(context, self.copy, width=limits.span_search, max_tokens=_SPAN_MAX_TOKENS)
            if self.copy is not None and limits.span_search > 1 and limits.temperature <= 0
            else None
        )
        self.plan: list[PlannedToken] = []
        self._searched_leaf = -1
        # Leaf number -> (the model's mass on the first tokens the copy admitted, the kept
        # value's share of the likelihood of the values tried), for each value searched.
        self.searched: dict[int, tuple[float, float]] = {}
        self.json_token_probabilities: list[float] = []
        self._chosen_probability = 1.0  # of the token pick() chose, before any constraint
        self.pending_item: PendingItem[_Saved] | None = None  # see item_check
        self.items_dropped = 0

    @property
    def closing(self) -> bool:
        return self.closing_reason is not None

    def decode(self) -> None:
        """Run to the end of the object; ``stop_reason`` says how it ended."""
        if self.output.in_think:
            self.force(THINK_OPEN)
        while len(self.tokens) < self.room:
            if (spent := self.budget.spent(self.json_tokens)) is not None:
                self.stop_reason = spent
                return
            if self.output.in_think:
                if self.think_tokens >= self.limits.max_think_tokens or self.budget.time_short():
                    self.close_think("budget")
                    continue
                if loop_span(self.output.think):
                    self.close_think("repetition")
                    continue
            elif not self.closing:
                self.start_closing_if_needed()
            raw = None
            if self.should_search():
                raw = self.plan_value()
                if self.pending_item is not None and self.item_unlikely():
                    self.drop_pending_item()
                    continue
            token = self.pick(raw)
            if not self.engine.is_end(token):
                self.take(token)
                self.stop_closing_if_loop_closed()
            if self.engine.is_end(token) or self.output.json_done:
                self.stop_reason = self.final_reason()
                self.keep_pending_item()
                return
        self.stop_reason = "truncated"
        self.keep_pending_item()

    def final_reason(self) -> str:
        if self.closing_reason == "closed-at-budget":
            return self.closing_reason
        return "closed-on-repetition" if self.loops_cut else STOP_COMPLETE

    def close_think(self, reason: str) -> None:
        self.think_stop_reason = reason
        self.force(self.output.pending_think_close())

    def start_closing_if_needed(self) -> None:
        """Close the whole object near the end of the budget, or the value a loop is in."""
        reserve = self.limits.closing_reserve
        if (
            self.json_tokens >= self.limits.max_json_tokens - reserve
            or self.room - len(self.tokens) <= reserve
            or self.budget.time_short()
        ):
            self.closing_reason, self.closing_floor = "closed-at-budget", None
        elif span := loop_span(self.output.json):
            # The loop lives in the innermost value that holds the whole repeated span.
            self.closing_reason = "closed-on-repetition"
            self.closing_floor = min(self.output.levels[-span:])
            self.loops_cut += 1

    def stop_closing_if_loop_closed(self) -> None:
        """Back to normal decoding once the value that looped is closed."""
        if self.closing_floor is not None and self.output.level < self.closing_floor:
            self.closing_reason, self.closing_floor = None, None

    def pick(self, raw: np.ndarray | None = None) -> int:
        """The next token; ``raw``: the logits here, when a search has overwritten the
        engine's buffer since."""
        if raw is None:
            raw = self.context.logits()
        scores = raw + self.engine._closing_bias if self.closing else raw
        if (planned := self.planned_token()) is not None:
            return planned
        token = None if self.limits.full_mask else self.first_allowed(scores)
        if token is None:
            token = self.sample(self.full_mask(scores))
        if not self.output.in_think:
            self._chosen_probability = _probability(raw, token)
        return token

    def plan_value(self) -> np.ndarray:
        """Choose the copied value that opens here with the span search (see
        ``span_search``); return the logits here, which the search's branches overwrite."""
        assert self.search is not None
        scores = self.context.logits().copy()
        self._searched_leaf = len(self.values.leaves)
        admitted, mass = self.admitted_candidates(scores)
        self.plan, share = self.search.plan(scores, admitted[: self.search.width])
        if self.plan:
            self.searched[len(self.values.leaves)] = (mass, share)
        return scores

    def planned_token(self) -> int | None:
        """The next token of the copied value the span search chose, if one is under way;
        None to decode as usual."""
        while self.plan:
            planned = self.plan.pop(0)
            if self.allows(planned.token):
                self._chosen_probability = planned.probability
                return planned.token
            self.plan = []  # the grammar refused the plan (a pattern, a length): decode as usual
        return None

    def should_search(self) -> bool:
        """At a copied value not searched yet, decoding greedily and not closing in a hurry."""
        return (
            self.search is not None
            and self.copy is not None
            and self.copy.cursor is not None
            and not self.closing
            and not self.output.in_think
            and self._searched_leaf != len(self.values.leaves)
        )

    def admitted_candidates(self, scores: np.ndarray) -> tuple[list[int], float]:
        """The best-scored candidates that both constraints admit, best first, and the
        model's probability mass on them: how much it believed the value is in the document."""
        top = np.argpartition(scores, -_FAST_CANDIDATES)[-_FAST_CANDIDATES:]
        ranked = top[np.lexsort((top, -scores[top]))]
        weights = np.exp(scores - scores.max())
        admitted = [int(token) for token in ranked if self.allows(int(token))]
        return admitted, float(weights[admitted].sum() / weights.sum())

    def allows(self, token: int) -> bool:
        """Whether both constraints admit ``token``: the copy check first, it is cheaper."""
        copying = self.copy is not None and not self.output.in_think
        if copying and not self.copy.allows(self.engine.piece(token)):
            return False
        return self.grammar.allows(token)

    def full_mask(self, scores: np.ndarray) -> np.ndarray:
        """Scores with every refused token at -inf. A copied value that no token can continue
        within the grammar (a ``pattern`` the document cannot satisfy) is generated instead."""
        masked = self.grammar.mask(scores)
        if self.copy is not None and not self.output.in_think:
            copied = self.copy.mask(masked)
            if np.isfinite(copied).any():
                return copied
            self.copy.release()
        if not np.isfinite(masked).any():
            raise GenerationError("the grammar allows no token here (a bug: please report it)")
        return masked

    def first_allowed(self, scores: np.ndarray) -> int | None:
        """A token the grammar allows, found by checking a few candidates one by one.

        Greedy: the best-scored candidates in order, which is exactly the token full masking
        would pick. Sampling: fresh draws from the same distribution until one is allowed
        (rejection sampling, so the chosen token follows the masked distribution exactly).
        None when no candidate passes; the caller then masks the whole vocabulary.
        """
        if self.limits.temperature <= 0:
            best = int(np.argmax(scores))
            if self.allows(best):
                return best
            top = np.argpartition(scores, -_FAST_CANDIDATES)[-_FAST_CANDIDATES:]
            ranked = top[np.lexsort((top, -scores[top]))]  # best first; ties by id, as argmax
            candidates = (int(t) for t in ranked[1:])
        else:
            candidates = (int(t) for t in self.draw(scores, _FAST_SAMPLES))
        return next((t for t in candidates if self.allows(t)), None)

    def sample(self, scores: np.ndarray) -> int:
        if self.limits.temperature <= 0:
            return int(np.argmax(scores))
        return int(self.draw(scores, 1)[0])

    def draw(self, scores: np.ndarray, count: int) -> np.ndarray:
        """``count`` independent draws at the temperature (refused tokens have weight 0)."""
        scaled = scores / self.limits.temperature
        weights = np.exp(scaled - scaled.max())
        return self._rng.choice(len(weights), size=count, p=weights / weights.sum())

    def take(self, token: int) -> None:
        piece = self.engine.piece(token)
        in_think = self.output.in_think
        if not in_think:
            self.watch_items(piece)
        self.grammar.accept(token)
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.tokens.append(token)
        if in_think:
            self.think_tokens += 1
        else:
            self.json_tokens += 1
        json_bytes = self.output.add(piece)
        if json_bytes:
            self.note_json(json_bytes)
        if in_think and not self.output.in_think and self.think_stop_reason is None:
            self.think_stop_reason = "model"
        if not self.output.json_done:
            self.context.feed(token)
        if self.pending_item is not None:
            self.pending_item.held.append((piece, in_think))
            self.settle_pending_item()
        elif self.on_piece is not None:
            self.on_piece(piece, in_think)

    # -- array items the document does not hold (see item_check) ---------------

    def watch_items(self, piece: bytes) -> None:
        """Save the state before a token that begins a later array item, to judge it."""
        if (
            self.pending_item is None
            and self.search is not None
            and not self.closing
            and b"," in piece
            and (begun := later_item_begun(self.values, piece)) is not None
        ):
            path, array_level = begun
            self.pending_item = PendingItem(path, array_level, self.save())

    def settle_pending_item(self) -> None:
        """Judge the pending item once its first value is written, and keep it when nothing
        is left to judge it by (that value is generated, or decoding is closing or done)."""
        item = self.pending_item
        assert item is not None
        first_leaf = len(item.saved.values.leaves)
        finished = self.values.leaves[first_leaf:]
        open_leaf = self.values.leaf
        mine = [number for number, leaf in enumerate(finished, first_leaf) if item.holds(leaf.path)]
        if mine and self.rereads_earlier_item(mine[0]):
            self.drop_pending_item()
        elif (
            self.closing
            or self.output.json_done
            or mine
            or (open_leaf is not None and item.holds(open_leaf.path) and not self.copying_now())
        ):
            self.keep_pending_item()

    def copying_now(self) -> bool:
        return self.copy is not None and self.copy.cursor is not None

    def rereads_earlier_item(self, leaf_number: int) -> bool:
        """Whether the copied value ``leaf_number``, one the document holds once, begins where
        the same field of an earlier item of the pending item's array began."""
        if self.copy is None or leaf_number not in self.copy.single:
            return False
        assert self.pending_item is not None
        spans, leaves = self.copy.spans, self.values.leaves
        start = spans[leaf_number].start
        same_field = self.pending_item.same_field_earlier(leaves[leaf_number].path)
        return any(
            same_field(leaves[number].path) and spans[number].start == start
            for number in spans
            if number < leaf_number
        )

    def item_unlikely(self) -> bool:
        """Whether the copied value just searched, the first of the pending item, is too
        unlikely for the item to be there (if not, the item is judged again once the value
        is written)."""
        item = self.pending_item
        assert item is not None
        if not item.holds(self.values.path()):
            return False
        mass, share = self.searched.get(len(self.values.leaves), (0.0, 0.0))
        # P(the value is in the document) x P(this span among those tried).
        return not self.plan or mass * share < ITEM_MIN_CONFIDENCE

    def keep_pending_item(self) -> None:
        """Show the pieces held back, and forget the saved state."""
        item, self.pending_item = self.pending_item, None
        if item is None:
            return
        item.saved.grammar.close()
        if self.on_piece is not None:
            for piece, in_think in item.held:
                self.on_piece(piece, in_think)

    def drop_pending_item(self) -> None:
        """Go back to before the pending item and close its array instead."""
        item, self.pending_item = self.pending_item, None
        assert item is not None
        self.restore(item.saved)
        self.closing_reason, self.closing_floor = "dropped-item", item.array_level
        self.items_dropped += 1

    def save(self) -> _Saved:
        return _Saved(
            position=self.context.position(),
            grammar=self.grammar.clone(),
            output=self.output.copy(),
            values=self.values.snapshot(),
            copy=self.copy.save() if self.copy is not None else None,
            tokens=len(self.tokens),
            json_tokens=self.json_tokens,
            probabilities=len(self.json_token_probabilities),
            plan=list(self.plan),
            searched_leaf=self._searched_leaf,
            searched=dict(self.searched),
        )

    def restore(self, saved: _Saved) -> None:
        """Back to ``saved``: the context, the grammar and everything that follows the output."""
        self.grammar.close()
        self.grammar = saved.grammar
        self.output, self.values = saved.output, saved.values
        if self.copy is not None and saved.copy is not None:
            self.copy.restore(saved.copy, self.values)
        del self.tokens[saved.tokens :]
        self.json_tokens = saved.json_tokens
        del self.json_token_probabilities[saved.probabilities :]
        self._chosen_probability = 1.0
        self.plan, self._searched_leaf = saved.plan, saved.searched_leaf
        self.searched = saved.searched
        self.context.rewind(saved.position)
        self.context.refresh_logits()

    def note_json(self, data: bytes) -> None:
        """Follow the JSON bytes of the token just taken: paths, leaves, copied values."""
        self.json_token_probabilities.append(self._chosen_probability)
        self._chosen_probability = 1.0  # a forced token next is certain
        self.values.token_index = len(self.json_token_probabilities) - 1
        if self.copy is not None:
            self.copy.advance(data)
        else:
            for byte in data:
                self.values.feed(byte)

    def value_traces(self) -> tuple[ValueTrace, ...]:
        """Every scalar written, with its confidence and, for a copied one, its offsets."""
        self.values.finish()
        traces = []
        for number, leaf in enumerate(self.values.leaves):
            mass, share = self.searched.get(number, (None, None))
            parts = ConfidenceParts(
                tuple(self.json_token_probabilities[i] for i in leaf.tokens), mass, share
            )
            span = self.copy.spans.get(number) if self.copy is not None else None
            traces.append(
                ValueTrace(
                    path=leaf.path,
                    kind=leaf.kind,
                    confidence=round(parts.confidence, 6),
                    copied=span is not None,
                    start=span.start if span else None,
                    end=span.end if span else None,
                    confidence_parts=parts,
                )
            )
        return tuple(traces)

    def force(self, text: str) -> None:
        """Write ``text`` as it tokenizes, checking each token against the grammar."""
        for token in self.engine.encode_plain(text):
            if not self.grammar.allows(token):
                raise GenerationError(f"the grammar refused the forced text {text!r} (a bug)")
            self.take(token)

    def close(self) -> None:
        self.grammar.close()
        if self.pending_item is not None:
            self.pending_item.saved.grammar.close()


@dataclass
class _Saved:
    """A decoding's state before a token, to go back to (see ``_Decoding.save``)."""

    position: int
    grammar: _GrammarSampler
    output: Output
    values: JsonValues
    copy: SavedCopy | None
    tokens: int
    json_tokens: int
    probabilities: int
    plan: list[PlannedToken]
    searched_leaf: int
    searched: dict[int, tuple[float, float]]


class _Budget:
    """One generation's hard limits: JSON tokens and wall-clock time (see DecodeLimits)."""

    def __init__(self, limits: DecodeLimits, started: float) -> None:
        # Closing mode starts at the JSON budget and usually ends the object within the
        # reserve, but a value the model keeps repeating may take longer to close; the hard
        # stop leaves it room for that and still bounds a schema that never lets it close.
        self.max_json_tokens = _HARD_STOP_FACTOR * (limits.max_json_tokens + limits.closing_reserve)
        seconds = limits.max_seconds
        self.deadline = None if seconds is None else started + seconds
        self.closing_at = None if seconds is None else started + seconds * _CLOSING_TIME_SHARE

    def time_short(self) -> bool:
        """Whether the time left is the share kept for closing the object."""
        return self.closing_at is not None and time.perf_counter() >= self.closing_at

    def spent(self, json_tokens: int) -> str | None:
        """The stop reason when a limit is reached, else None."""
        if json_tokens >= self.max_json_tokens:
            return STOP_TOKEN_LIMIT
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return STOP_TIME_LIMIT
        return None


def _probability(logits: np.ndarray, token: int) -> float:
    """The model's probability of ``token`` (softmax at temperature 1, no constraint)."""
    top = float(logits.max())
    return float(np.exp(logits[token] - top) / np.exp(logits - top).sum())


def _token_pieces(llama_cpp: Any, vocab: Any, n_vocab: int) -> list[bytes]:
    """The bytes each token writes (special tokens such as end-of-turn write nothing)."""
    buffer = ctypes.create_string_buffer(256)
    pieces = []
    for token in range(n_vocab):
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        pieces.append(buffer.raw[: max(size, 0)])
    return pieces


def loop_span(text: bytes) -> int:
    """How many trailing bytes of ``text`` are one block repeated back to back (0: no loop).

    Blocks of 1 to 256 bytes count: "0000", a repeated phrase, a repeated array item.
    A block must repeat at least 4 times and over at least 32 bytes, so that a short
    legitimate repeat ("1.00 1.00", two identical line items) is left alone.
    """
    for period in range(1, _LOOP_MAX_PERIOD + 1):
        copies = max(_LOOP_MIN_COPIES, -(-_LOOP_MIN_BYTES // period))
        span = copies * period
        if len(text) < span:
            return 0
        if text[-1] != text[-1 - period]:
            continue  # cheap rejection before comparing whole blocks
        if text[-span:] == text[-period:] * copies:
            return span
    return 0


def _closing_bias(pieces: list[bytes]) -> np.ndarray:
    """Per-token bonus in closing mode: pure closers most, closers with commas next."""
    bias = np.zeros(len(pieces), dtype=np.float32)
    for token, piece in enumerate(pieces):
        stripped = piece.strip()
        if stripped and all(b in _CLOSERS for b in stripped):
            bias[token] = _CLOSING_BIAS
        elif stripped and all(b in _CLOSERS_WITH_COMMA for b in stripped):
            bias[token] = _CLOSING_BIAS / 2
    return bias


@contextlib.contextmanager
def plain_weight_buffers(llama_cpp: Any) -> Iterator[None]:
    """Load weights without llama.cpp's extra CPU buffer types (AMX, repacked layouts).

    On Xeons with AMX, this llama.cpp build crashed (SIGSEGV) in the first batched
    ``llama_decode`` of a Q4_1 model with them on; single-token decoding worked. The
    high-level ``Llama`` takes no argument for it, so its defaults are adjusted while
    it loads. Decoding speed without them was measured in BENCHMARKS.md.
    """
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    module.llama_model_default_params = defaults
    try:
        yield
    finally:
        module.llama_model_default_params = original


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _gpu_layers(llama_cpp: Any, device: str) -> int:
    """Layers to offload: all on a GPU device, none on the CPU."""
    if device == "cpu":
        return 0
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    if device == "auto":
        return -1 if gpu else 0
    if not gpu:
        raise ModelLoadError(
            f"--device {device}: this llama-cpp-python build has no GPU support; reinstall it "
            'with CMAKE_ARGS="-DGGML_CUDA=on" for CUDA (Metal is built in on macOS), '
            "or use --device cpu"
        )
    if device == "metal" and sys.platform != "darwin":
        raise ModelLoadError("--device metal: Metal is only available on macOS")
    return -1


def _chat_formatter(llm: Llama) -> Any:
    """The model's own chat template, or ChatML when the GGUF has none."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = llm._model
    template = llm.metadata.get("tokenizer.chat_template") or _CHATML
    eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
    bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
