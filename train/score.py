"""SCoRe self-correction training (arXiv 2409.12917), two stages, over torch and TRL primitives.

One *rollout* is what the runtime does with a document: attempt 1 from the first
prompt; the runtime's findings on it (schema errors, values not found in the
document; ``prompting.attempt_findings``); and, when there are findings, attempt 2
from ``correction_messages(schema, document, attempt-1 output, problems)``. Without
findings the runtime stops, so attempt 2 is attempt 1 carried over (r2 = r1, and no
attempt-2 tokens), exactly as evaluation's attempt-2 view counts it. Each prompt
gets ``score.num_generations`` rollouts, sampled at ``score.temperature``.

Rewards r1, r2 are the weighted reward components of each attempt
(``rewards.weighted_total``, in [0, 1]). The paper's objectives:

* Stage I: max E[r2] - β2 · KL(π(·|x1) ‖ π_ref(·|x1)): reward only attempt 2, and keep
  attempt 1 close to the reference policy, so the model learns to correct without
  its first attempts drifting (and collapsing onto the corrections).
* Stage II: max E[r1 + r2 + alpha·(r2 - r1)] - β1 · (KL on both attempts): reward both
  attempts, with a bonus for improving.

How they map onto the code. Every generated token t of a rollout gets a
policy-gradient weight and a KL weight (``_Segment.pg_weight`` / ``kl_weight``,
applied through the completion mask of its attempt):

======== ============================== ===========================================
stage    attempt-1 tokens               attempt-2 tokens
======== ============================== ===========================================
I        pg 0, KL β2                    pg A(r2), KL 0
II       pg A(r1 + r2), KL β1           pg A(r2 + alpha·(r2 - r1)), KL β1
======== ============================== ===========================================

The loss, averaged over rollouts, is Σ_attempts [ pg · mean_t(-A · rho_t) +
kl · mean_t(k3_t) ] where rho_t = exp(log π(t) - sg(log π(t))) (value 1; its gradient
is ∇ log π(t), REINFORCE on freshly sampled tokens), k3_t = exp(d) - d - 1 with
d = log π_ref(t) - log π(t) (TRL's KL estimator, ≥ 0), and A(g) is the return g
of the attempt normalised within the prompt's group: (g - mean) / (std + 1e-4),
the baseline of GRPO and of the paper's REINFORCE. In stage II the improvement
bonus goes to the attempt that can earn it: attempt-2 tokens see
r2 + alpha·(r2 - r1) (r1 is already fixed when attempt 2 is written), while attempt-1
tokens see r1 + r2 without the bonus, which would otherwise reward a worse first
attempt (its -alpha·r1 term). Summed over both attempts this is the paper's
r1 + r2 + alpha·(r2 - r1).

The reference policy π_ref is the policy this stage starts from: with LoRA, a frozen
copy of the starting adapter (TRL's ``"ref"`` adapter, used through
``trl.trainer.utils.use_adapter``), or the base with the adapter disabled when the
adapter is new; with full fine-tuning, a frozen copy of the model. Log-probabilities
use ``trl.trainer.utils.selective_log_softmax``.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from thinkjson_edge.train.base_model import Policy, load_policy, trainable_snapshot
from thinkjson_edge.train.config import TrainConfig
from thinkjson_edge.train.data import Example
from thinkjson_edge.train.logs import MetricsLog
from thinkjson_edge.train.prompting import (
    attempt_findings,
    correction_prompt,
    first_prompt,
    output_text,
    problems,
)
from thinkjson_edge.train.rewards import COMPONENTS, Scored, score_output, weighted_total
from thinkjson_edge.train.sources import fitting, load_split
from thinkjson_edge.train.stage import StageResult, finish_stage

from thinkjson_edge.evaluation.metrics import score_document, self_correction_scores
from thinkjson_edge.pipeline.findings import Finding

STAGES = {1: "score1", 2: "score2"}
_EPS = 1e-4
_MAX_GRAD_NORM = 1.0


@dataclass
class Attempt:
    prompt_ids: list[int]
    completion_ids: list[int]
    output: str  # as the runtime records it (forced tag included)
    scored: Scored
    reward: float  # weighted total


@dataclass
class Rollout:
    example: Example
    group: int  # rollouts of one prompt share a group (and a baseline)
    first: Attempt
    findings: list[Finding]  # the runtime's findings on attempt 1
    second: Attempt | None = None  # None: attempt 1 had no findings, so the runtime stops

    @property
    def r1(self) -> float:
        return self.first.reward

    @property
    def r2(self) -> float:
        return self.second.reward if self.second else self.first.reward


@dataclass
class _Segment:
    """One attempt's tokens with their weights in the loss."""

    attempt: int
    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float
    pg_weight: float
    kl_weight: float


