"""The per-video feature CSVs (SPEC sections 3 and 8): read, checked and discovered.

A table is read into a :class:`FeatureTable`. Soft faults are fixed and counted, never
silent: empty or infinite values become NaN (a missing sample, counted per column), rows
out of time order are sorted and rows with a repeated time keep the first (each a
warning naming the file). Hard faults raise :class:`FeatureFileError` naming the file,
the row or column, and what was expected.
"""
from __future__ import annotations

import csv
import logging
import re
import warnings
from dataclasses import dataclass, field
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from trackfusion import schema

log = logging.getLogger(__name__)

# Parser choice, measured by bench/bench_ingest.py on this machine (2 shared cores, a
# one-hour visual table: 36,000 rows x 523 columns, 214 MB, best of 3): pandas' C engine
# parsed 330-470 MB/s across runs, pyarrow.csv 140-220 MB/s and pandas' engine="pyarrow"
# 160-190 MB/s; pyarrow took 2.1-2.5x as long in every run. Its multi-threaded parser has
# no spare cores to spread over here, and its Arrow columns still have to be converted.
# pyarrow would reject short rows itself; for the C engine :func:`_check_field_counts`
# does that in one pass over the bytes (~0.07 s for the hour). The whole
# read_visual_csv, cleaning and float16 conversion included, runs at ~220 MB/s.
_ENGINE = "c"

SPEAKER_TURN = "speaker_turn"  # the audio input derived from speaker_id
_NON_SPACE = re.compile(rb"\S")
_MISSING_LIKE = ("", "nan", "NaN", "NA", "N/A", "null", "NULL", "None")


def shorten(text: str, limit: int = 300) -> str:
    """`text`, cut to `limit` characters with its full length said: an error message quotes
    values from the file, and one 100 MB cell must not become a 100 MB log line or report."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"


class FeatureFileError(ValueError):
    """A feature CSV cannot be used: the message names the file, the row or column, and what was expected.

    The caller treats that modality of that video as unavailable (SPEC section 8).
    """

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        expected: str = "",
        row: int | None = None,
        column: str | None = None,
        missing: Sequence[str] = (),
    ):
        self.path = Path(path)
        self.row = row  # 1-based data row (the header is not counted)
        self.column = None if column is None else shorten(column, 100)
        self.missing = tuple(shorten(m, 100) for m in missing)  # required columns absent from the header
        message = f"{self.path}: {shorten(problem, 500)}"
        if expected:
            message += f"; expected {shorten(expected, 500)}"
        super().__init__(message)


@dataclass
class ReadIssues:
    """Soft faults found while reading one feature CSV (all fixed, all counted)."""

    unsorted_rows: int = 0  # rows whose time is earlier than the row before (rows were sorted)
    duplicate_rows: int = 0  # rows dropped because an earlier row had the same time
    nonfinite: dict[str, int] = field(default_factory=dict)  # column -> empty/NaN/inf samples (kept as NaN)

    @property
    def nonfinite_total(self) -> int:
        return int(sum(self.nonfinite.values()))


@dataclass
class FeatureTable:
    """One feature CSV after cleaning.

    ``times`` is strictly increasing. ``values`` holds the audio inputs
    (``schema.AUDIO_INPUTS`` order, ``speaker_turn`` derived) or the ten visual scalars
    (``schema.VISUAL_SCALARS``); NaN marks a missing sample. ``clip`` is the visual CLIP
    block, float16 because it is by far the largest array; None for audio.
    """

    path: Path
    times: np.ndarray  # (N,) float64
    values: np.ndarray  # (N, W) float32, W = 5 audio or 10 visual scalars
    clip: np.ndarray | None  # (N, 512) float16 for visual, None for audio
    issues: ReadIssues

    def __len__(self) -> int:
        return len(self.times)

    @property
    def modality(self) -> str:
        return "audio" if self.clip is None else "visual"

    @property
    def columns(self) -> list[str]:
        """Names of the ``values`` columns."""
        return schema.input_names(schema.AUDIO_INPUTS if self.clip is None else schema.VISUAL_SCALARS)

    @property
    def width(self) -> int:
        """Model input width: 5 for audio, 522 (10 scalars + 512 CLIP) for visual."""
        return self.values.shape[1] + (0 if self.clip is None else self.clip.shape[1])


def _load_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FeatureFileError(path, "file not found", expected="an existing feature CSV") from None
    except OSError as exc:
        raise FeatureFileError(path, f"cannot read the file ({exc.strerror or exc})") from None
    if not data or data.isspace():  # isspace stops at the first other byte; strip() would copy the file
        raise FeatureFileError(path, "the file is empty", expected="a header row and at least one data row")
    if b"\x00" in data[:65536]:
        raise FeatureFileError(path, "the file is binary or corrupt (NUL bytes), not CSV text",
                               expected="UTF-8 comma-separated text")
    return data


def _header(path: Path, data: bytes) -> tuple[list[str], bool]:
    """Header field names, and whether any data row follows the header line."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    has_rows = end >= 0 and _NON_SPACE.search(data, end + 1) is not None  # no copy of the body
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeatureFileError(path, "the header row is not UTF-8 text (corrupt or not a CSV file)",
                               expected="a header row of column names") from None
    try:
        names = [n.strip() for n in next(csv.reader([text.rstrip("\r")]), [])]
    except csv.Error as exc:  # e.g. a field over the csv module's limit (131,072 characters)
        raise FeatureFileError(path, f"the header row cannot be parsed ({exc})",
                               expected="a header row of column names") from None
    return names, has_rows


