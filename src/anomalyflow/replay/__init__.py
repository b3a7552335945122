"""``anomalyflow replay``: the retraining policy proven on a drifting stream, day by day."""
