"""Offline tools on top of everything else: calibrate, eval, replay and tune."""
