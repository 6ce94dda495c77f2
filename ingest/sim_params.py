"""Parameters of a simulated camera and scene, and their ``sim://`` URL form."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from crowdwatch.errors import ConfigError
from crowdwatch.ingest import sim_walkers

SCENES = ("school-gate", "steady", *sim_walkers.WALKER_SCENES)


@dataclass(frozen=True)
class SimParams:
    scene: str = "school-gate"
    people: int = 70  # peak crowd size
    base: int = 5  # people around outside the surge
    period: float = 45.0  # seconds for one whole crowd curve
    seed: int = 1
    width: int = 1280
    height: int = 720
    noise: float = 4.0  # sensor noise, grey levels (sigma)
    cam_h: float = 6.0  # camera height above the ground (m)
    focal: float = 0.78  # focal length as a share of the image width
    horizon: float = 0.25  # horizon row as a share of the image height (sets the tilt)
    shadow: float = 0.0  # sun: how much a person's cast shadow darkens the ground (0 = overcast)
    sun_az: float = 40.0  # direction shadows fall on the ground, degrees from the view axis
    sun_len: float = 1.2  # shadow length over person height (low sun: long shadows)
    heading: float = 0.0  # counterflow: walkway direction, degrees from the view axis
    share: float = 0.5  # counterflow: share of walkers who start at the near end
    speed: float = 1.3  # walker scenes: mean free walking speed (m/s)
    gate: float = 2.0  # bottleneck: gate width (m)

    @classmethod
    def from_url(cls, url: str) -> SimParams:
        parsed = urlparse(url)
        if parsed.scheme != "sim":
            raise ConfigError(f"not a sim:// url: {url!r}")
        scene = parsed.netloc or parsed.path.strip("/") or "school-gate"
        if scene not in SCENES:
            raise ConfigError(f"unknown sim scene {scene!r}; known: {', '.join(SCENES)}")
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        casts = {"people": int, "base": int, "period": float, "seed": int, "w": int, "h": int,
                 "noise": float, "cam_h": float, "focal": float, "horizon": float,
                 "shadow": float, "sun_az": float, "sun_len": float, "heading": float,
                 "share": float, "speed": float, "gate": float}
        unknown = set(query) - set(casts)
        if unknown:
            raise ConfigError(f"unknown sim parameter(s) {sorted(unknown)} in {url!r}")
        try:
            values = {k: casts[k](v) for k, v in query.items()}
        except ValueError as exc:
            raise ConfigError(f"bad sim parameter in {url!r}: {exc}") from None
        if "w" in values:
            values["width"] = values.pop("w")
        if "h" in values:
            values["height"] = values.pop("h")
        params = cls(scene=scene, **values)
        if not (1.0 <= params.cam_h <= 50.0 and 0.2 <= params.focal <= 5.0
                and 0.0 <= params.horizon < 0.9):
            raise ConfigError(f"sim camera out of range in {url!r}: cam_h 1-50 m, focal "
                              "0.2-5 widths, horizon 0-0.9 heights")
        if not (0.0 <= params.shadow <= 0.9 and 0.0 <= params.sun_len <= 5.0):
            raise ConfigError(f"sim sun out of range in {url!r}: shadow 0-0.9, sun_len 0-5")
        if not (0.0 <= params.share <= 1.0 and 0.2 <= params.speed <= 3.0
                and 0.5 <= params.gate <= 8.0 and -360.0 <= params.heading <= 360.0):
            raise ConfigError(f"sim walkers out of range in {url!r}: share 0-1, speed "
                              "0.2-3 m/s, gate 0.5-8 m, heading -360-360 degrees")
        if not (0 <= params.base <= params.people <= 5000 and 1.0 <= params.period <= 86400
                and 32 <= params.width <= 4096 and 32 <= params.height <= 4096
                and 0.0 <= params.noise <= 100.0):
            raise ConfigError(f"sim scene out of range in {url!r}: 0 <= base <= people <= 5000, "
                              "period 1-86400 s, w and h 32-4096, noise 0-100")
        return params

    def to_url(self) -> str:
        return (f"sim://{self.scene}?people={self.people}&base={self.base}&period={self.period:g}"
                f"&seed={self.seed}&w={self.width}&h={self.height}&noise={self.noise:g}"
                f"&cam_h={self.cam_h:g}&focal={self.focal:g}&horizon={self.horizon:g}"
                + (f"&shadow={self.shadow:g}&sun_az={self.sun_az:g}&sun_len={self.sun_len:g}"
                   if self.shadow else "")
                + (f"&heading={self.heading:g}&share={self.share:g}&speed={self.speed:g}"
                   f"&gate={self.gate:g}" if self.scene in sim_walkers.WALKER_SCENES else ""))