@dataclass
class Sampling:
    max_new_tokens: int
    temperature: float


def returns(rollout: Rollout, stage: int, alpha: float) -> tuple[float, float]:
    """(return of attempt-1 tokens, return of attempt-2 tokens) for a stage (module table)."""
    r1, r2 = rollout.r1, rollout.r2
    if stage == 1:
        return 0.0, r2
    return r1 + r2, r2 + alpha * (r2 - r1)


def group_advantages(values: Sequence[float], groups: Sequence[int]) -> list[float]:
    """(g - group mean) / (group std + 1e-4), per group; a group of one gets 0.

    >>> [round(a, 3) for a in group_advantages([1.0, 0.0, 0.5, 0.5], [0, 0, 1, 1])]
    [1.0, -1.0, 0.0, 0.0]
    """
    members: dict[int, list[float]] = {}
    for value, group in zip(values, groups, strict=True):
        members.setdefault(group, []).append(value)
    advantages = []
    for value, group in zip(values, groups, strict=True):
        peers = members[group]
        mean = sum(peers) / len(peers)
        std = math.sqrt(sum((p - mean) ** 2 for p in peers) / len(peers))
        advantages.append((value - mean) / (std + _EPS) if len(peers) > 1 else 0.0)
    return advantages


def segments(rollouts: Sequence[Rollout], stage: int, config: TrainConfig) -> list[_Segment]:
    """Every attempt of every rollout with its advantage and weights (module table)."""
    s = config.score
    groups = [r.group for r in rollouts]
    g1, g2 = zip(*(returns(r, stage, s.alpha) for r in rollouts), strict=True)
    a1, a2 = group_advantages(g1, groups), group_advantages(g2, groups)
    first_pg, first_kl = (0.0, s.beta2) if stage == 1 else (1.0, s.beta1)
    second_pg, second_kl = (1.0, 0.0) if stage == 1 else (1.0, s.beta1)
    out = []
    for rollout, adv1, adv2 in zip(rollouts, a1, a2, strict=True):
        first = rollout.first
        out.append(_Segment(1, first.prompt_ids, first.completion_ids, adv1, first_pg, first_kl))
        if rollout.second is not None:
            second = rollout.second
            out.append(
                _Segment(2, second.prompt_ids, second.completion_ids, adv2, second_pg, second_kl)
            )
    return [seg for seg in out if seg.completion_ids and (seg.pg_weight or seg.kl_weight)]


