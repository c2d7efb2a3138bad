"""Raw camera frames that policy images were cropped from (matched by header).

The actor copies each raw frame's header (stamp and frame_id) into the policy images it crops
from it. The recorder keeps the raw frames it receives for ``buffer_s`` and writes exactly
those a recorded Observation or Transition refers to: at most one frame per control period
and camera, and always the one the policy saw, so the loader can re-crop it exactly. A policy
image may arrive before its raw frame (different publishers); it then waits up to ``wait_s``.
"""
import collections

from hilserl_actor.recording.types import FrameRef, Incoming


class RawFrameMatcher:
    """Buffer of unclaimed raw frames plus the references still waiting for theirs."""

    def __init__(self, buffer_s: float, wait_s: float, max_frames: int = 512):
        self.buffer_s, self.wait_s, self.max_frames = buffer_s, wait_s, max_frames
        self._frames: collections.OrderedDict[FrameRef, tuple[float, Incoming]] = (
            collections.OrderedDict())
        self._waiting: collections.OrderedDict[FrameRef, float] = collections.OrderedDict()
        self._claimed: set[FrameRef] = set()

    def offer(self, ref: FrameRef, frame: Incoming, now: float) -> Incoming | None:
        """A raw frame arrived: returned if a policy image waits for it, else buffered."""
        if ref in self._waiting:
            del self._waiting[ref]
            self._claimed.add(ref)
            return frame
        self._frames[ref] = (now, frame)
        while len(self._frames) > self.max_frames:
            self._frames.popitem(last=False)
        return None

    def claim(self, refs, now: float) -> list[Incoming]:
        """The buffered frames of ``refs`` not yet claimed in this episode; others wait."""
        found = []
        for ref in refs:
            if ref in self._claimed or ref in self._waiting:
                continue
            entry = self._frames.pop(ref, None)
            if entry is None:
                self._waiting[ref] = now
            else:
                self._claimed.add(ref)
                found.append(entry[1])
        return found

    def expire(self, now: float) -> int:
        """Drop old unclaimed frames; return how many references stopped waiting (missing)."""
        while self._frames and now - next(iter(self._frames.values()))[0] > self.buffer_s:
            self._frames.popitem(last=False)
        missing = 0
        while self._waiting and now - next(iter(self._waiting.values())) > self.wait_s:
            self._waiting.popitem(last=False)
            missing += 1
        return missing

    def end_episode(self) -> int:
        """Forget this episode's claims; return the references still waiting (missing)."""
        missing = len(self._waiting)
        self._waiting.clear()
        self._claimed.clear()
        return missing
