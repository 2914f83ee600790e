"""The edit model, of two kinds: the track-only baseline and the multimodal transformer.

Both predict the track state of frame t from the previous frame's track state (the
``track`` input is the timeline shifted by one frame) and, for the multimodal model,
the content of frames <= t. They share everything after the input embedding:

    track (B,T,180) ---------------------------> TrackEmbedding -+
    audio (B,T,5)   -> ModalityEmbedding --+                      |  (multimodal only)
    visual (B,T,522)-> ModalityEmbedding --+-> ModalityFusion <---+
                                  |                |
                                  |  Encoder: positional encoding + causal transformer
                                  |                |
                                  |  EditHeads: active, asset, scale, position, crop (what)
                                  |
                                  +-> content alone -> its own Encoder -> cut (when)

The content embeddings read each frame's features and their change from the previous
frame (``with_change``). The multimodal cut head reads the content alone
(``cut_context="content"``, the default): when to cut then never depends on the layout
the model is shown, so a roll-out, which is shown its own layout, cuts where the
teacher-forced model cuts; ``"all"`` reads the shared trunk instead. The baseline's cut
head reads its trunk (the timeline is all it has).

With ``layout_veto`` (the default), the content cut logit may be *lowered*, never
raised, from the previous frame's layout (``LayoutVeto``): an overlay that ends while
its track is already off is no cut, which the content alone cannot know. A veto cannot
make the roll-out repair its own wrong layouts with extra cuts (a cut head that reads
the layout freely did: 0.665 roll-out), and the content logit keeps its own loss term
(``cut_content``), so it stays sharp where a veto is not learned.

The multimodal model says *what* a cut changes in two steps. Its which head reads the
trunk and the content encoder and is trained on the true cuts only: given that this
frame is a cut, which tracks change, there or in the few frames after it that the cut
decoding's spacing leaves without a fire (``loss.which_window``): the face cam on a speaker
turn, unless the layout shows it has already switched. The track heads, trained on every
frame, then say to what. Trained on every frame instead, the track heads alone never
switched the face cam off at a cut: the switch falls on one of several frames after a
speaker turn (the editor's lag), so no single frame made "off" likely.

One class, ``EditTransformer``, built from one ``ModelConfig``: the baseline is the
multimodal code path with the content modalities off (``kind="baseline"``). Every model
file is rebuilt through ``build_model`` (``MODEL_CLASSES``: kind -> class), so a model of
another kind is one more entry there. Attention is causal (``causal=True``, the default):
a frame never sees later frames, which is what a roll-out can do step by step.

Track input encoding: ``asset_id`` is a class, not a quantity, so each track's id is
one-hot encoded over ``max_asset_classes`` (rounded and clamped into range) and the
other 8 parameters are used as given; the result ``(B, T, N * (8 + K))`` is projected
to d_model.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from trackfusion import schema
from trackfusion.learn import MODEL_KINDS
from trackfusion.learn.fusion import ModalityEmbedding, ModalityFusion
from trackfusion.learn.toggle import TOGGLE_KEY, ToggleHead
from trackfusion.params import CUT_CONTEXTS, FUSION_TYPES, ModelParams, Params

HEAD_SIZES: dict[str, int] = {k: -1 if k == "asset" else len(v) for k, v in schema.HEAD_PARAMS.items()}  # -1: K classes
#: per-track heads, then the per-frame ``cut`` logit (B, T): "the layout changes at this frame" (a cut).
#: A model with a layout veto also returns ``cut_content`` (B, T), its cut logit before the veto.
OUTPUT_KEYS: tuple[str, ...] = (*HEAD_SIZES, "cut")
#: the content-only state heads of a multimodal model with a content cut encoder, read from the content alone,
#: never from the layout: each track's active logit (B, T, N), its asset logits (B, T, N, K) and the logit of
#: "this track's layout changes here" (B, T, N; an auxiliary target of the content encoder)
STATE_KEYS: tuple[str, ...] = ("state_active", "state_asset", "state_change")
#: the same model's logit (B, T, N) that each track's layout changes *given* that the frame is a cut: it reads
#: the content and the layout (has the face cam already switched for this speaker turn?), and is trained on
#: the true cuts only, so where the cut head fires it says which tracks change (``decode_frames``)
WHICH_KEY = "which"
_ASSET = schema.param_index("asset_id")
_ACTIVE = schema.param_index("active")
_SCALE = schema.param_index("scale")  # then x, y, crop_l, crop_r, crop_t, crop_b


# --- checks ------------------------------------------------------------------------
def _shape(dims: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def check_input(name: str, x: torch.Tensor, width: int | None, ref: tuple[int, int] | None = None) -> None:
    """ValueError naming expected and actual shapes unless x is (B, T, width) ((B, T) if width is None).

    With ``ref`` = (B, T) of the track input, the batch size and sequence length must match it too.
    """
    expected = ("B", "T") if width is None else ("B", "T", width)
    if x.dim() != len(expected) or (width is not None and x.shape[-1] != width):
        raise ValueError(f"{name}: expected {_shape(expected)}, got {_shape(tuple(x.shape))}")
    if ref is not None and tuple(x.shape[:2]) != tuple(ref):
        want = tuple(ref) + (() if width is None else (width,))
        raise ValueError(
            f"{name}: expected {_shape(want)} (batch size and sequence length of track), got {_shape(tuple(x.shape))}"
        )


# --- building blocks ---------------------------------------------------------------
class TrackEmbedding(nn.Module):
    """Previous track state (B, T, N*9) -> (B, T, D), asset ids one-hot encoded."""

    def __init__(self, num_tracks: int, max_asset_classes: int, d_model: int, dropout: float):
        super().__init__()
        self.num_tracks = num_tracks
        self.num_classes = max_asset_classes
        width = num_tracks * (schema.NUM_TRACK_PARAMS - 1 + max_asset_classes)
        self.embed = ModalityEmbedding(width, d_model, dropout)

    def forward(self, track: torch.Tensor) -> torch.Tensor:
        B, T, _ = track.shape
        x = track.reshape(B, T, self.num_tracks, schema.NUM_TRACK_PARAMS)  # (B, T, N, 9)
        asset = x[..., _ASSET].round().long().clamp(0, self.num_classes - 1)  # (B, T, N)
        onehot = F.one_hot(asset, self.num_classes).to(x.dtype)  # (B, T, N, K)
        rest = torch.cat([x[..., :_ASSET], x[..., _ASSET + 1 :]], dim=-1)  # (B, T, N, 8)
        return self.embed(torch.cat([rest, onehot], dim=-1).reshape(B, T, -1))  # (B, T, D)


def sinusoid(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model) fixed sinusoidal position code."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]  # odd d_model has one fewer cosine
    return pe


class PositionalEncoding(nn.Module):
    """Fixed sinusoidal position code added to (B, T, D).

    ``max_len`` positions are precomputed; a longer sequence (a roll-out over a whole
    long video) gets its code computed on the fly instead of failing.
    """

    def __init__(self, d_model: int, max_len: int, dropout: float):
        super().__init__()
        self.register_buffer("pe", sinusoid(max_len, d_model), persistent=False)  # derived: not in checkpoints
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        pe = self.pe[:T] if T <= self.pe.shape[0] else sinusoid(T, x.shape[-1]).to(x.device)
        return self.dropout(x + pe.to(x.dtype))  # (B, T, D)


def attention_mask(padding_mask: torch.Tensor | None, T: int, nhead: int, device: torch.device,
                   causal: bool = True) -> torch.Tensor:  # fmt: skip
    """Boolean attention mask, True = may NOT attend: (T, T), or (B*nhead, T, T) with padding.

    Causal by default, because frame t must never see frames > t (SPEC 5). Our padding_mask is
    True for real frames; PyTorch masks where True, hence the inversion. Padded keys
    are folded into the same mask instead of ``src_key_padding_mask`` so that every
    frame can always attend to itself: a row with every key masked (a padded frame in
    front of any real one) would otherwise give NaN that poisons the gradients.
    """
    future = torch.ones(T, T, dtype=torch.bool, device=device).triu(1 if causal else T)  # (T, T) blocked frames
    if padding_mask is None:
        return future
    blocked = future | ~padding_mask.bool().unsqueeze(1)  # (B, T, T): future or padded keys
    blocked = blocked & ~torch.eye(T, dtype=torch.bool, device=device)  # self always visible
    return blocked.repeat_interleave(nhead, dim=0)  # (B*nhead, T, T), batch-major as PyTorch expects


class Encoder(nn.Module):
    """Positional encoding, pre-norm TransformerEncoder (causal by default), final LayerNorm."""

    def __init__(self, d_model: int, nhead: int, num_layers: int, dim_feedforward: int, dropout: float, max_len: int,
                 causal: bool = True):  # fmt: skip
        super().__init__()
        self.nhead = nhead
        self.causal = causal
        self.pos = PositionalEncoding(d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        # pre-norm layers leave the residual stream unnormalised, hence the final norm;
        # the nested-tensor fast path does not support norm_first, so switch it off
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        T = x.shape[1]
        mask = attention_mask(padding_mask, T, self.nhead, x.device, self.causal)
        x = self.encoder(self.pos(x), mask=mask)  # (B, T, D)
        return self.norm(x)


class EditHeads(nn.Module):
    """One linear layer per frame, split per track into the five outputs, on a copy prior,
    and the per-frame cut logit that decides *when* the layout changes (a cut).

    Most frames repeat the previous one (cuts are a few per cent of frames), so the
    heads start from "keep the previous state": the previous active flag and asset
    push their logits by a learned margin, and the clip parameters are predicted as a
    change from the previous values where the track was active. The network then
    only has to learn when and how to depart from the previous frame, which is what a
    cut is; without the prior, small errors on any of the 20 tracks read as cuts.
    """

    def __init__(self, d_model: int, num_tracks: int, max_asset_classes: int, copy_margin: float = 4.0):
        super().__init__()
        self.num_tracks = num_tracks
        self.num_classes = max_asset_classes
        self.sizes = {k: (max_asset_classes if v < 0 else v) for k, v in HEAD_SIZES.items()}
        self.proj = nn.Linear(d_model, num_tracks * sum(self.sizes.values()))
        self.cut = nn.Linear(d_model, 1)  # one cut logit per frame: when, decoupled from which track
        self.state = nn.Linear(d_model, num_tracks * (2 + max_asset_classes))  # what the content shows, per track
        self.which = nn.Linear(2 * d_model, num_tracks)  # which tracks change at a cut: trunk and content
        self.keep_active = nn.Parameter(torch.tensor(copy_margin))  # logit margin for "same active flag"
        self.keep_asset = nn.Parameter(torch.tensor(copy_margin))  # logit margin for "same asset"

    def forward(self, h: torch.Tensor, prev_track: torch.Tensor, h_cut: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`h_cut`: what the cut logit reads, when not `h` (the multimodal model's content-only encoder)."""
        B, T, _ = h.shape
        y = self.proj(h).reshape(B, T, self.num_tracks, -1)  # (B, T, N, 1+K+1+2+4)
        parts = torch.split(y, list(self.sizes.values()), dim=-1)
        out = dict(zip(self.sizes, parts))
        for k in ("active", "scale"):
            out[k] = out[k].squeeze(-1)  # (B, T, N)
        prev = prev_track.reshape(B, T, self.num_tracks, schema.NUM_TRACK_PARAMS).to(y.dtype)  # (B, T, N, 9)
        was_on = (prev[..., _ACTIVE] > 0.5).to(y.dtype)  # (B, T, N)
        out["active"] = out["active"] + self.keep_active * (2 * was_on - 1)
        asset = prev[..., _ASSET].round().long().clamp(0, self.num_classes - 1)  # (B, T, N)
        out["asset"] = out["asset"] + self.keep_asset * F.one_hot(asset, self.num_classes).to(y.dtype) * was_on[..., None]
        on = was_on[..., None]  # (B, T, N, 1): parameters continue from the previous values of an active track
        out["scale"] = out["scale"] + prev[..., _SCALE] * was_on
        out["position"] = out["position"] + prev[..., _SCALE + 1 : _SCALE + 3] * on
        out["crop"] = out["crop"] + prev[..., _SCALE + 3 : _SCALE + 7] * on
        out["cut"] = self.cut(h if h_cut is None else h_cut).squeeze(-1)  # (B, T)
        if h_cut is not None:  # the state heads read the content alone: a wrong layout cannot mislead them
            state = self.state(h_cut).reshape(B, T, self.num_tracks, 2 + self.num_classes)
            out["state_active"], out["state_change"], out["state_asset"] = state[..., 0], state[..., 1], state[..., 2:]
            out[WHICH_KEY] = self.which(torch.cat([h, h_cut], dim=-1))  # (B, T, N)
        return out  # asset (B, T, N, K), position (B, T, N, 2), crop (B, T, N, 4), cut (B, T)