class ScoreTrainer:
    """The SCoRe loop for one stage: roll out, score, weight, step."""

    def __init__(self, config: TrainConfig, stage: int, policy: Policy, examples: list[Example]):
        import torch

        self.torch = torch
        self.config = config
        self.stage = stage
        self.examples = examples
        self.device = _device(config)
        self.model = policy.model.to(self.device)
        self.tokenizer = policy.tokenizer
        self.rng = random.Random(config.seed + stage)
        torch.manual_seed(config.seed + stage)
        self.reference = _Reference(self.model, policy.lora, policy.init_from is not None)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=config.score.learning_rate)
        self.sampling = Sampling(config.score.max_completion_length, config.score.temperature)
        self._order: list[Example] = []

    # -- rollouts ----------------------------------------------------------

    def next_batch(self) -> list[Example]:
        batch = []
        for _ in range(self.config.score.batch_size):
            if not self._order:
                self._order = list(self.examples)
                self.rng.shuffle(self._order)
            batch.append(self._order.pop())
        return batch

    def rollouts(self, batch: list[Example]) -> list[Rollout]:
        think = self.config.think
        todo = [
            (group, example)
            for group, example in enumerate(batch)
            for _ in range(self.config.score.num_generations)
        ]
        firsts = self.generate([first_prompt(self.tokenizer, e, think=think) for _, e in todo])
        rollouts = []
        for (group, example), (prompt_ids, ids, stop) in zip(todo, firsts, strict=True):
            attempt = self.attempt(example, prompt_ids, ids)
            findings = attempt_findings(example, attempt.output, stop)
            rollouts.append(Rollout(example, group, attempt, findings))
        pending = [r for r in rollouts if r.findings]
        prompts = [
            correction_prompt(
                self.tokenizer, r.example, r.first.output, problems(r.findings), think=think
            )
            for r in pending
        ]
        for rollout, (prompt_ids, ids, _) in zip(pending, self.generate(prompts), strict=True):
            rollout.second = self.attempt(rollout.example, prompt_ids, ids)
        return rollouts

    def attempt(self, example: Example, prompt_ids: list[int], ids: list[int]) -> Attempt:
        completion = self.tokenizer.decode(ids, skip_special_tokens=True)
        output = output_text(completion, think=self.config.think)
        scored = score_output(
            output, example.schema_text, example.gold_text, example.text, think=self.config.think
        )
        return Attempt(
            prompt_ids, ids, output, scored, weighted_total(scored.rewards, self.config.rewards)
        )

    def generate(self, prompts: list[str]) -> list[tuple[list[int], list[int], str]]:
        """(prompt ids, completion ids up to and with end-of-turn, stop reason) per prompt."""
        if not prompts:
            return []
        torch = self.torch
        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        sampling = self.sampling
        self.model.eval()
        with torch.no_grad():
            generated = self.model.generate(
                **batch,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=sampling.temperature > 0,
                temperature=sampling.temperature if sampling.temperature > 0 else None,
                top_p=1.0,
                top_k=0,
                pad_token_id=tokenizer.pad_token_id,
            )
        self.model.train()
        tokenizer.padding_side = "right"
        width = batch["input_ids"].shape[1]
        out = []
        for row, mask in zip(generated, batch["attention_mask"], strict=True):
            prompt_ids = row[:width][mask.bool()].tolist()
            ids = row[width:].tolist()
            stop = "truncated"
            if tokenizer.eos_token_id in ids:
                ids = ids[: ids.index(tokenizer.eos_token_id) + 1]
                stop = "complete"
            out.append((prompt_ids, ids, stop))
        return out

    # -- the update --------------------------------------------------------

    def step(self) -> dict[str, float]:
        """One update: roll out a batch, weight every attempt's tokens, take an optimizer step."""
        rollouts = self.rollouts(self.next_batch())
        parts = segments(rollouts, self.stage, self.config)
        self.optimizer.zero_grad()
        loss_sum, pg_sum = 0.0, 0.0
        kl_by_attempt: dict[int, list[float]] = {1: [], 2: []}
        for part in parts:  # one backward per attempt: gradients add up to the batch loss
            pg, kl = self.loss_terms(part)
            loss = (part.pg_weight * pg + part.kl_weight * kl) / len(rollouts)
            loss.backward()
            loss_sum += float(loss.detach())
            pg_sum += float(part.pg_weight * pg.detach()) / len(rollouts)
            if part.kl_weight:
                kl_by_attempt[part.attempt].append(float(kl.detach()))
        grad_norm = self.torch.nn.utils.clip_grad_norm_(self.trainable, _MAX_GRAD_NORM)
        self.optimizer.step()
        stats = rollout_stats(rollouts)
        trained = [p for p in parts if p.pg_weight]
        stats.update(
            {
                # the share of rewarded attempts whose return differs from their group's mean
                "nonzero_advantages": sum(abs(p.advantage) > 0 for p in trained)
                / max(len(trained), 1),
                "loss": loss_sum,
                "pg_loss": pg_sum,
                "grad_norm": float(grad_norm),
                **{
                    f"kl/attempt{n}": sum(values) / len(values)
                    for n, values in kl_by_attempt.items()
                    if values
                },
            }
        )
        return stats

    def loss_terms(self, part: _Segment) -> tuple[Any, Any]:
        """Means over the attempt's tokens of -A·rho_t and of k3_t (see the module docstring)."""
        torch = self.torch
        ids = torch.tensor([part.prompt_ids + part.completion_ids], device=self.device)
        start = len(part.prompt_ids)
        logps = _completion_logps(self.model, ids, start)
        ratio = torch.exp(logps - logps.detach())
        pg = -(part.advantage * ratio).mean()
        if not part.kl_weight:
            return pg, torch.zeros((), device=self.device)
        with torch.no_grad(), self.reference.active():
            ref = _completion_logps(self.reference.model, ids, start)
        delta = ref - logps
        return pg, (torch.exp(delta) - delta - 1).mean()


