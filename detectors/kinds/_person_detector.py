"""Settings every person-detector kind shares (the budget and the crops), not a kind."""

from __future__ import annotations

from pydantic import Field

from crowdwatch.config import DetectorConfig
from crowdwatch.detectors.appearance import FinderSettings


class PersonDetectorSettings(DetectorConfig):
    score: float = Field(0.3, ge=0.01, le=0.99, description="Person score a box needs to "
                         "count (NanoDet: 0.3).")
    every: int = Field(30, ge=1, le=3600, description="Samples per detector run: the budget "
                       "(the detector costs ~75 ms a crop on one core; between runs the "
                       "count carries what the last run saw).")
    min_person_px: float = Field(64.0, ge=16, le=512, description="The smallest person the "
                                 "zone's geometry predicts is scaled to this height in the "
                                 "detector's input (far people become findable).")
    max_tiles: int = Field(4, ge=1, le=16, description="Crops per detector run at most (the "
                           "scale is lowered until the zones' region fits).")
    threads: int = Field(1, ge=1, le=64, description="onnxruntime threads (ingest shares the "
                         "cores across cameras: 1 is usual).")
    slope: float = Field(1.0, ge=0, le=100, description="Few-shot correction: count = slope · "
                         "raw + offset (from eval's calibration).")
    offset: float = Field(0.0, ge=-1000, le=1000, description="Few-shot correction offset "
                          "(people).")

    def finder(self) -> FinderSettings:
        return FinderSettings(self.every, self.min_person_px, self.max_tiles)