def layout_state(track: torch.Tensor, num_tracks: int, num_classes: int) -> torch.Tensor:
    """(B, T, N*9) track frames -> (B, T, N*(1+K)) layout: each track's active flag and,
    where active, its asset one-hot (the key a cut is defined on, ``trackfusion.cuts``)."""
    B, T, _ = track.shape
    x = track.reshape(B, T, num_tracks, schema.NUM_TRACK_PARAMS)
    on = (x[..., _ACTIVE] > 0.5).to(track.dtype)  # (B, T, N)
    asset = x[..., _ASSET].round().long().clamp(0, num_classes - 1)
    onehot = F.one_hot(asset, num_classes).to(track.dtype) * on.unsqueeze(-1)  # (B, T, N, K)
    return torch.cat([on, onehot.reshape(B, T, -1)], dim=-1)


class LayoutVeto(nn.Module):
    """How much the layout lowers the content's cut logit: softplus(MLP(content, layout)) >= 0.

    It reads one frame's layout (the previous frame's, as the track input gives it), not
    the layout's history, and it can only subtract: the layout may say that a change the
    content announces has nothing to change (the track is already off), never ask for a
    cut the content does not announce. Starts near 0 (no veto).
    """

    def __init__(self, d_model: int, num_tracks: int, num_classes: int):
        super().__init__()
        self.num_tracks, self.num_classes = num_tracks, num_classes
        self.mlp = nn.Sequential(nn.Linear(d_model + num_tracks * (1 + num_classes), d_model), nn.GELU(),
                                 nn.Linear(d_model, 1))  # fmt: skip
        nn.init.constant_(self.mlp[-1].bias, -4.0)  # softplus(-4) = 0.02

    def forward(self, h_cut: torch.Tensor, track: torch.Tensor) -> torch.Tensor:
        state = layout_state(track.to(h_cut.dtype), self.num_tracks, self.num_classes)  # (B, T, N*(1+K))
        return F.softplus(self.mlp(torch.cat([h_cut, state], dim=-1)).squeeze(-1))  # (B, T)


