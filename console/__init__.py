"""The web console the crowdwatch process serves: operators' live page (no pixels, ever)."""
