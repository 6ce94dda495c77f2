"""Plain-geometry checks on configured outlines, so a bad one fails `config check`.

A self-intersecting zone has a signed area near zero (it counts nobody and never
alerts); ground points in a line or crossed give no usable homography.
"""

from __future__ import annotations

Pt = tuple[float, float]


def signed_area(points: list[Pt]) -> float:
    n = len(points)
    return 0.5 * sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                     for i in range(n))


def _cross(o: Pt, a: Pt, b: Pt) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: Pt, p2: Pt, q1: Pt, q2: Pt) -> bool:
    """Proper crossing of two segments (touching at an end point does not count)."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4)


def polygon_problem(points: list[list[float]]) -> str | None:
    """Why an outline is unusable (edges cross, or it encloses no area), or None."""
    pts = [(float(x), float(y)) for x, y in points]
    n = len(pts)
    for i in range(n):
        for j in range(i + 1, n):
            if j in (i, (i + 1) % n) or i == (j + 1) % n:
                continue  # neighbouring edges share a corner
            if _segments_cross(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]):
                return (f"edges {i}-{(i + 1) % n} and {j}-{(j + 1) % n} cross: the outline "
                        "must not intersect itself (list the corners in order around it)")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    extent = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    if abs(signed_area(pts)) < 1e-6 * extent * extent:
        return "encloses no area (its corners lie on a line)"
    return None


def quad_problem(points: list[list[float]]) -> str | None:
    """Why four calibration points give no homography (three in a line, or crossed)."""
    pts = [(float(x), float(y)) for x, y in points]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    extent = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    for skip in range(4):
        a, b, c = (pts[i] for i in range(4) if i != skip)
        if abs(_cross(a, b, c)) < 1e-6 * extent * extent:
            return "three of the four points lie on a line: pick four corners of a quadrilateral"
    return polygon_problem(points)
