"""A transcriber for the tests, with faster-whisper's interface (``transcribe(audio, **kw) ->
(segments, info)``, segments holding ``words`` with ``start``, ``end``, ``word``), loaded the way
a user's own is: ``extract.transcriber: tests.transcribers:ToneWords``.

No speech-to-text weights can be fetched here, so it "hears" what it can know for certain:
each run of loud audio in the chunk it is given is one word, "tone", with the times of the
run within the chunk. The extract code around it is the real one: chunking as the audio
streams, offsets across chunks, words laid onto the 0.1 s rows.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

RATE = 16_000


class ToneWords:
    calls = 0

    def transcribe(self, audio: np.ndarray, **kwargs: object) -> tuple[list[SimpleNamespace], None]:
        ToneWords.calls += 1
        assert kwargs.get("word_timestamps") is True
        frame = 160  # 10 ms
        n = len(audio) // frame
        loud = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) > 0.05
        edges = np.flatnonzero(np.diff(np.r_[0, loud.astype(int), 0]))
        # a diarizing transcriber: its words carry their speaker
        words = [SimpleNamespace(start=a * frame / RATE, end=b * frame / RATE, word=" tone", speaker="host")
                 for a, b in zip(edges[::2], edges[1::2])]  # fmt: skip
        return [SimpleNamespace(words=words)], None
