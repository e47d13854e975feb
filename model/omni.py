"""HumanOmni's three-branch omni model: video and audio feature blocks spliced into Qwen2.5.

Video: SigLIP features → face, body and interaction projectors → weighted by the instruction
gate (BERT [CLS] → MLP → softmax) → summed → slow-fast compression. Audio: Whisper encoder →
pool → projector. Each block replaces its placeholder token in the conversation.

The attribute names are the model's parts (`model.config.PARTS`): state dicts, freezing
config and checkpoints name parameters by them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.compressor import SlowFastCompressor, flatten_frames
from model.config import BRANCHES, OmniConfig
from model.gate import InstructionGate, fuse
from model.splice import IGNORE_INDEX, splice


@dataclass
class OmniOutput:
    logits: torch.Tensor  # (B, L, V) without labels; (supervised positions, V) with them
    labels: torch.Tensor | None
    loss_sum: torch.Tensor | None  # summed over supervised tokens: normalise across a batch
    num_tokens: int
    gate_weights: torch.Tensor | None  # (videos, 3): interaction, body, face
    input_tokens: int = 0  # LLM positions attended to, media rows included

    @property
    def loss(self) -> torch.Tensor | None:
        return None if self.loss_sum is None else self.loss_sum / max(self.num_tokens, 1)


def _maybe_no_grad(module: nn.Module) -> contextlib.AbstractContextManager:
    """Frozen towers run without building a graph (they are the largest activations)."""
    trainable = any(p.requires_grad for p in module.parameters())
    return contextlib.nullcontext() if trainable else torch.no_grad()


class HumanOmniModel(nn.Module):
    def __init__(
        self,
        config: OmniConfig,
        *,
        vision: nn.Module,
        face_projector: nn.Module,
        body_projector: nn.Module,
        interaction_projector: nn.Module,
        bert: nn.Module,
        gate: InstructionGate,
        audio_encoder: nn.Module,
        audio_projector: nn.Module,
        llm: nn.Module,
        video_token_id: int | None = None,
        audio_token_id: int | None = None,
    ):
        super().__init__()
        self.config = config
        self.vision = vision
        self.face_projector = face_projector
        self.body_projector = body_projector
        self.interaction_projector = interaction_projector
        self.bert = bert
        self.gate = gate
        self.compressor = (
            SlowFastCompressor(config.slow_frame_stride, config.fast_pool)
            if config.slow_fast
            else None
        )
        self.audio_encoder = audio_encoder
        self.audio_projector = audio_projector
        self.llm = llm
        self.video_token_id = video_token_id
        self.audio_token_id = audio_token_id
        # Under FSDP every worker must run every sharded module in every step (each runs
        # collectives); a batch without video or audio then runs that path on a blank input
        # and adds 0 × its output to the loss. Set by the trainer; off for inference.
        self.run_every_branch = False
        # Branch pretraining (stage 1a): only this branch's projector runs, at weight 1.
        self.only_branch: str | None = None

    # -- encoders -------------------------------------------------------------------------
    def branch_weights(self, gate_input_ids: torch.Tensor, gate_attention_mask: torch.Tensor):
        # An instruction longer than BERT's positions (a converted release reads 512 tokens
        # whatever its BERT; a benchmark's prompt with its options) keeps its first ones.
        limit = self.bert.config.max_position_embeddings
        gate_input_ids, gate_attention_mask = (
            gate_input_ids[:, :limit],
            gate_attention_mask[:, :limit],
        )
        with _maybe_no_grad(self.bert):
            cls = self.bert(input_ids=gate_input_ids, attention_mask=gate_attention_mask)
        return self.gate(cls.last_hidden_state[:, 0])

    def encode_video(
        self,
        pixel_values: torch.Tensor,
        gate_input_ids: torch.Tensor,
        gate_attention_mask: torch.Tensor,
        face_pixel_values: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T, 3, S, S) frames → (N, tokens, D) visual block and (N, 3) branch weights.

        `face_pixel_values` (face crops of the same frames) feed the face branch when given;
        otherwise it sees the full frames, as in the released model.
        """
        with _maybe_no_grad(self.vision):
            if face_pixel_values is None:
                features = face_features = self.vision(pixel_values)
            else:  # one call either way: under FSDP every worker gathers the tower once
                both = self.vision(torch.cat([pixel_values, face_pixel_values]))
                features, face_features = both.split(pixel_values.shape[0])
        dtype = self.face_projector.mlp[0].weight.dtype
        features, face_features = features.to(dtype), face_features.to(dtype)
        projectors = {
            "interaction": lambda: self.interaction_projector(features),
            "body": lambda: self.body_projector(features),
            "face": lambda: self.face_projector(face_features),
        }
        if self.only_branch is not None:
            fused = projectors[self.only_branch]()
            weights = torch.zeros(fused.shape[0], len(BRANCHES), device=fused.device)
            weights[:, BRANCHES.index(self.only_branch)] = 1.0
        else:
            weights = self.branch_weights(gate_input_ids, gate_attention_mask)
            fused = fuse([projectors[b]() for b in BRANCHES], weights)
        tokens = self.compressor(fused) if self.compressor is not None else flatten_frames(fused)
        return tokens, weights

    def encode_audio(self, audio_features: torch.Tensor) -> torch.Tensor:
        with _maybe_no_grad(self.audio_encoder):
            hidden = self.audio_encoder(audio_features)
        return self.audio_projector(hidden.to(self.audio_projector.mlp[0].weight.dtype))

    # -- the LLM --------------------------------------------------------------------------
    def prepare_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        face_pixel_values: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        gate_input_ids: torch.Tensor | None = None,
        gate_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Token ids + media → (inputs_embeds, attention_mask, labels, gate weights)."""
        blocks: dict[int, torch.Tensor] = {}
        weights = None
        # Idle paths run where the real ones would, so every worker's sharded modules gather
        # in the same order: video, audio, then the LLM.
        idle = torch.zeros(())
        if pixel_values is not None:
            if gate_input_ids is None or gate_attention_mask is None:
                raise ValueError("a video needs the gate's instruction tokens")
            blocks[self._token_id("video")], weights = self.encode_video(
                pixel_values, gate_input_ids, gate_attention_mask, face_pixel_values
            )
        elif self.run_every_branch:
            idle = self._idle_video()
        if audio_features is not None:
            blocks[self._token_id("audio")] = self.encode_audio(audio_features)
        elif self.run_every_branch:
            idle = idle.to(self._device) + self._idle_audio()
        placeholders = torch.zeros_like(input_ids, dtype=torch.bool)
        for kind, token in (("video", self.video_token_id), ("audio", self.audio_token_id)):
            if token is None:
                continue
            here = input_ids == token
            if token not in blocks and bool(here.any()):
                raise ValueError(f"the text has a <{kind}> placeholder but no {kind} was given")
            placeholders |= here
        embeds = self.llm.get_input_embeddings()(input_ids.masked_fill(placeholders, 0))
        embeds, mask, labels = splice(embeds, input_ids, attention_mask, labels, blocks)
        if self.run_every_branch:
            embeds = embeds + idle.to(embeds.device)
        return embeds, mask, labels, weights

    @property
    def _device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    def _idle_video(self) -> torch.Tensor:
        """0 × the video path's output on a blank clip (a batch without video, under FSDP)."""
        size, frames = self.vision.image_size, self.config.num_frames
        blank = torch.zeros(1, frames, 3, size, size, device=self._device)
        ids = torch.zeros(1, 1, dtype=torch.long, device=self._device)
        tokens, _ = self.encode_video(blank, ids, torch.ones_like(ids))
        return tokens.sum() * 0.0

    def _idle_audio(self) -> torch.Tensor:
        """0 × the audio path's output on blank features (a batch without audio)."""
        whisper = self.audio_encoder.model.config
        blank = torch.zeros(
            1, whisper.num_mel_bins, 2 * whisper.max_source_positions, device=self._device
        )
        return self.encode_audio(blank).sum() * 0.0

    def _token_id(self, kind: str) -> int:
        token = self.video_token_id if kind == "video" else self.audio_token_id
        if token is None:
            raise ValueError(f"the model was built without the tokenizer's <{kind}> id")
        return token

    def forward(self, input_ids, attention_mask, labels=None, **media) -> OmniOutput:
        """With labels: the summed loss, from logits at the supervised positions only (the
        full-vocabulary logits of every position would be the largest tensor of a step).
        Without: logits at every position."""
        embeds, mask, labels, weights = self.prepare_inputs(
            input_ids, attention_mask, labels, **media
        )
        tokens = int(mask.sum())
        if labels is None:
            logits = self.llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
            return OmniOutput(logits, None, None, 0, weights, tokens)
        hidden = self.llm.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX
        logits = self.llm.lm_head(hidden.last_hidden_state[:, :-1][keep])
        loss_sum = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
        return OmniOutput(logits, labels, loss_sum, int(keep.sum()), weights, tokens)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, max_new_tokens: int = 128, **media):
        """Greedy answer tokens (without the prompt) and the branch weights."""
        embeds, mask, _, weights = self.prepare_inputs(input_ids, attention_mask, None, **media)
        out = self.llm.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
        )
        return out, weights
