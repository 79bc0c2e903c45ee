"""Evaluation: ranking metrics over the full category set, bootstrap intervals, one leaderboard.

Imports :mod:`interest_lib.data` only."""
