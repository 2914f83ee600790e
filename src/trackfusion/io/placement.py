"""Where a clip's picture lands in the output frame: the one reading of scale, position and crop.

A clip's media is first fitted into the 1920 x 1080 frame of the track layout (as an editor
shows media of the sequence's size at 100 %), then scaled by ``scale`` percent about its
centre, its centre put at (``x``, ``y``) in frame pixels, and its edges cut by the crop
percentages without moving what is left (FCP 7's Crop filter). ``render`` and the MLT
export both place clips through :func:`place`, so the two agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from trackfusion import schema


@dataclass(frozen=True)
class Placement:
    """The visible part of the media (``source``: x0, y0, x1, y1 in media pixels) and where it lands
    (``dest``: x0, y0, x1, y1 in output pixels, fractional, possibly beyond the frame)."""

    source: tuple[float, float, float, float]
    dest: tuple[float, float, float, float]

    @property
    def empty(self) -> bool:
        s, d = self.source, self.dest
        return s[2] <= s[0] or s[3] <= s[1] or d[2] <= d[0] or d[3] <= d[1]


def place(params: Mapping[str, float], media_size: tuple[int, int], out_size: tuple[int, int]) -> Placement:
    """The placement of a clip with track-layout `params` (scale, x, y, crop_l/r/t/b) whose media is
    `media_size` (w, h) pixels, in an output frame of `out_size` (w, h) pixels."""
    mw, mh = media_size
    ow, oh = out_size
    fw, fh = schema.FRAME_WIDTH, schema.FRAME_HEIGHT
    fit = min(fw / mw, fh / mh)  # media pixels -> frame pixels at 100 %
    k = fit * float(params["scale"]) / 100.0
    w, h = mw * k, mh * k  # the whole clip in frame pixels
    left, top = float(params["x"]) - w / 2, float(params["y"]) - h / 2
    cl, cr = _share(params["crop_l"]), _share(params["crop_r"])
    ct, cb = _share(params["crop_t"]), _share(params["crop_b"])
    source = (cl * mw, ct * mh, (1 - cr) * mw, (1 - cb) * mh)
    sx, sy = ow / fw, oh / fh  # frame pixels -> output pixels
    dest = ((left + cl * w) * sx, (top + ct * h) * sy, (left + (1 - cr) * w) * sx, (top + (1 - cb) * h) * sy)
    return Placement(source, dest)


def _share(percent: float) -> float:
    return min(max(float(percent) / 100.0, 0.0), 1.0)