def _check_columns(path: Path, header: list[str], required: Sequence[str], known: Sequence[str]) -> None:
    """Every required column present, none repeated; columns outside `known` are logged and ignored."""
    seen: set[str] = set()
    repeated = [n for n in header if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if repeated:
        raise FeatureFileError(path, f"column '{repeated[0]}' appears more than once in the header",
                               column=repeated[0], expected="each column once")
    missing = [c for c in required if c not in seen]
    if missing:
        unexpected = [n for n in header if n not in known]
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        problem = f"missing column(s) {shown}"
        if unexpected:
            problem += f" (found unexpected column(s) {', '.join(unexpected[:8])})"
        expected = ", ".join(required) if len(required) <= 12 else (
            f"{len(required)} columns: " + ", ".join(required[:12]) + f", ... {required[-1]}"
        )
        raise FeatureFileError(path, problem, column=missing[0], missing=missing, expected=f"columns {expected}")
    extra = [n for n in header if n not in known]
    if extra:
        log.info("%s: ignoring %d column(s) that are not inputs: %s", path, len(extra), ", ".join(extra[:8]))


def _count_separators(data: bytes) -> tuple[int, bool]:
    """Commas outside quoted fields, and whether the file has quotes at all."""
    if b'"' not in data:
        return data.count(b","), False
    a = np.frombuffer(data, dtype=np.uint8)
    inside = (np.cumsum(a == ord('"')) & 1).astype(bool)  # odd number of quotes so far: inside a field
    return int(np.count_nonzero((a == ord(",")) & ~inside)), True


def _locate_bad_row(path: Path, data: bytes, header: list[str]) -> FeatureFileError | None:
    """Slow exact scan (error path only): the first data row whose field count differs from the header's."""
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(StringIO(text, newline=""), strict=True)
    next(reader, None)
    rows: list[list[str]] = []
    try:
        rows.extend(reader)  # only reached when a fault is already known
    except csv.Error as exc:  # e.g. EOF inside a quoted field: the file ends mid-row
        row = sum(1 for r in rows if r and not (len(r) == 1 and not r[0].strip())) + 1
        return FeatureFileError(path, f"data row {row} is malformed ({exc}; the file looks truncated mid-row)",
                                row=row, expected="quoted fields closed before the end of the row")
    row = 0
    for i, fields in enumerate(rows):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line: the parser skips it too
        row += 1
        if len(fields) != len(header):
            last = all(not f or (len(f) == 1 and not f[0].strip()) for f in rows[i + 1 :])
            hint = " (the file looks truncated mid-row)" if last and len(fields) < len(header) else ""
            return FeatureFileError(
                path,
                f"data row {row} has {len(fields)} fields{hint}",
                row=row,
                expected=f"{len(header)} fields per row like the header",
            )
    return None


def _check_field_counts(path: Path, data: bytes, header: list[str], n_rows: int) -> None:
    """Every row must have exactly the header's fields.

    The C engine pads a short row (e.g. a file truncated mid-row) with NaN instead of
    failing, which would pass a damaged file off as missing samples. Every kept row plus
    the header has exactly ``len(header) - 1`` separators, so one count over the bytes
    checks all rows; only on a mismatch is the file scanned row by row to name the row.
    """
    commas, _ = _count_separators(data)
    if commas != (n_rows + 1) * (len(header) - 1):
        err = _locate_bad_row(path, data, header)
        if err is not None:
            raise err


def _first_non_numeric(path: Path, data: bytes, columns: Sequence[str]) -> FeatureFileError | None:
    """Error path only: re-read the numeric columns as text to find the first value that is not a number."""
    text = pd.read_csv(BytesIO(data), engine=_ENGINE, usecols=list(columns), dtype=str, index_col=False,
                       skipinitialspace=True, encoding="utf-8", encoding_errors="replace",
                       na_values=_MISSING_LIKE, keep_default_na=True)
    for col in columns:
        raw = text[col]
        numbers = pd.to_numeric(raw.str.strip(), errors="coerce")
        bad = np.flatnonzero(raw.notna().to_numpy() & numbers.isna().to_numpy())
        if len(bad):
            row = int(bad[0]) + 1
            return FeatureFileError(
                path,
                f"non-numeric value {shorten(repr(raw.iloc[bad[0]]), 80)} in column '{shorten(col, 100)}' at data row {row}",
                row=row,
                column=col,
                expected="a number (or an empty field for a missing sample)",
            )
    return None


def _parse(path: Path, required: Sequence[str], text_columns: Sequence[str], known: Sequence[str]) -> pd.DataFrame:
    """Read the file once and return the required columns with float64 time, float32 numbers, text as str."""
    data = _load_bytes(path)
    header, has_rows = _header(path, data)
    _check_columns(path, header, required, known)
    if not has_rows:
        raise FeatureFileError(path, "the file has a header but no data rows", expected="at least one data row")
    numeric = [c for c in required if c not in text_columns]
    dtypes: dict[str, object] = {c: np.float32 for c in numeric}
    dtypes[schema.TIME] = np.float64
    dtypes.update({c: str for c in text_columns})
    try:
        with warnings.catch_warnings():
            # index_col=False makes a row with extra fields a warning; the field-count check below names it
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = pd.read_csv(
                BytesIO(data),
                engine=_ENGINE,
                usecols=list(required),
                dtype=dtypes,
                index_col=False,  # never take the first column as an index when rows have extra fields
                skipinitialspace=True,
                encoding="utf-8",
                encoding_errors="replace",  # free text in other encodings must not break parsing
                na_values=_MISSING_LIKE,
                keep_default_na=True,
            )
    except pd.errors.ParserError as exc:
        err = _locate_bad_row(path, data, header)
        raise (err or FeatureFileError(path, f"not parsable as CSV ({exc})",
                                       expected=f"{len(header)} comma-separated fields per row")) from None
    except (ValueError, OverflowError) as exc:  # a value that is not a number in a float column
        err = _first_non_numeric(path, data, numeric)
        raise (err or FeatureFileError(path, f"a numeric column holds text ({exc})",
                                       expected="numbers in every column but text ones")) from None
    _check_field_counts(path, data, header, len(df))
    return df


def _clean_order(path: Path, times: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Row indices that make time strictly increasing (sort, then keep the first of equal times)."""
    bad = np.flatnonzero(~np.isfinite(times))
    if len(bad):
        row = int(bad[0]) + 1
        what = "empty" if np.isnan(times[bad[0]]) else f"{times[bad[0]]}"
        raise FeatureFileError(path, f"column 'time' is {what} at data row {row} ({len(bad)} such rows)",
                               row=row, column=schema.TIME, expected="a finite time in seconds on every row")
    unsorted = int(np.count_nonzero(np.diff(times) < 0))
    order = np.argsort(times, kind="stable") if unsorted else np.arange(len(times))  # stable: first row wins ties
    sorted_t = times[order]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = sorted_t[1:] > sorted_t[:-1]
    duplicates = int(len(keep) - np.count_nonzero(keep))
    if unsorted:
        first = int(np.flatnonzero(np.diff(times) < 0)[0]) + 2
        log.warning("%s: %d row(s) out of time order (first at data row %d); rows sorted by time",
                    path, unsorted, first)
    if duplicates:
        log.warning("%s: %d row(s) repeat an earlier time; kept the first row of each time", path, duplicates)
    return order[keep], unsorted, duplicates


def _count_nonfinite(columns: Sequence[str], values: np.ndarray, counts: dict[str, int]) -> None:
    """Count empty/NaN/inf per column into `counts` and turn inf into NaN (in place)."""
    bad = ~np.isfinite(values)  # (N, W)
    per_column = bad.sum(axis=0)
    for j in np.flatnonzero(per_column):
        counts[columns[j]] = int(per_column[j])
    values[bad] = np.nan


def _speaker_keys(ids: pd.Series) -> np.ndarray:
    """Integer speaker codes, -1 where empty; numeric ids compare by value ("1" == "1.0")."""
    text = ids.astype("str").str.strip()
    text = text.where(text.str.len() > 0)
    numbers = pd.to_numeric(text, errors="coerce")
    keys = text.where(numbers.isna(), numbers.map(repr, na_action="ignore"))
    codes, _ = pd.factorize(keys, use_na_sentinel=True)
    return codes


def speaker_turns(speaker_ids: pd.Series | Sequence[object]) -> np.ndarray:
    """(N,) float32: 1 where the speaker changes to a non-empty speaker other than the last non-empty one.

    The first speaker of a file is not a turn (there is no speaker before it); empty ids
    (silence, unknown) are skipped, so A, -, A is no turn and A, -, B is one at B.
    """
    codes = _speaker_keys(pd.Series(speaker_ids, dtype=object))
    turns = np.zeros(len(codes), dtype=np.float32)
    known = np.flatnonzero(codes >= 0)  # rows with a speaker
    change = codes[known[1:]] != codes[known[:-1]]
    turns[known[1:][change]] = 1.0
    return turns


def read_audio_csv(path: str | Path) -> FeatureTable:
    """Read ``<video_id>_features.csv``; values are ``schema.AUDIO_INPUTS`` (speaker_turn derived)."""
    path = Path(path)
    file_cols = [c.name for c in schema.AUDIO_FILE_COLUMNS if c.name != schema.TEXT_WORD]  # text is never read
    df = _parse(path, file_cols, text_columns=[schema.SPEAKER_ID],
                known=schema.input_names(schema.AUDIO_FILE_COLUMNS))
    keep, unsorted, duplicates = _clean_order(path, df[schema.TIME].to_numpy(np.float64))
    df = df.iloc[keep]
    inputs = schema.input_names(schema.AUDIO_INPUTS)
    turn = inputs.index(SPEAKER_TURN)
    numeric = [j for j in range(len(inputs)) if j != turn]
    values = np.empty((len(df), len(inputs)), dtype=np.float32)  # (N, 5)
    values[:, numeric] = df[[inputs[j] for j in numeric]].to_numpy(np.float32)
    values[:, turn] = speaker_turns(df[schema.SPEAKER_ID])  # after sorting: turns follow time order
    issues = ReadIssues(unsorted, duplicates)
    _count_nonfinite(inputs, values, issues.nonfinite)
    return FeatureTable(path, df[schema.TIME].to_numpy(np.float64), values, None, issues)


def read_visual_csv(path: str | Path) -> FeatureTable:
    """Read ``<video_id>_visual_features.csv``: ten scalars float32 and CLIP float16."""
    path = Path(path)
    scalars = schema.input_names(schema.VISUAL_SCALARS)
    clip_cols = schema.input_names(schema.CLIP_COLUMNS)
    required = schema.input_names(schema.VISUAL_FILE_COLUMNS)
    df = _parse(path, required, text_columns=(), known=required)
    keep, unsorted, duplicates = _clean_order(path, df[schema.TIME].to_numpy(np.float64))
    times = df[schema.TIME].to_numpy(np.float64)[keep]
    block = df[scalars + clip_cols].to_numpy(np.float32)  # (N, 522) in model order, whatever the file order
    del df
    if len(keep) != len(block) or unsorted:
        block = block[keep]
    values = np.array(block[:, : len(scalars)])  # (N, 10), a writable copy
    # float16 right after parsing: CLIP is 512 of the 522 visual columns, so this halves
    # the memory of every visual array downstream; unit-norm embeddings lose nothing that matters
    clip = block[:, len(scalars) :].astype(np.float16)  # (N, 512)
    del block
    # no face (face_count == 0) is information, not a missing sample: face fields are 0 there
    no_face = values[:, scalars.index(schema.FACE_COUNT)] == 0
    face_idx = [scalars.index(f) for f in schema.FACE_FIELDS]
    values[np.ix_(no_face, face_idx)] = 0.0
    issues = ReadIssues(unsorted, duplicates)
    _count_nonfinite(scalars, values, issues.nonfinite)
    _count_nonfinite(clip_cols, clip, issues.nonfinite)
    return FeatureTable(path, times, values, clip, issues)


def read_features(path: str | Path, modality: str) -> FeatureTable:
    """``read_audio_csv`` or ``read_visual_csv`` by modality name."""
    if modality == "audio":
        return read_audio_csv(path)
    if modality == "visual":
        return read_visual_csv(path)
    raise ValueError(f"modality must be 'audio' or 'visual', got {modality!r}")


# --- discovery ---------------------------------------------------------------


@dataclass(frozen=True)
class FeatureFiles:
    """A video's feature files; None where the file does not exist."""

    audio: Path | None
    visual: Path | None

    def get(self, modality: str) -> Path | None:
        return {"audio": self.audio, "visual": self.visual}[modality]

    @property
    def missing(self) -> list[str]:
        """Modalities without a file, in ``schema.MODALITIES`` order."""
        return [m for m in schema.FEATURE_MODALITIES if self.get(m) is None]


def discover_features(raw_dir: str | Path, video_ids: Iterable[str]) -> dict[str, FeatureFiles]:
    """Find each video's feature files in ``<raw_dir>/features/`` by exact name.

    Names are compared as strings against one directory listing, so ids with spaces,
    brackets or glob characters match only their own files (``foo`` never picks up
    ``foo 2_features.csv``). Logs how many files were found and warns, per video, which
    types are missing (extra record attributes ``video_id`` and ``missing``).
    """
    feature_dir = Path(raw_dir) / schema.FEATURES_DIR
    video_ids = list(video_ids)
    if feature_dir.is_dir():
        names = {p.name for p in feature_dir.iterdir() if p.is_file()}
    else:
        names = set()
        log.warning("%s: no features folder; every video lacks its feature files", feature_dir)
    found: dict[str, FeatureFiles] = {}
    claimed: dict[str, str] = {}
    for vid in video_ids:
        paths = {}
        for modality, name in (("audio", schema.audio_file_name(vid)), ("visual", schema.visual_file_name(vid))):
            paths[modality] = feature_dir / name if name in names else None
            if name in claimed and paths[modality] is not None:
                log.warning("%s matches two videos' names (%s and video '%s' %s); read for both",
                            feature_dir / name, claimed[name], vid, modality)
            claimed.setdefault(name, f"video '{vid}' {modality}")
        found[vid] = FeatureFiles(**paths)
    n_audio = sum(f.audio is not None for f in found.values())
    n_visual = sum(f.visual is not None for f in found.values())
    csvs = {n for n in names if n.endswith(".csv")}
    unmatched = len(csvs - set(claimed))
    log.info(
        "found %d feature files (%d audio, %d visual) for %d videos in %s%s",
        n_audio + n_visual, n_audio, n_visual, len(video_ids), feature_dir,
        f"; {unmatched} other CSV file(s) there match no video id" if unmatched else "",
    )
    for vid, files in found.items():
        if files.missing:
            expected = [schema.audio_file_name(vid) if m == "audio" else schema.visual_file_name(vid)
                        for m in files.missing]
            log.warning(
                "video '%s' is missing feature files: %s (expected %s in %s)",
                vid, ", ".join(files.missing), ", ".join(expected), feature_dir,
                extra={"video_id": vid, "missing": list(files.missing)},
            )
    return found


# --- writing -----------------------------------------------------------------
def _cells(values: np.ndarray, fmt: str) -> list[str]:
    """Numbers as CSV cells: NaN is an empty cell, infinities stay 'inf' / '-inf'."""
    return ["" if v != v else fmt % v for v in np.asarray(values, np.float64).tolist()]


def write_audio_csv(path: Path, cols: dict[str, Any]) -> None:
    """Audio table in schema order; pandas quotes the captions (they contain commas)."""
    names = schema.input_names(schema.AUDIO_FILE_COLUMNS)
    if set(cols) != set(names):
        raise ValueError(f"audio columns {sorted(cols)} do not match schema {names}")
    fmt = {schema.TIME: "%.4f", "silence_duration_ms": "%.0f", "audio_is_speaking": "%.0f", "text_is_active": "%.0f"}
    table = pd.DataFrame(
        {n: cols[n] if cols[n].dtype == object else _cells(cols[n], fmt.get(n, "%.4g")) for n in names}
    )
    table.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def write_visual_csv(path: Path, cols: dict[str, np.ndarray], hold: np.ndarray, vecs: np.ndarray) -> None:
    """Visual table in schema order; each held CLIP vector is formatted once, not once per row."""
    names = schema.input_names(schema.VISUAL_FILE_COLUMNS)
    scalar_names = [schema.TIME] + schema.input_names(schema.VISUAL_SCALARS)
    if set(cols) != set(scalar_names) or names != scalar_names + schema.input_names(schema.CLIP_COLUMNS):
        raise ValueError(f"visual columns {sorted(cols)} do not match schema {names[: len(scalar_names)]} + clip")
    fmt = {schema.TIME: "%.4f", schema.FACE_COUNT: "%.0f"}
    cells = [_cells(cols[n], fmt.get(n, "%.4g")) for n in scalar_names]
    clip_rows = [",".join(_cells(v, "%.4g")) for v in vecs]
    lines = [",".join(names)]
    lines += [",".join(row) + "," + clip_rows[h] for row, h in zip(zip(*cells), hold.tolist())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