def _completion_logps(model: Any, ids: Any, start: int) -> Any:
    from trl.trainer.utils import selective_log_softmax

    logits = model(input_ids=ids).logits[:, start - 1 : -1, :]
    return selective_log_softmax(logits.float(), ids[:, start:])[0]


class _Reference:
    """π_ref: the starting adapter (a frozen copy), the base (adapter disabled), or a model copy."""

    def __init__(self, model: Any, lora: bool, continued: bool) -> None:
        self.adapter: str | None = None
        self.model = model
        if not lora:
            self.model = copy.deepcopy(model).eval()
            for param in self.model.parameters():
                param.requires_grad_(False)
        elif continued:  # as TRL's GRPOTrainer does for a pretrained adapter
            model.add_adapter("ref", model.peft_config["default"])
            for name, param in model.named_parameters():
                if ".default." in name:
                    model.get_parameter(name.replace(".default.", ".ref.")).data.copy_(param.data)
                elif ".ref." in name:
                    param.requires_grad_(False)
            self.adapter = "ref"
        self.lora = lora

    def active(self) -> Any:
        import contextlib

        if not self.lora:
            return contextlib.nullcontext()
        from trl.trainer.utils import use_adapter

        return use_adapter(self.model, self.adapter)


def rollout_stats(rollouts: Sequence[Rollout]) -> dict[str, float]:
    """Mean reward components of both attempts, and SCoRe's self-correction figures."""
    n = len(rollouts)
    stats: dict[str, float] = {
        "reward/attempt1": sum(r.r1 for r in rollouts) / n,
        "reward/attempt2": sum(r.r2 for r in rollouts) / n,
        "corrections": sum(r.second is not None for r in rollouts) / n,
    }
    for component in COMPONENTS:
        stats[f"attempt1/{component}"] = (
            sum(r.first.scored.rewards[component] for r in rollouts) / n
        )
        stats[f"attempt2/{component}"] = (
            sum((r.second or r.first).scored.rewards[component] for r in rollouts) / n
        )
    firsts = [score_document(r.example.gold, r.first.scored.parsed) for r in rollouts]
    seconds = [
        score_document(r.example.gold, (r.second or r.first).scored.parsed) for r in rollouts
    ]
    figures = self_correction_scores(firsts, seconds)
    stats.update(
        {
            "accuracy@t1": figures.accuracy_t1,
            "accuracy@t2": figures.accuracy_t2,
            "delta": figures.delta,
            "delta_i_to_c": figures.delta_i_to_c,
            "delta_c_to_i": figures.delta_c_to_i,
        }
    )
    return stats


def _device(config: TrainConfig) -> str:
    from thinkjson_edge.train.base_model import torch_device

    return torch_device(config)


def run_score(config: TrainConfig, stage: int, say: Callable[[str], None] = print) -> StageResult:
    """Run SCoRe stage 1 or 2 as the config says; returns where the results are."""
    if stage not in STAGES:
        raise ValueError("SCoRe has stages 1 and 2")
    name = STAGES[stage]
    init_from = config.score.init_from if stage == 1 else STAGES[1]
    policy = load_policy(config, init_from)
    fitted = fitting(load_split(config).train, policy.tokenizer, config)
    steps = config.score.stage1_steps if stage == 1 else config.score.stage2_steps
    say(
        f"score stage {stage}: {len(fitted.examples)} examples ({fitted.dropped} too long), "
        f"{steps} steps, {config.score.batch_size} prompts x "
        f"{config.score.num_generations} rollouts"
    )
    trainer = ScoreTrainer(config, stage, policy, fitted.examples)
    log = MetricsLog(config.stage_dir(name), tensorboard=config.tensorboard)
    before = trainable_snapshot(policy.model)
    for step in range(1, steps + 1):
        stats = trainer.step()
        log.log(step, stats)
        say(
            f"score stage {stage} step {step}/{steps}: reward t1 {stats['reward/attempt1']:.3f} "
            f"t2 {stats['reward/attempt2']:.3f}, loss {stats['loss']:.4f}"
        )
    policy.model = trainer.model
    return finish_stage(
        policy,
        config,
        name,
        log,
        before,
        {
            "examples": len(fitted.examples),
            "dropped_too_long": fitted.dropped,
            "alpha": config.score.alpha,
            "beta1": config.score.beta1,
            "beta2": config.score.beta2,
        },
    )
