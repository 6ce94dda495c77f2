import numpy as np
import pytest

from crowdwatch.config import ZoneConfig
from crowdwatch.detectors.zones import (
    ZoneGeometry,
    ground_area_m2,
    ground_homography,
    pixel_area_scale,
    shoelace_area,
)


def test_shoelace():
    assert shoelace_area(np.array([[0, 0], [4, 0], [4, 3], [0, 3]])) == 12.0


def test_homography_area_hand_computed():
    # A trapezoid seen in perspective: image corners map to a 12 m x 6 m rectangle.
    image = [[100, 400], [1180, 400], [1280, 720], [0, 720]]
    world = [[0, 6], [12, 6], [12, 0], [0, 0]]
    h = ground_homography(image, world)
    assert ground_area_m2(image, h) == pytest.approx(72.0, rel=1e-6)
    # Half of the near edge to half of the far edge: the left half of the rectangle.
    left_half = [[100, 400], [640, 400], [640, 720], [0, 720]]
    assert ground_area_m2(left_half, h) == pytest.approx(36.0, rel=1e-6)


def test_pixel_area_scale_integrates_to_the_area():
    image = [[100, 400], [1180, 400], [1280, 720], [0, 720]]
    world = [[0, 6], [12, 6], [12, 0], [0, 0]]
    zone = ZoneConfig(id="z", polygon=image, ground={"image": image, "world_m": world})
    geo = ZoneGeometry.from_config(zone, (721, 1281), 1.0)
    per_px = pixel_area_scale(geo.homography, geo.shape)
    assert (per_px * (geo.mask > 0)).sum() == pytest.approx(72.0, rel=0.02)
    # Far pixels cover more ground than near ones.
    assert per_px[410, 640] > per_px[710, 640]


def test_scaled_zone_keeps_its_area():
    image = [[100, 400], [1180, 400], [1280, 720], [0, 720]]
    world = [[0, 6], [12, 6], [12, 0], [0, 0]]
    zone = ZoneConfig(id="z", polygon=image, ground={"image": image, "world_m": world})
    half = ZoneGeometry.from_config(zone, (360, 640), 0.5)
    assert half.area_m2 == pytest.approx(72.0, rel=1e-6)
    assert half.contains(np.array([[320, 300], [5, 5]])).tolist() == [True, False]


def test_degenerate_ground_points_are_refused():
    with pytest.raises(ValueError, match="collinear"):
        ground_homography([[0, 0], [1, 1], [2, 2], [3, 3]], [[0, 0], [1, 0], [1, 1], [0, 1]])
