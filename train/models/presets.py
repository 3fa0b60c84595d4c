"""Named MixFormerV2 variants: architecture plus the tracking numbers that travel with them.

``S`` and ``B`` are the official released configurations (spec section 1):
``224_depth4_mlp1_score`` and ``288_depth8_score``. Their search factors and update interval are
the published LaSOT test settings (spec 3 and 4.3). The small presets share the layout and exist
for tests and for models trained here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import ConfigError


@dataclass(frozen=True)
class Architecture:
    """One MixFormerV2 variant: its layers and the tracking numbers that travel with it. Token grids are
    size // patch_size squared. (Not ``ModelConfig``: that is the device config's model section, edge.config.)"""

    name: str
    embed_dim: int = 768
    depth: int = 4
    num_heads: int = 12
    mlp_ratio: float = 4.0
    # Heads for the prediction tokens' queries (0: num_heads), see train.models.model.MixedAttention.
    token_heads: int = 0
    # >0: the prediction tokens stay out of the blocks and read the final (normed) search tokens
    # in one cross-attention of this many heads (train.models.model.TokenReadout).
    readout_heads: int = 0
    # With a readout: its layers, each a cross-attention and then, with a ratio > 0, an MLP.
    readout_layers: int = 1
    readout_mlp_ratio: float = 0.0
    # >0: at inference each box edge is the expectation over the bins within this many of its most
    # likely bin, not over all of them (train.models.model.DistributionBoxHead). 0: the official
    # soft-argmax.
    box_mode_window: int = 0
    patch_size: int = 16
    template_size: int = 128
    search_size: int = 288
    bins: int = 96
    # Tracking settings that belong to the variant (exported into the model metadata).
    search_factor: float = 5.0
    update_interval: int = 200
    # How crops become tokens: "patch" (the official 16x16 linear patch embedding), "nanotrack"
    # (NanoTrack's pretrained CNN, stride 16, BGR 0..255 input: train/models/stems.py) or "vittrack"
    # (VitTrack's two conv stems, RGB with ImageNet mean/std: train/models/vittrack.py).
    stem: str = "patch"
    # Tracker size smoothing written into the metadata (1: upstream's behaviour).
    size_update_rate: float = 1.0

    @property
    def template_grid(self) -> int:
        return self.template_size // self.patch_size

    @property
    def search_grid(self) -> int:
        return self.search_size // self.patch_size

    def describe(self) -> str:
        ratio = f"{self.mlp_ratio:g}"
        return (f"depth {self.depth}, width {self.embed_dim}, MLP ratio {ratio}, "
                f"{self.template_size}/{self.search_size} px, {self.bins} bins")


# VitTrack's shape and crops, shared by every student copied from it (the "vitstem" presets below).
_VITTRACK = dict(embed_dim=48, depth=3, num_heads=1, mlp_ratio=4.0, template_size=128, search_size=256, bins=64,
                 search_factor=4.0, update_interval=25, stem="vittrack")

PRESETS: dict[str, Architecture] = {
    "S": Architecture("S", depth=4, mlp_ratio=1.0, template_size=112, search_size=224,
                     search_factor=4.4, update_interval=200),
    "B": Architecture("B", depth=8, mlp_ratio=4.0, template_size=128, search_size=288,
                     search_factor=5.0, update_interval=200),
    # Width 192, 3 heads: a ViT-Ti-sized student for training on modest hardware.
    "T192": Architecture("T192", embed_dim=192, depth=4, num_heads=3, mlp_ratio=4.0,
                        template_size=112, search_size=224, bins=96, search_factor=4.5,
                        update_interval=25),
    # The bundled default model (issue 7): NanoTrack's pretrained CNN as the stem, 3 MixFormerV2
    # layers on its 48-channel tokens. Crop factors 2 and 4 are NanoTrack's context (127/255 px
    # crops of ~2x and ~4x the target), on 128/256 px inputs so the token grids are 8 and 16.
    "nanostem": Architecture("nanostem", embed_dim=128, depth=3, num_heads=4, mlp_ratio=2.0,
                            template_size=128, search_size=256, bins=64, search_factor=4.0,
                            update_interval=25, stem="nanotrack", size_update_rate=0.3),
    # The same network on a tighter window at the same scale (224 px over 3.5x the target, 4 px
    # per bin as above): 0.77x the tokens and the stem's work. train/weights/regrid.py moves weights over.
    "nanostem224": Architecture("nanostem224", embed_dim=128, depth=3, num_heads=4, mlp_ratio=2.0,
                               template_size=128, search_size=224, bins=56, search_factor=3.5,
                               update_interval=25, stem="nanotrack", size_update_rate=0.3),
    # Tighter again at the same scale (192 px over 3x the target): 0.73x nanostem224's tokens.
    "nanostem192": Architecture("nanostem192", embed_dim=128, depth=3, num_heads=4, mlp_ratio=2.0,
                               template_size=128, search_size=192, bins=48, search_factor=3.0,
                               update_interval=25, stem="nanotrack", size_update_rate=0.3),
    # Issue 29's student: VitTrack (OpenCV model zoo) copied into MixFormerV2 -- its two conv
    # stems ("vittrack", RGB with ImageNet mean/std: VitTrack scores 61.3 validation AUC so fed,
    # against 57.3 on the BGR OpenCV feeds it), learned position
    # embeddings and 3 blocks of width 48, one head, MLP 192; crops 2x/4x the target at 128/256
    # px, as VitTrack's. 4 px per bin.
    "vitstem": Architecture("vitstem", **_VITTRACK),
    # The same student with its prediction tokens' queries in 4 heads of 12 (the image tokens keep
    # VitTrack's one head): a readout over VitTrack's features reaches 0.53 IoU on held training
    # pairs with 4 heads, 0.46 with one (train/distill/cached_readout.py; the teacher's maps: 0.59).
    "vitstem4": Architecture("vitstem4", **_VITTRACK, token_heads=4),
    # VitTrack's blocks untouched (the image tokens attend as in vitstem, the templates to
    # themselves), the four prediction tokens in a 4-head readout after the final norm: the
    # student whose readout train/distill/cached_readout.py can train on cached teacher features.
    # Edges are read near their mode, within 4 bins (16 px, one token): on the validation split
    # the full expectation tracked 2 to 6 points worse for both readout students.
    "vitstem-readout": Architecture("vitstem-readout", **_VITTRACK, readout_heads=4, box_mode_window=4),
    # The same with a readout of two layers, each a 4-head cross-attention and an MLP of ratio 4
    # (a small DETR-style decoder): fitted on the same 16,000 cached teacher features for 8,000
    # steps it reaches 0.567 IoU on held training pairs where one layer without MLP stops at 0.548
    # (0.576 on 48,000 pairs).
    "vitstem-decoder": Architecture("vitstem-decoder", **_VITTRACK, readout_heads=4, readout_layers=2,
                                    readout_mlp_ratio=4.0, box_mode_window=4),
    # For tests: seconds to build, export and run.
    "tiny": Architecture("tiny", embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0,
                        template_size=64, search_size=128, bins=32, search_factor=4.0,
                        update_interval=10),
}


def get_preset(name: str) -> Architecture:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown variant '{name}' (valid: {', '.join(PRESETS)})") from None
