"""Asset rules: which asset class a clip's media is, and which media is the recording.

In order: trackfusion's own clip metadata, a media name equal to the recording's id
(``main_media``), our export's naming (``trackfusion_asset<k>``), ``asset_patterns``
(case-insensitive globs, first match wins), last ``unmatched_asset`` (counted).
"""
from __future__ import annotations

import fnmatch
import logging
import os
import re
import urllib.parse
from pathlib import Path
from typing import Mapping, Sequence

import opentimelineio as otio

from trackfusion import schema
from trackfusion.io.timeline.records import ImportTally, number

log = logging.getLogger(__name__)

_EXPORT_NAME_RE = re.compile(r"^trackfusion_asset(\d+)(?:_|\.|$)", re.IGNORECASE)


def default_media_name(asset: int) -> str:
    """The media name export gives an asset class, which import reads back as that class."""
    label = schema.ASSET_CLASSES[asset] if asset < len(schema.ASSET_CLASSES) else f"class{asset}"
    return f"trackfusion_asset{asset}_{label}"


def _url_name(url: str | None) -> str | None:
    if not url:
        return None
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path or url)
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name or None


def candidate_names(item: otio.core.Item) -> list[str]:
    """Names to match against patterns, most specific first: media file, media, clip, reel."""
    names: list[str | None] = []
    ref = getattr(item, "media_reference", None)
    if ref is not None:
        names.append(_url_name(getattr(ref, "target_url", None)))
        names.append(_url_name(getattr(ref, "target_url_base", None)))
        names.append(ref.name)
        names.append(getattr(ref, "generator_kind", None))
    names.append(item.name)
    cmx = item.metadata.get("cmx_3600")
    if cmx is not None and "reel" in cmx:
        names.append(str(cmx["reel"]))
    return [n for n in dict.fromkeys(names) if n]


def matches_media(names: Sequence[str], main_media: str | None) -> bool:
    if not main_media:
        return False
    return any(n == main_media or os.path.splitext(n)[0] == main_media for n in names)


class AssetRules:
    """One import's asset rules; what they cannot place is counted in `tally`."""

    def __init__(self, path: Path, patterns: Mapping[str, int], skip_patterns: Sequence[str], main_media: str | None,
                 main_asset: int, unmatched_asset: int, tally: ImportTally):
        self.path, self.main_media = path, main_media
        self.patterns = [(p.lower(), int(a)) for p, a in patterns.items()]
        self.skip = [p.lower() for p in skip_patterns]
        self.main_asset, self.unmatched_asset = main_asset, unmatched_asset
        self.tally = tally

    def asset_of(self, item: otio.core.Item, names: Sequence[str], own: Mapping | None) -> int:
        if own is not None and "asset_id" in own:
            asset = number(own["asset_id"])
            if asset is not None and asset == int(asset):
                return self._in_range(int(asset), item)
            self.tally.unreadable["asset_id"] += 1
        if matches_media(names, self.main_media):
            return self.main_asset
        named = self.asset_named(names)
        if named is not None:
            return self._in_range(named, item)
        self.tally.counts["unknown_media"] += 1
        log.debug("%s: clip '%s' (%s) matches no asset pattern; class %d", self.path, item.name, names, self.unmatched_asset)
        return self.unmatched_asset

    def asset_named(self, names: Sequence[str]) -> int | None:
        """The class our export's naming (``trackfusion_asset<k>``) or the first matching asset
        pattern gives these names, else None."""
        for n in names:
            m = _EXPORT_NAME_RE.match(n)
            if m:
                return int(m.group(1))
        for pattern, asset in self.patterns:
            if any(fnmatch.fnmatchcase(n.lower(), pattern) for n in names):
                return asset
        return None

    def _in_range(self, asset: int, item: otio.core.Item) -> int:
        if 0 <= asset < schema.NUM_ASSET_CLASSES:
            return asset
        self.tally.counts["asset_out_of_range"] += 1
        log.warning("%s: clip '%s' has asset class %d outside 0..%d; using %d", self.path, item.name, asset,
                    schema.NUM_ASSET_CLASSES - 1, schema.NUM_ASSET_CLASSES - 1)
        return schema.NUM_ASSET_CLASSES - 1

    def is_skipped(self, names: Sequence[str]) -> bool:
        """An editor's generator (``skip_patterns``), not footage; the recording never is."""
        return not matches_media(names, self.main_media) and any(
            fnmatch.fnmatchcase(n.lower(), p) for p in self.skip for n in names)

    def shows_recording(self, names: Sequence[str], asset: int) -> bool:
        """A video clip of the recording: named as it, else (no name given) of the main class."""
        return matches_media(names, self.main_media) if self.main_media else asset == self.main_asset

    def names_recording(self, names: Sequence[str]) -> bool:
        """The media is the recording: named as it, else (no name given) named as the main asset
        by our export or by the first asset pattern it matches."""
        if self.main_media:
            return matches_media(names, self.main_media)
        return self.asset_named(names) == self.main_asset