def with_change(x: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """(B, T, F) -> (B, T, 2F): the features and their change from the previous frame.

    The edits this model learns are reactions to changes in the content (a scene
    starts, the speaker turns, a caption appears), and a change is one subtraction
    here where a small causal encoder would have to learn it from two positions. The
    change is 0 on a window's first frame and wherever either frame is unavailable,
    so it never looks past the window or invents a jump out of missing data.
    """
    change = torch.zeros_like(x)
    both = (available[:, 1:] & available[:, :-1]).unsqueeze(-1).to(x.dtype)  # (B, T-1, 1)
    change[:, 1:] = (x[:, 1:] - x[:, :-1]) * both
    return torch.cat([x, change], dim=-1)


# --- the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """A model's whole architecture: built once from params, passed whole, stored whole in
    its checkpoints (so a checkpoint rebuilds exactly the network that wrote it).

    ``kind="baseline"``: no content inputs, no fusion, the cut head on the shared trunk.
    ``causal=False`` lets every frame attend to the whole window (a model that never rolls
    out). ``layout_veto`` acts where the cut head reads the content alone
    (``cut_context="content"``). ``use_audio`` / ``use_visual`` False remove
    one modality from the multimodal model. The defaults are the params' defaults
    (``ModelParams``, ``Params``) and the data contract's widths.
    """

    kind: str = "multimodal"
    causal: bool = True
    d_model: int = ModelParams.d_model
    nhead: int = ModelParams.nhead
    num_encoder_layers: int = ModelParams.num_encoder_layers
    dim_feedforward: int = ModelParams.dim_feedforward
    dropout: float = ModelParams.dropout
    max_asset_classes: int = ModelParams.max_asset_classes
    cut_context: str = ModelParams.cut_context
    layout_veto: bool = ModelParams.layout_veto
    fusion_type: str = Params.fusion_type
    use_audio: bool = Params.use_audio
    use_visual: bool = Params.use_visual
    # the visual scalars read (schema.VISUAL_SCALARS names; CLIP always): the others are zeroed in the input, not
    # cut from it, so the network's shapes and its seeded initialisation do not depend on the choice and runs that
    # differ in it compare like with like
    visual_inputs: tuple[str, ...] = ModelParams.visual_inputs
    # tracks the audio switches on and off, each switched by its own toggle head (``trackfusion.learn.toggle``),
    # not by the cut and which heads; () none (a model stored before the key existed has none)
    toggle_tracks: tuple[int, ...] = ModelParams.toggle_tracks
    max_len: int = 4096  # positional encodings precomputed this far (a longer input extends them)
    num_tracks: int = schema.NUM_TRACKS
    audio_features: int = schema.AUDIO_WIDTH
    visual_features: int = schema.VISUAL_WIDTH

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind is {self.kind!r}; allowed values: {', '.join(MODEL_KINDS)}")
        if self.fusion_type not in FUSION_TYPES:
            raise ValueError(f"fusion_type is {self.fusion_type!r}; allowed values: {', '.join(FUSION_TYPES)}")
        if self.cut_context not in CUT_CONTEXTS:
            raise ValueError(f"cut_context is {self.cut_context!r}; allowed values: {', '.join(CUT_CONTEXTS)}")
        if self.d_model % self.nhead:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by nhead ({self.nhead})")
        for name in ("d_model", "nhead", "num_encoder_layers", "dim_feedforward", "max_asset_classes", "max_len",
                     "num_tracks", "audio_features", "visual_features"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        # a stored list reads back as a tuple
        object.__setattr__(self, "visual_inputs",
                           schema.named_columns("visual_inputs", self.visual_inputs, schema.VISUAL_SCALARS))
        toggles = tuple(int(t) for t in self.toggle_tracks)
        if any(not 0 <= t < self.num_tracks for t in toggles) or len(set(toggles)) != len(toggles):
            raise ValueError(f"toggle_tracks must be distinct track indices within 0..{self.num_tracks - 1}, "
                             f"got {list(self.toggle_tracks)}")  # fmt: skip
        object.__setattr__(self, "toggle_tracks", toggles)

    @property
    def multimodal(self) -> bool:
        """Content inputs and their fusion (every kind but the track-only baseline)."""
        return self.kind != "baseline"

    @property
    def track_features(self) -> int:
        return self.num_tracks * schema.NUM_TRACK_PARAMS

    @classmethod
    def from_params(cls, params: Params, kind: str) -> ModelConfig:
        """The config a training stage builds: ``params.model`` (+ the top-level modality keys for multimodal)."""
        m = params.model
        common = dict(
            d_model=m.d_model, nhead=m.nhead, num_encoder_layers=m.num_encoder_layers,
            dim_feedforward=m.dim_feedforward, dropout=m.dropout, max_asset_classes=m.max_asset_classes,
            max_len=max(cls.max_len, m.seq_len),
        )  # fmt: skip
        if kind == "baseline":
            return cls(kind=kind, **common)
        return cls(kind=kind, fusion_type=params.fusion_type, use_audio=params.use_audio,
                   use_visual=params.use_visual, visual_inputs=m.visual_inputs, cut_context=m.cut_context,
                   layout_veto=m.layout_veto, toggle_tracks=m.toggle_tracks, **common)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelConfig:
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}")
        if "visual_inputs" not in raw:  # stored before the key existed: the model read every visual scalar
            raw = {**raw, "visual_inputs": tuple(c.name for c in schema.VISUAL_SCALARS)}
        if "toggle_tracks" not in raw:  # stored before the key existed: no toggle head
            raw = {**raw, "toggle_tracks": ()}
        return cls(**raw)


class EditTransformer(nn.Module):
    """The edit model of either kind (see the module doc); ``config.kind="baseline"`` is the baseline.

    A disabled modality (``use_audio`` / ``use_visual`` False, or the baseline) has no
    embedding and its input is never read (it may be passed as None); in fusion it is a
    permanently unavailable slot, exactly like one whose modality_mask is False.
    """

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        c = self.config = config
        self.use_audio = c.multimodal and c.use_audio
        self.use_visual = c.multimodal and c.use_visual
        self.track_embed = TrackEmbedding(c.num_tracks, c.max_asset_classes, c.d_model, c.dropout)
        self.encoder = Encoder(c.d_model, c.nhead, c.num_encoder_layers, c.dim_feedforward, c.dropout, c.max_len,
                               c.causal)  # fmt: skip
        self.heads = EditHeads(c.d_model, c.num_tracks, c.max_asset_classes)
        if self.use_audio:  # features and their change from the previous frame: see with_change
            self.audio_embed = ModalityEmbedding(2 * c.audio_features, c.d_model, c.dropout)
        if self.use_visual:
            self.visual_embed = ModalityEmbedding(2 * c.visual_features, c.d_model, c.dropout)
            read = torch.ones(c.visual_features)  # 1 where the visual column is read: the named scalars, CLIP
            unread = [i for i, col in enumerate(schema.VISUAL_SCALARS[: c.visual_features])
                      if col.name not in c.visual_inputs]
            read[unread] = 0.0
            self.register_buffer("visual_read", read, persistent=False)  # from the config, not the weights
        if c.multimodal:
            self.fusion = ModalityFusion(c.d_model, len(schema.MODALITIES), c.fusion_type, c.nhead, c.dropout)
        # "content": the cut head reads the content alone, through its own causal encoder,
        # so *when* to cut never depends on the layout it is shown (teacher-forced or its own)
        self.content_cuts = c.multimodal and c.cut_context == "content"
        if self.content_cuts:
            self.cut_encoder = Encoder(c.d_model, c.nhead, c.num_encoder_layers, c.dim_feedforward, c.dropout,
                                       c.max_len, c.causal)  # fmt: skip
        self.veto = None  # the layout may lower the content's cut logit, never raise it
        if self.content_cuts and c.layout_veto:
            self.veto = LayoutVeto(c.d_model, c.num_tracks, c.max_asset_classes)
        self.toggle = None  # fitted after training (toggle.fit_toggle_head); never trained by its steps
        if self.use_audio and c.toggle_tracks:
            with torch.random.fork_rng(devices=[]):  # its start draws nothing from the run's seeded RNG
                self.toggle = ToggleHead(c.audio_features, c.toggle_tracks)

    def embed(
        self,
        audio: torch.Tensor | None,
        visual: torch.Tensor | None,
        track: torch.Tensor,
        modality_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-frame fused embedding (B, T, D) before positional encoding, and the fusion's weights."""
        fused, weights, _ = self._embed(audio, visual, track, modality_mask)
        return fused, weights

    def _embed(self, audio, visual, track, modality_mask):  # fmt: skip
        """embed(), plus the fusion of the content alone (the track slot unavailable) or None."""
        B, T, _ = track.shape
        track_emb = self.track_embed(track)  # (B, T, D)
        if not self.config.multimodal:
            return track_emb, None, None
        if modality_mask is None:
            modality_mask = torch.ones(B, T, 3, dtype=torch.bool, device=track.device)
        # a disabled modality, or one passed as None, is never available
        have = [self.use_audio and audio is not None, self.use_visual and visual is not None, True]
        mask = modality_mask.bool() & torch.tensor(have, device=track.device)  # (B, T, 3)
        parts = [torch.zeros_like(track_emb), torch.zeros_like(track_emb), track_emb]
        for i, (x, embed) in enumerate(((audio, "audio_embed"), (visual, "visual_embed"))):
            if have[i]:
                x = x.to(track_emb.dtype) * mask[..., i : i + 1]  # unavailable features are zero (SPEC 5)
                if i == 1:
                    x = x * self.visual_read.to(x.dtype)  # the scalars not read: zero, and so is their change
                parts[i] = getattr(self, embed)(with_change(x, mask[..., i]))  # (B, T, D)
        stacked = torch.stack(parts, dim=2)  # (B, T, 3, D)
        fused, weights = self.fusion.fuse(stacked, mask)  # (B, T, D)
        content = None
        if self.content_cuts:
            content = self.fusion(stacked, mask & torch.tensor([True, True, False], device=track.device))
        return fused, weights, content

    def forward(
        self,
        audio: torch.Tensor | None,
        visual: torch.Tensor | None,
        track: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        c = self.config
        check_input("track", track, c.track_features)
        ref = (track.shape[0], track.shape[1])
        if padding_mask is not None:
            check_input("padding_mask", padding_mask, None, ref)
        if audio is not None and self.use_audio:
            check_input("audio", audio, c.audio_features, ref)
        if visual is not None and self.use_visual:
            check_input("visual", visual, c.visual_features, ref)
        if modality_mask is not None and c.multimodal:
            check_input("modality_mask", modality_mask, len(schema.MODALITIES), ref)
        fused, _, content = self._embed(audio, visual, track, modality_mask)
        if modality_mask is not None and c.multimodal:  # an unavailable track state must not reach
            track = track * modality_mask[..., 2:3].to(track.dtype)  # the copy prior either
        h = self.encoder(fused, padding_mask)  # first: the order in which dropout draws from the seeded RNG
        h_cut = None if content is None else self.cut_encoder(content, padding_mask)  # (B, T, D)
        out = self.heads(h, track, h_cut)
        if self.veto is not None:
            out["cut_content"] = out["cut"]
            out["cut"] = out["cut"] - self.veto(h_cut, track)  # (B, T): lowered, never raised
        if self.toggle is not None:
            available = None if modality_mask is None else modality_mask[..., 0]
            out[TOGGLE_KEY] = self.toggle(audio, available, track)  # (B, T, len(toggle_tracks))
        return out

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self(batch.get("audio"), batch.get("visual"), batch["prev_track"], batch.get("padding_mask"),
                    batch.get("modality_mask"))  # fmt: skip


#: kind -> the class that builds a model of that kind from its config (checkpoints rebuild through it)
MODEL_CLASSES: dict[str, type[nn.Module]] = dict.fromkeys(MODEL_KINDS, EditTransformer)


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh model of `config.kind`, the one way a config becomes a network."""
    return MODEL_CLASSES[config.kind](config)


@torch.no_grad()
def decode_frames(
    outputs: dict[str, torch.Tensor],
    active_threshold: float = 0.5,
    prev_track: torch.Tensor | None = None,
    fire: torch.Tensor | None = None,
) -> torch.Tensor:
    """Head outputs -> track frames (B, T, N*9) in the schema layout.

    A track is active where sigmoid(active logit) > active_threshold; its asset is the argmax
    class; scale, x, y and crops are the predicted values. Inactive tracks are all zero.

    With ``prev_track`` and ``fire`` (B, T) bool (the cut events decoded from the cut
    logit, ``trackfusion.cuts.fire_events``), the cut head decides *when* the layout
    changes and the track heads *how*: where ``fire`` is False the active set and assets
    are the previous frame's (parameters still move); where it is True the heads'
    layout is taken, and if it equals the previous one, the single most probable
    change (one track switched on or off, or given another asset) is made, so a fired
    cut is always a cut. A model with a which head (``WHICH_KEY``) changes, where the cut
    head fires, exactly the tracks it names (each switched off or to another asset if it
    was on, whichever its heads find likelier, on if it was off): the track heads are
    trained on every frame, where a face cam switch is one frame of several after a
    speaker turn, so they never said "off" at a cut; the which head is trained on the
    cuts alone. A fire where it names no track changes nothing (the layout already
    shows what the content announced; forcing a change there toggled the face cam on
    scene changes).
    """
    active = torch.sigmoid(outputs["active"].float())  # (B, T, N)
    q = torch.softmax(outputs["asset"].float(), dim=-1)  # (B, T, N, K)
    on = active > active_threshold
    asset = q.argmax(dim=-1)  # (B, T, N)
    if prev_track is not None and fire is not None:
        B, T, N = on.shape
        prev = prev_track.float().reshape(B, T, N, schema.NUM_TRACK_PARAMS)
        was_on = prev[..., _ACTIVE] > 0.5
        was = prev[..., _ASSET].round().long().clamp(0, q.shape[-1] - 1)
        # a track's change: off or another asset if it was on (whichever is likelier), on if it was off
        q_other = q.scatter(-1, was.unsqueeze(-1), -1.0)  # (B, T, N, K) without the current asset
        swap_p, swap_k = q_other.max(dim=-1)
        turn_off = was_on & (1 - active >= active * swap_p)
        changed_on = torch.where(was_on, ~turn_off, torch.ones_like(on))
        changed_asset = torch.where(was_on & ~turn_off, swap_k, torch.where(was_on, was, asset))
        if WHICH_KEY in outputs:  # the tracks the which head names change, and no other
            change = (torch.sigmoid(outputs[WHICH_KEY].float()) > 0.5) & fire.bool().unsqueeze(-1)  # (B, T, N)
            on = torch.where(change, changed_on, was_on)
            asset = torch.where(change, changed_asset, was)
        else:
            same = ((on == was_on) & (~on | (asset == was))).all(dim=-1)  # (B, T): heads keep the layout
            # the most probable single-track change: off, another asset, or on
            alt_p = torch.where(was_on, torch.maximum(1 - active, active * swap_p), active)
            pick = torch.zeros_like(on).scatter(-1, alt_p.argmax(dim=-1, keepdim=True), True)  # (B, T, N)
            forced_on = torch.where(pick, changed_on, was_on)
            forced_asset = torch.where(pick, changed_asset, was)
            force = (fire.bool() & same).unsqueeze(-1)
            keep = (~fire.bool()).unsqueeze(-1)
            on = torch.where(keep, was_on, torch.where(force, forced_on, on))
            asset = torch.where(keep, was, torch.where(force, forced_asset, asset))
    frame = torch.cat(
        [
            torch.ones_like(active).unsqueeze(-1),
            asset.float().unsqueeze(-1),
            outputs["scale"].float().unsqueeze(-1),
            outputs["position"].float(),
            outputs["crop"].float(),
        ],
        dim=-1,
    )  # (B, T, N, 9) in schema.TRACK_PARAMS order
    frame = frame * on.unsqueeze(-1)
    B, T, N, P = frame.shape
    return frame.reshape(B, T, N * P)


@torch.no_grad()
def decode_states(
    step: dict[str, torch.Tensor],
    prev: torch.Tensor,
    fire: torch.Tensor,
    state_confidence: float,
    active_threshold: float = 0.5,
) -> torch.Tensor:
    """One roll-out step's frame (b, N*9): ``decode_frames``' layout, overruled by the content-only
    state heads where they are sure.

    A track whose state head is sure (probability >= `state_confidence`) shows what the
    content shows, whatever its previous state: a wrong state lasts only until the content
    contradicts it (a text overlay, the scene's source). Any other track (the face cam,
    toggled on speaker turns, which no single frame shows) follows ``decode_frames``: the
    cut head's `fire` (b,) decides when, the track heads what.
    """
    one = {k: v.unsqueeze(1) for k, v in step.items()}
    frame = decode_frames(one, active_threshold, prev.unsqueeze(1), fire.unsqueeze(1))[:, 0]  # (b, N*9)
    b, N = step["active"].shape
    frame = frame.reshape(b, N, schema.NUM_TRACK_PARAMS)
    p_state = torch.sigmoid(step["state_active"].float())  # (b, N)
    q_state = torch.softmax(step["state_asset"].float(), dim=-1)  # (b, N, K)
    sure = torch.maximum(p_state, 1 - p_state) >= state_confidence
    shown = frame[..., _ACTIVE] > 0.5
    on = torch.where(sure, p_state > 0.5, shown)
    sure_asset = sure & ((q_state.max(-1).values >= state_confidence) | ~shown)  # switched on: its likeliest asset
    asset = torch.where(sure_asset, q_state.argmax(-1).float(), frame[..., _ASSET])
    params = torch.cat([step["scale"].float().unsqueeze(-1), step["position"].float(), step["crop"].float()], dim=-1)
    out = torch.cat([torch.ones_like(p_state).unsqueeze(-1), asset.unsqueeze(-1), params], dim=-1)
    return (out * on.unsqueeze(-1)).reshape(b, N * schema.NUM_TRACK_PARAMS)
