"""crowdwatch: count crowds, never identify people."""

__version__ = "0.1.0"
